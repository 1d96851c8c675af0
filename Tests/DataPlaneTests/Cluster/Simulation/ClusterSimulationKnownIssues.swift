import Foundation
import Testing

/// Production bugs the simulation found that are not fixed yet. None of the default seeds
/// (1–1,000) meets them; each test here replays a seed past those that does, and expects the
/// violation it leads to as a known issue. When a bug is fixed its test fails with "known
/// issue was not recorded" (or the seed no longer reaches the same state after a change to
/// the simulation): then look again, and delete the test. Off by default:
/// `TOPGUN_SIM_KNOWN_ISSUES=1`. `TOPGUN_SIM_SEED=<seed> TOPGUN_SIM_PARTITION=<partition>`
/// prints a seed's trace with the partition's copies followed.
@Suite("ClusterSimulation known issues", .enabled(if: SimKnownIssues.enabled))
struct ClusterSimulationKnownIssues {
    static func expectKnown(_ issue: String, seed: UInt64, invariant: String) {
        let outcome = SimRunner.run(seed: seed).0
        let found = outcome.violations.first { $0.hasPrefix(invariant) }
        print("\(issue): seed \(seed): \(found ?? "not found")")
        withKnownIssue(Comment(rawValue: issue)) {
            #expect(found == nil, "seed \(seed): \(found ?? "")")
        }
    }

    /// `Replicator.tableChanged` forgets a replica the new table no longer names, and
    /// `ReplicationLog.forget` counts the batches waiting for it as replicated: a REPLICATED
    /// write whose only backup was dropped (its lease expired) is acknowledged though no
    /// replica ever applied it. Seed 2887 (partition 77): n1 applies write #47 at 1,600 ms
    /// while cut off from the database (its flushes hang until the store timeout), the send
    /// to its backup n0 is lost; at 7,120 ms table v2 drops n0 (its lease expired) and n1
    /// acknowledges #47 at once; n1 crashes at 8,179 ms and #47 is nowhere.
    @Test("known issue: a backup dropped from the table counts as having applied what it never acknowledged")
    func forgottenBackupAcknowledges() {
        Self.expectKnown("forgotten backup acknowledges", seed: 2_887, invariant: "(2) no acknowledged write lost")
    }

    /// `ReplicaHolder` keys the owner a copy follows by node id, and applies the
    /// `persistedThrough` of every batch from that node to all such copies; batch numbers
    /// restart with each run of the owner, so a restarted owner's watermark clears the
    /// uncommitted rows its previous run left on a backup. Seed 3316 (partition 68): n2
    /// (cut off from the database) applies write #85 at 3,471 ms, its backup n0 applies it
    /// (batch 117, uncommitted), n2 crashes at 4,491 ms; its new run takes the partition over
    /// itself (n0's lease had expired), and at 18,101 ms its batch 408 (committed through 363)
    /// makes n0 count the row committed, so n0 hands nothing over when it gives the copy up
    /// (21,020 ms): #85 is lost after one crash.
    @Test("known issue: a restarted owner's commit watermark clears its previous run's uncommitted rows on backups")
    func watermarkAcrossRuns() {
        Self.expectKnown("watermark across runs", seed: 3_316, invariant: "(2) no acknowledged write lost")
    }

    /// `ReplicaHolder.tableChanged` judges copies by the installed table: a node that
    /// finishes applying an older table (its fences waited for a flush) drops a copy that a
    /// newer table named it for and that the owner already sent and reported complete under
    /// the same epoch; when the node then applies the newer table, the owner (which thinks
    /// the copy synced) never sends it again. Seed 1454 (partition 91): n0 applies v11 at
    /// 15,086 ms (n0 not a backup), gets n2's snapshot under v14 at 15,870 ms (n0 the backup,
    /// epoch 3), drops it at 19,957 ms when v11's apply ends, then applies v22 (still the
    /// backup, epoch 3): it keeps no copy for good. Seeds 6806, 7442 and 7579 show it too.
    @Test("known issue: the end of an older table's apply drops a copy a newer table named, and nobody sends it again")
    func staleTableDropsCopy() {
        Self.expectKnown("stale table drops a copy", seed: 1_454, invariant: "(0) the cluster settles")
    }
}

enum SimKnownIssues {
    /// Off by default: `TOPGUN_SIM_KNOWN_ISSUES=1`.
    static let enabled = ProcessInfo.processInfo.environment["TOPGUN_SIM_KNOWN_ISSUES"] == "1"
}
