import ArgumentParser

/// The load generator of issue 3: a process of its own that drives a TopGun node (or the
/// echo server) over loopback WebSockets. Each subcommand prints one JSON line per figure
/// on stdout; progress goes to stderr. `ops/bench/run dataplane|postgres` orchestrates it.
@main
struct TopGunLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "TopGunLoad",
        abstract: "Load generator for a TopGun data-plane node.",
        subcommands: [Throughput.self, Latency.self, Idle.self, Tenants.self, ClusterThroughput.self, Fill.self, Failover.self]
    )
}
