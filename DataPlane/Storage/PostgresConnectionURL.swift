import Foundation
import PostgresNIO

/// A PostgreSQL connection URL, `postgres://user[:password]@host[:port]/database`, as
/// `TOPGUN_*` settings and `ops/postgres` spell it. TLS is not configured here: the node and
/// its database talk over loopback or a private network (`sslmode` other than `disable` is
/// refused rather than silently ignored).
public struct PostgresConnectionURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String

    public init(host: String, port: Int = 5432, username: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `postgres://` or `postgresql://` URLs; throws `StorageError.unavailable` naming
    /// what is wrong.
    public init(_ text: String) throws(StorageError) {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme.lowercased())
        else {
            throw .unavailable("not a postgres:// URL: \(Self.redacted(text))")
        }
        guard let host = components.host, !host.isEmpty else {
            throw .unavailable("the PostgreSQL URL names no host")
        }
        guard let user = components.user, !user.isEmpty else {
            throw .unavailable("the PostgreSQL URL names no user")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else {
            throw .unavailable("the PostgreSQL URL names no database")
        }
        for item in components.queryItems ?? [] where item.name == "sslmode" && item.value != "disable" {
            throw .unavailable("sslmode=\(item.value ?? "") is not supported; use sslmode=disable")
        }
        self.init(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database.removingPercentEncoding ?? database
        )
    }

    /// The same server with another database (tests create one database per test).
    public func with(database: String) -> PostgresConnectionURL {
        var copy = self
        copy.database = database
        return copy
    }

    /// A pool configuration for `PostgresClient`.
    public var clientConfiguration: PostgresClient.Configuration {
        PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: .disable)
    }

    /// A single-connection configuration (for the fail-fast probe at start).
    public var connectionConfiguration: PostgresConnection.Configuration {
        PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: .disable)
    }

    /// The URL without its password, for logs and errors.
    public var description: String {
        "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
    }

    private static func redacted(_ text: String) -> String {
        guard let at = text.firstIndex(of: "@"), let scheme = text.range(of: "://"), scheme.upperBound < at else { return text }
        return String(text[..<scheme.upperBound]) + "***" + String(text[at...])
    }
}
