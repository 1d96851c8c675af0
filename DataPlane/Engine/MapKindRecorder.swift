import Logging
import Metadata
import Synchronization
import Tenancy
import TopGunCore

/// Fixes each map's CRDT (LWW or OR-Map) once per tenant and map, in the metadata store the
/// nodes share: a node proposes the kind its map already holds (from storage), or else its
/// first write's; the store keeps the first proposal it received, and every node adopts that
/// answer before applying. Two nodes whose first writes differ therefore agree, and refuse
/// writes of the other kind alike.
///
/// Asked once per map and node (the store then knows its kind without a hop). Without a
/// metadata store (tests, benchmarks) the map's first write here fixes the kind, as a node on
/// its own always did. While the store cannot answer, the same holds, and the store is asked
/// again only after `retryDelay`: an outage slows one write per interval, not every write.
public struct MapKindRecorder: Sendable {
    let metadata: (any MetadataStore)?
    let logger: Logger
    let retryDelay: Duration
    private let unavailableUntil = SharedInstant()

    public init(metadata: (any MetadataStore)?, logger: Logger, retryDelay: Duration = .seconds(30)) {
        self.metadata = metadata
        self.logger = logger
        self.retryDelay = retryDelay
    }

    /// The tenant's maps any node has written to (byte for byte), nil when they cannot be read.
    public func recordedMaps(tenant: TenantID) async -> Set<HashedKey>? {
        guard let metadata else { return nil }
        do {
            return Set(try await metadata.recordedMaps(tenant: tenant).map(HashedKey.init))
        } catch {
            logger.warning("cannot read a tenant's maps; counting this node's only", metadata: ["tenant": "\(tenant)", "error": "\(error)"])
            return nil
        }
    }

    /// Makes sure `store` holds the recorded kind before a write proposing `proposed`.
    public func settle(_ store: MapStore, proposing proposed: MapKind) async {
        guard store.recordedKind == nil, let metadata else { return }
        if let until = unavailableUntil.value, ContinuousClock.now < until { return }
        let held = await store.kind
        do {
            let recorded = try await metadata.recordMapKind(tenant: store.tenant, map: store.name, kind: held ?? proposed)
            if let previous = await store.adoptRecordedKind(recorded), previous != recorded {
                // Records this node took in while it decided alone stay, unreadable to sync of
                // the recorded kind; writes of their kind are refused from now on.
                logger.error("a map holds records of the other kind than the one recorded for it", metadata: [
                    "tenant": "\(store.tenant)", "map": "\(store.name)", "held": "\(previous)", "recorded": "\(recorded)",
                ])
            }
        } catch {
            unavailableUntil.set(ContinuousClock.now + retryDelay)
            logger.warning("cannot record a map's kind; this node's first write decides it for now", metadata: [
                "tenant": "\(store.tenant)", "map": "\(store.name)", "error": "\(error)",
            ])
        }
    }
}

/// An instant behind a lock, shared by the copies of a value type.
final class SharedInstant: Sendable {
    private let instant = Mutex<ContinuousClock.Instant?>(nil)
    var value: ContinuousClock.Instant? { instant.withLock { $0 } }
    func set(_ value: ContinuousClock.Instant?) { instant.withLock { $0 = value } }
}
