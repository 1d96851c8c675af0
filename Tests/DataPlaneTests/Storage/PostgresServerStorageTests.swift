@testable import DataPlane
import Metadata
import Testing

extension StorageTests {
    /// What is particular to the PostgreSQL storage: failing fast and clearly when the server is
    /// not there (its URL is `PostgresEndpoint`'s, tested with the metadata store).
    @Suite("PostgresServerStorage")
    struct PostgresServerStorageTests {
        @Test(.timeLimit(.minutes(1)))
        func prepareFailsFastWhenNothingListens() async throws {
            // Port 9 (discard) on loopback: nothing listens there.
            let storage = PostgresServerStorage(
                endpoint: PostgresEndpoint(host: "127.0.0.1", port: 9, username: "postgres", database: "none", tls: .disable),
                connectTimeout: .seconds(2), logger: quietLogger)
            let started = ContinuousClock.now
            await #expect {
                try await storage.prepare()
            } throws: { error in
                guard case .unavailable(let why)? = error as? StorageError else { return false }
                return why.contains("cannot reach PostgreSQL at postgres://postgres@127.0.0.1:9/none")
            }
            // The pool alone would take about a minute (its circuit breaker); the bounds are
            // loose because parallel tests on two cores delay everything.
            #expect(ContinuousClock.now - started < .seconds(20))
            #expect(await storage.isReachable() == false)
            #expect(ContinuousClock.now - started < .seconds(30))
            await storage.shutdown()
        }

        @Test(.enabled(if: PostgresTestEnvironment.isIncluded), .timeLimit(.minutes(1)))
        func aMissingDatabaseFailsFastWithTheServersReason() async throws {
            let url = try PostgresTestEnvironment.url().with(database: "topgun_no_such_database")
            let storage = PostgresServerStorage(endpoint: url, connectTimeout: .seconds(2), logger: quietLogger)
            await #expect {
                try await storage.prepare()
            } throws: { error in
                guard case .unavailable(let why)? = error as? StorageError else { return false }
                return why.contains("does not exist")
            }
            await storage.shutdown()
        }
    }
}
