import Logging
import ServiceLifecycle
import TopGunCore

extension ClusterMessageType {
    /// A liveness probe between nodes: an empty body, answered with an empty body.
    static let ping = "ping"
}

/// Pings every other node of the partition table each heartbeat and tells the `QuorumWatch`
/// who answered. A ping may take up to `timeout` (the quorum window): rounds do not wait for
/// the previous round's answers, so one slow answer on a loaded machine does not make a peer
/// look gone.
final class PeerPinger: Service, Sendable {
    private let transport: ClusterTransport
    private let table: CurrentPartitionTable
    private let quorum: QuorumWatch
    private let interval: Duration
    private let timeout: Duration

    init(transport: ClusterTransport, table: CurrentPartitionTable, quorum: QuorumWatch, interval: Duration, timeout: Duration) {
        self.transport = transport
        self.table = table
        self.quorum = quorum
        self.interval = interval
        self.timeout = timeout
    }

    func run() async throws {
        let (transport, quorum, timeout) = (transport, quorum, timeout)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { pings in
                while !Task.isCancelled {
                    let members = self.table.table.members.map(\.id)
                    quorum.members(members)
                    for member in members where member != quorum.localNode {
                        pings.addTask {
                            if (try? await transport.request(ClusterMessageType.ping, [], to: member, timeout: timeout)) != nil {
                                quorum.heard(from: member)
                            }
                        }
                    }
                    try? await Task.sleep(for: self.interval)
                }
                pings.cancelAll()
            }
        }
    }
}
