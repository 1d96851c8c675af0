import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs `query` and reads all its rows (so the connection is free for the next query).
    @discardableResult
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await self.query(query, logger: logger).collect()
    }
}

extension PostgresClient {
    /// Runs `query` on a pooled connection and reads all its rows.
    @discardableResult
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await self.query(query, logger: logger).collect()
    }
}
