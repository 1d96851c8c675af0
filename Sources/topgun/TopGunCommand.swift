import ArgumentParser

/// `topgun`: the one executable of the product (design.md §1).
@main
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
