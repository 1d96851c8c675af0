import Migrations

/// A migration's SQL failed; nothing of that migration was applied (each runs in its own
/// transaction). Connection problems are `MetadataError.unavailable` instead.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public var version: Int
    public var name: String
    /// The database's message.
    public var message: String

    public init(version: Int, name: String, message: String) {
        self.version = version
        self.name = name
        self.message = message
    }

    public var description: String {
        "migration \(String(format4: version))_\(name) failed: \(message)"
    }
}

extension String {
    /// `7` as `0007`, the way migration files are numbered.
    init(format4 value: Int) {
        let digits = String(value)
        self = String(repeating: "0", count: Swift.max(0, 4 - digits.count)) + digits
    }
}
