import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Where a PostgreSQL database is and how to log in, parsed from a URL such as
/// `postgres://user:password@127.0.0.1:55432/topgun?sslmode=disable`.
///
/// `checkReachable()` answers within its timeout whether the server accepts this login. Do
/// that before building a `PostgresClient`: the client's pool reports a wrong port or a
/// refused login only after about a minute (its circuit breaker).
public struct PostgresEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// How TLS is used, as libpq's `sslmode` (`verify-*` modes are treated as `require`).
    public enum TLSMode: String, Sendable, Equatable {
        case disable
        case prefer
        case require
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// Shown in `pg_stat_activity`, so operators can tell our connections apart.
    public var applicationName: String

    public init(
        host: String, port: Int = 5432, username: String, password: String? = nil, database: String,
        tls: TLSMode = .prefer, applicationName: String = "topgun"
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.applicationName = applicationName
    }

    /// Parses `postgres://` or `postgresql://` URLs. User and database are required; the port
    /// defaults to 5432; `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`)
    /// defaults to `prefer`; `application_name` is honoured.
    /// - Throws: `MetadataError.invalid` naming what is wrong (never echoing the password).
    public init(url text: String) throws(MetadataError) {
        guard let components = URLComponents(string: text),
              let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql"
        else {
            throw .invalid("a PostgreSQL URL looks like postgres://user:password@host:5432/database")
        }
        guard let host = components.host, !host.isEmpty else { throw .invalid("the PostgreSQL URL has no host") }
        guard let user = components.user, !user.isEmpty else { throw .invalid("the PostgreSQL URL has no user name") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw .invalid("the PostgreSQL URL has no database name") }
        var tls = TLSMode.prefer
        var applicationName = "topgun"
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("sslmode", "disable"?), ("sslmode", "allow"?): tls = .disable
            case ("sslmode", "prefer"?): tls = .prefer
            case ("sslmode", "require"?), ("sslmode", "verify-ca"?), ("sslmode", "verify-full"?): tls = .require
            case ("sslmode", let other): throw .invalid("unknown sslmode \(other ?? "")")
            case ("application_name", let name?): applicationName = name
            default: continue
            }
        }
        self.init(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database, tls: tls, applicationName: applicationName)
    }

    /// The same server and login, another database.
    public func with(database: String) -> PostgresEndpoint {
        var copy = self
        copy.database = database
        return copy
    }

    /// `postgres://user@host:port/database`, without the password: safe to log.
    public var description: String {
        "postgres://\(username)@\(host):\(port)/\(database)"
    }

    /// A configuration for `PostgresClient` (pool of up to `maximumConnections`).
    public func clientConfiguration(connectTimeout: Duration = .seconds(5), maximumConnections: Int = 10) -> PostgresClient.Configuration {
        let clientTLS: PostgresClient.Configuration.TLS = switch tls {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: clientTLS)
        configuration.options.connectTimeout = connectTimeout
        configuration.options.maximumConnections = maximumConnections
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        return configuration
    }

    /// One TLS context for every single connection: making one reads and parses the system's
    /// CA bundle, which cost a few milliseconds of CPU on each of a node's connections (a node
    /// that is not the coordinator opens one every heartbeat to try the coordinator's lock).
    private static let clientSSLContext = Result { try NIOSSLContext(configuration: .makeClientConfiguration()) }

    /// A configuration for a single `PostgresConnection` (LISTEN, probes).
    public func connectionConfiguration(connectTimeout: Duration = .seconds(5), applicationName: String? = nil) throws -> PostgresConnection.Configuration {
        let connectionTLS: PostgresConnection.Configuration.TLS = switch tls {
        case .disable: .disable
        case .prefer: .prefer(try Self.clientSSLContext.get())
        case .require: .require(try Self.clientSSLContext.get())
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: connectionTLS)
        configuration.options.connectTimeout = TimeAmount.nanoseconds(connectTimeout.nanoseconds)
        configuration.options.additionalStartupParameters = [("application_name", applicationName ?? self.applicationName)]
        return configuration
    }

    /// Opens a connection, logs in, runs `SELECT 1` and closes, all within `timeout`.
    /// - Throws: `MetadataError.unavailable` saying which server could not be used and why.
    public func checkReachable(timeout: Duration = .seconds(5), logger: Logger = Logger(label: "topgun.metadata.postgres")) async throws(MetadataError) {
        do {
            try await withDeadline(timeout) {
                let connection = try await PostgresConnection.connect(
                    configuration: try self.connectionConfiguration(connectTimeout: timeout),
                    id: PostgresConnectionIDs.next(),
                    logger: logger)
                do {
                    _ = try await connection.query("SELECT 1", logger: logger).collect()
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            }
        } catch {
            throw .unavailable("PostgreSQL at \(self) is not usable: \(PostgresErrors.describe(error))")
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// Ids for connections we open ourselves (postgres-nio wants one per connection, for logs).
enum PostgresConnectionIDs {
    private static let counter = Mutex(0)
    static func next() -> Int {
        counter.withLock { value in
            value += 1
            return value
        }
    }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    var timeout: Duration
    var description: String { "no answer within \(timeout)" }
}

/// Runs `body`, cancelling it and throwing `DeadlineExceeded` if it takes longer than `timeout`.
func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw DeadlineExceeded(timeout: timeout)
        }
        return value
    }
}
