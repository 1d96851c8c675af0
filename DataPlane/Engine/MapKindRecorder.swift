import Logging
import Metadata
import Tenancy

/// Fixes each map's CRDT (LWW or OR-Map) once per tenant and map, in the metadata store the
/// nodes share: the first write a node sees proposes its kind, the store keeps the first
/// proposal it received, and every node adopts that answer before applying. Two nodes whose
/// first writes differ therefore agree, and refuse writes of the other kind alike.
///
/// Asked once per map and node (the store then knows its kind without a hop). Without a
/// metadata store (tests, benchmarks), or while it cannot answer, the map's first write here
/// fixes the kind, as a node on its own always did; the next write asks again.
public struct MapKindRecorder: Sendable {
    let metadata: (any MetadataStore)?
    let logger: Logger

    public init(metadata: (any MetadataStore)?, logger: Logger) {
        self.metadata = metadata
        self.logger = logger
    }

    /// Makes sure `store` holds the recorded kind before a write proposing `proposed`.
    public func settle(_ store: MapStore, proposing proposed: MapKind) async {
        guard store.recordedKind == nil, let metadata else { return }
        do {
            let recorded = try await metadata.recordMapKind(tenant: store.tenant, map: store.name, kind: proposed)
            await store.adoptRecordedKind(recorded)
        } catch {
            logger.warning("cannot record a map's kind; this node's first write decides it for now", metadata: [
                "tenant": "\(store.tenant)", "map": "\(store.name)", "error": "\(error)",
            ])
        }
    }
}
