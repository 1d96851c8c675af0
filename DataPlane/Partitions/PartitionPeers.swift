import Tenancy
import TopGunWire

/// The nodes that own the partitions this node does not: where a routed request goes
/// (`Route.remote`). The cluster implements it over its port; a node on its own has none,
/// and tests answer with a double.
public protocol PartitionPeers: Sendable {
    /// Applies `ops` (all of partitions `node` owns) on `node`, with the writer's context;
    /// returns one outcome per op, in order. Throws when `node` cannot be reached or does not
    /// answer: the caller then acknowledges none of them (the client sends them again).
    func applyWrites(_ ops: [ClientOp], batchConcern: WriteConcern?, on node: NodeID, context: RequestContext) async throws -> [OpOutcome]
}
