/// The knobs of one simulated cluster. Durations in virtual milliseconds; the cluster's are
/// production's defaults (`ClusterSettings`, `WriteBehindConfiguration`, persist timeout).
struct SimSettings {
    var nodeCount = 3
    var leaseMs: Int64 = 5_000
    var heartbeatMs: Int64 = 1_000
    /// The coordinator's tick (`heartbeatInterval / 4`).
    var coordinatorTickMs: Int64 { heartbeatMs / 4 }
    var backupCount = 1
    var maxConcurrentMigrations = 16
    /// How long a PERSISTED or REPLICATED acknowledgement may wait.
    var persistTimeoutMs: Int64 = 10_000
    /// A flush that has not returned after this long failed (`storeTimeout`).
    var storeTimeoutMs: Int64 = 10_000
    /// Other database calls: a lost connection surfaces after about the connect timeout.
    var databaseTimeoutMs: Int64 = 5_000
    /// A cluster-port request without its own timeout (`requestTimeout`).
    var peerTimeoutMs: Int64 = 10_000

    /// Events of the faulty part of a schedule; then the fault-free settling phase.
    var maxEvents = 2_000
    /// Virtual time the settling phase may take before the run counts as stuck.
    var settleLimitMs: Int64 = 120_000
    /// Mean gap between client writes, and between faults.
    var writeGapMs: ClosedRange<Int64> = 5...60
    var faultGapMs: ClosedRange<Int64> = 200...2_500
    /// How long a crashed node stays down. Many restarts come back before the old lease
    /// expired (they wait it out) or right after: they race the coordinator's failover.
    var restartDelayMs: ClosedRange<Int64> = 300...9_000
    var chaos = SimNetwork.Chaos()
    /// Epoch fencing in the simulated database (test-only switch: off must be caught).
    var fencing = true
    /// Split-brain safety: a node acknowledges PERSISTED and REPLICATED only while it reaches a
    /// majority of its table (`QuorumWatch`, fed by pings). Off: the simulation must find a
    /// node cut off from its cluster acknowledging.
    var quorum = true
    // Test-only switches that put back, in the model, a production bug the simulation found
    // and that is fixed (`ClusterSimulationTests.fixedBugIsFound` shows each is found again).
    /// Off: neither the coordinator nor the nodes can tell a node's runs apart (every lease
    /// shows one run), as before the restart race was fixed: a restart that takes its lease
    /// before the coordinator saw the old one expire keeps its partitions under the old epochs.
    var recordRuns = true
    /// How long the commit follower waits after a fenced ticket failed while the node's table
    /// says it owns the partition (`Replicator.followCommits`); 0: the old busy loop.
    var followerBackoffMs: Int64 = 100
    /// Off: a copy reported complete is recorded whatever the table says and overwrites a
    /// newer report (the old upsert), and publishing forgets no report.
    var checkSyncedReports = true
    /// Off: REPLICATED checks only that the lease holds when its wait ends, not that it held
    /// throughout (no lease terms).
    var leaseTerms = true
    /// Off: a batch whose every backup left the table before acknowledging it counts as
    /// replicated (REPLICATED is acknowledged with no copy anywhere) instead of waiting for
    /// its commit.
    var unreplicatedBatches = true
    /// Off: an owner's batches carry no run, and a backup applies any run's commit watermark
    /// to the copies that follow the owner's node (batch numbers start over with each run).
    var watermarkPerRun = true
    /// Off: a backup takes an owner's batch under the epoch its table knows even when that
    /// table does not name it a replica, and a table applied late drops copies it took under
    /// a newer epoch.
    var replicasNamedByTheirTable = true

    /// Consecutive re-waits of a commit follower at one virtual instant past which it counts
    /// as spinning (a liveness violation): `Replicator.followCommits` backs off 100 ms after a
    /// failed wait, so no time passing between many waits means a busy loop.
    var followerSpinLimit = 100

    /// How often a report of a complete copy fails by itself while faults run (a deadlock
    /// or a statement timeout in production).
    var reportFailureRate = 0.0
    /// Off: an owner never compares the copies of its moving partitions it counts complete
    /// with the database (`Replicator.checkMovingCopies`): a report that failed leaves the
    /// move waiting for good (a leaving node then stalls until its leave timeout).
    var checkMovingCopies = true

    /// Per-seed variety: node count, write and fault rates.
    static func forSeed(_ seed: UInt64) -> SimSettings {
        var random = SimRandom(seed: seed ^ 0x5EED_5E77_1465)
        var settings = SimSettings()
        settings.nodeCount = random.int(3...4)
        // The default moves 16 partitions at a time; larger batches settle in fewer tables
        // (each a planner run, the costliest step of the simulation) and still take two steps.
        settings.maxConcurrentMigrations = random.pick([16, 64, 271, 271])
        let writeGap = random.int64(5...40)
        settings.writeGapMs = 1...(writeGap * 2)
        let faultGap = random.int64(300...2_000)
        settings.faultGapMs = (faultGap / 2)...(faultGap * 2)
        settings.reportFailureRate = random.pick([0, 0, 0.1, 0.3])
        return settings
    }
}
