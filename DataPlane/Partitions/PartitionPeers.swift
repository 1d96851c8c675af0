import Tenancy
import TopGunCore
import TopGunWire

/// The nodes that own the partitions this node does not: where a routed request goes
/// (`Route.remote`). The cluster implements it over its port; a node on its own has none,
/// and tests answer with a double.
///
/// The node a client is connected to admits its requests (quotas, usage, metrics) and
/// forwards them; the owner applies them (validation, schema, merge, journal, storage)
/// without charging them again.
public protocol PartitionPeers: Sendable {
    /// Applies `ops` (all of partitions `node` owns) on `node`, with the writer's context;
    /// returns one outcome per op, in order, once each op's write concern (its own, else
    /// `batchConcern`, else PERSISTED) is met there. Throws when `node` cannot be reached or
    /// does not answer: the caller then acknowledges none of them (the client sends them
    /// again), and has applied nothing of the batch itself.
    func applyWrites(_ ops: [ClientOp], batchConcern: WriteConcern?, on node: NodeID, context: RequestContext) async throws -> [OpOutcome]

    /// Merges OR-Map entries a client pushed (`ORMAP_PUSH_DIFF`), all of keys of partitions
    /// `node` owns, on `node`; returns the push's outcome there.
    func pushORMapEntries(_ entries: [ORMapEntry], mapName: String, on node: NodeID, context: RequestContext) async throws -> OpOutcome
}
