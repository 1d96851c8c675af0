import Tenancy
import TopGunCore
import TopGunWire

/// Serves a request for a name its partition's owner holds (a counter, a lock), wherever the
/// owner is: here, or forwarded. During a failover or a move the partition is briefly loading
/// on its new owner, or the table is on its way: rather than refuse at once (the TypeScript
/// client sends neither a `COUNTER_SYNC` nor a `LOCK_REQUEST` again), the request is tried
/// again, for up to `patience`, with the owner the table names then.
struct NameRouting: Sendable {
    let routing: ReadRouting
    var patience: Duration = .seconds(5)
    var pause: Duration = .milliseconds(200)

    /// Runs `local` when this node owns the name's partition, else `remote` with its owner;
    /// returns the answer for the client when neither could be done in time. Without `remote`
    /// (a node on its own) nothing is forwarded or waited for.
    ///
    /// - Parameter idempotent: whether the request may be sent again after a failure that may
    ///   have come after the owner handled it (a timeout, a dropped connection). A request
    ///   that is not (a lock release) is sent again only after failures that prove the owner
    ///   did not handle it: its refusal, or no connection at all.
    func serve(
        _ name: String, tenant: TenantID, idempotent: Bool, local: () async -> Void, remote: ((NodeID) async throws -> Void)?
    ) async -> ErrorMessage? {
        guard let remote else {
            let plan = routing.nameRead(name, tenant: tenant)
            if let refusal = ReadRouting.refusal(plan) { return refusal }
            await local()
            return nil
        }
        let deadline = ContinuousClock.now + patience
        while true {
            switch routing.nameRead(name, tenant: tenant) {
            case .local:
                await local()
                return nil
            case .notLoaded(let partition):
                guard ContinuousClock.now < deadline else { return .partitionNotLoaded(partition) }
            case .remote(let owners):
                do {
                    try await remote(owners[0])
                    return nil
                } catch {
                    guard ContinuousClock.now < deadline, idempotent || Self.neverHandled(error) else { return Self.refusal(error, owner: owners[0]) }
                }
            }
            do { try await Task.sleep(for: pause) } catch { return .partitionOwnerUnreachable(routing.table.localNode) }
        }
    }

    /// Whether a failure proves the owner did not handle the request.
    static func neverHandled(_ error: any Error) -> Bool {
        switch error as? ClusterTransportError {
        case .remoteFailure, .unknownPeer, .unreachable, .handshakeRefused, .peerOverloaded: true
        default: false
        }
    }

    /// What the client is told: the owner's own refusal when it gave one (the partition moved
    /// or is loading), else that it cannot be reached.
    static func refusal(_ error: any Error, owner: NodeID) -> ErrorMessage {
        if case .remoteFailure(_, let message)? = error as? ClusterTransportError {
            return .make(.unavailable, "node '\(owner)' could not take the request (\(message)); send it again later", details: [
                "node": .string(owner.rawValue), "retryAfterMs": .int(1_000),
            ])
        }
        return .partitionOwnerUnreachable(owner)
    }
}
