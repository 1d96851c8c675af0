import Testing

@Suite("SQLite metadata store")
struct SQLiteMetadataStoreTests {
    @Test(arguments: StoreBehaviour.allCases)
    func behaves(_ behaviour: StoreBehaviour) async throws {
        try await StoreKind.sqlite.withHarness { try await behaviour.run($0) }
    }
}

/// Runs when `TOPGUN_TEST_POSTGRES_URL` is set (`ops/postgres start` prints it); also when `CI`
/// or `TOPGUN_REQUIRE_POSTGRES` is set, and then fails if the URL is missing.
@Suite("PostgreSQL metadata store", .enabled(if: PostgresTestEnvironment.shouldRun, "set TOPGUN_TEST_POSTGRES_URL (ops/postgres start)"))
struct PostgresMetadataStoreTests {
    @Test(arguments: StoreBehaviour.allCases)
    func behaves(_ behaviour: StoreBehaviour) async throws {
        try await StoreKind.postgres.withHarness { try await behaviour.run($0) }
    }
}
