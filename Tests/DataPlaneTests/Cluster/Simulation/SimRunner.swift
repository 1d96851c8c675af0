import Foundation

/// Runs seeds of the cluster simulation and reports what each found.
enum SimRunner {
    struct Outcome: Sendable {
        var seed: UInt64
        /// The first violated invariant, and every one violated.
        var violation: String?
        var violations: [String]
        var digest: UInt64
        var events: Int
        var virtualMs: Int64
        var writes: Int
        var acks: Int
        var crashes: Int
        var settledAfterMs: Int64?
        var settlingEvents = 0
        var plannerRuns = 0
        var tablesPublished = 0
        /// Restarts (or leases taken again) that raced the failover: see `SimDatabase.runsReplaced`.
        var runsReplaced = 0
    }

    /// Changes made to every seed's settings (a test's switches).
    typealias Adjustment = @Sendable (inout SimSettings) -> Void

    static func run(seed: UInt64, verbose: Bool = false, adjust: Adjustment = { _ in }) -> (Outcome, [String]) {
        var settings = SimSettings.forSeed(seed)
        adjust(&settings)
        let world = SimWorld(seed: seed, settings: settings, verbose: verbose)
        world.run()
        let violations = SimInvariants.check(world).map(\.description)
        let outcome = Outcome(
            seed: seed, violation: violations.first, violations: violations, digest: world.digest, events: world.faultyEvents, virtualMs: world.now,
            writes: world.writeCount, acks: world.acks.count, crashes: world.crashes.count, settledAfterMs: world.settledAt,
            settlingEvents: world.settlingEvents, plannerRuns: world.plannerRuns, tablesPublished: world.tablesPublished,
            runsReplaced: world.database.runsReplaced)
        return (outcome, world.lines)
    }

    /// Every seed, `parallelism` at a time (each run is single-threaded and independent).
    static func run(
        seeds: [UInt64], parallelism: Int = ProcessInfo.processInfo.activeProcessorCount, adjust: @escaping Adjustment = { _ in }
    ) async -> [Outcome] {
        await withTaskGroup(of: Outcome.self) { group in
            var results: [Outcome] = []
            var next = seeds.makeIterator()
            for _ in 0..<max(1, parallelism) {
                guard let seed = next.next() else { break }
                group.addTask { run(seed: seed, adjust: adjust).0 }
            }
            for await outcome in group {
                results.append(outcome)
                if let seed = next.next() { group.addTask { run(seed: seed, adjust: adjust).0 } }
            }
            return results.sorted { $0.seed < $1.seed }
        }
    }

    /// How a failing seed is reported: the seed, the violated invariant, how to replay it,
    /// and the end of its trace.
    static func report(_ outcome: Outcome, traceLines: Int = 60, adjust: Adjustment = { _ in }) -> String {
        let (_, lines) = run(seed: outcome.seed, verbose: true, adjust: adjust)
        return """
            seed \(outcome.seed) failed: \(outcome.violation ?? "?")
            replay: TOPGUN_SIM_SEED=\(outcome.seed) .build/x86_64-unknown-linux-gnu/debug/topgunPackageTests.xctest --testing-library swift-testing --filter ClusterSimulation
            last \(min(traceLines, lines.count)) of \(lines.count) trace lines:
            \(lines.suffix(traceLines).joined(separator: "\n"))
            """
    }
}
