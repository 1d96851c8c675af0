@testable import DataPlane
import Testing

extension StorageTests {
    /// What is particular to the PostgreSQL storage: its URL, and failing fast and clearly when
    /// the server is not there.
    @Suite("PostgresServerStorage")
    struct PostgresServerStorageTests {
        @Test func parsesConnectionURLs() throws {
            let url = try PostgresConnectionURL("postgres://postgres@127.0.0.1:55432/topgun_test")
            #expect(url == PostgresConnectionURL(host: "127.0.0.1", port: 55432, username: "postgres", database: "topgun_test"))
            let withPassword = try PostgresConnectionURL("postgresql://app:s%40cret@db.internal/records?sslmode=disable")
            #expect(withPassword.password == "s@cret")
            #expect(withPassword.port == 5432)
            #expect(withPassword.description == "postgres://app:***@db.internal:5432/records")
            for bad in ["mysql://u@h/db", "postgres://h/db", "postgres://u@h", "postgres://u@h/db?sslmode=require", "not a url"] {
                #expect(throws: StorageError.self) { try PostgresConnectionURL(bad) }
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func prepareFailsFastWhenNothingListens() async throws {
            // Port 9 (discard) on loopback: nothing listens there.
            let storage = PostgresServerStorage(
                url: PostgresConnectionURL(host: "127.0.0.1", port: 9, username: "postgres", database: "none"),
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
            let storage = PostgresServerStorage(url: url, connectTimeout: .seconds(2), logger: quietLogger)
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
