import ArgumentParser

/// The process's entry: tunes the allocator (`MallocTuning`, which may start the process
/// again), then runs the command line.
@main
enum TopGunMain {
    static func main() async {
        MallocTuning.restartTunedIfNeeded()
        await TopGunCommand.main()
    }
}

/// `topgun`: the one executable of the product (design.md §1).
struct TopGunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topgun",
        abstract: "TopGun: the reactive data grid that extends the cluster into the browser.",
        discussion: """
            Subcommands that are not listed here are not built yet; the README's status table \
            says what works.
            """,
        version: TopGunVersion.current,
        subcommands: [DevCommand.self, ControlPlaneCommand.self, DataPlaneCommand.self, TokenCommand.self, MigrateCommand.self, WireCommand.self]
    )
}

enum TopGunVersion {
    static let current = "0.1.0"
}
