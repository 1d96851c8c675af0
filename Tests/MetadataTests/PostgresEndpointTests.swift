@testable import Metadata
import Testing

@Suite("PostgresEndpoint")
struct PostgresEndpointTests {
    @Test func fullURLIsParsed() throws {
        let endpoint = try PostgresEndpoint(url: "postgresql://app%40x:p%3Ass@db.example:6543/topgun?sslmode=require&application_name=cp")
        #expect(endpoint == PostgresEndpoint(
            host: "db.example", port: 6543, username: "app@x", password: "p:ss", database: "topgun", tls: .require, applicationName: "cp"))
        #expect(endpoint.description == "postgres://app@x@db.example:6543/topgun")
        #expect(!endpoint.description.contains("p:ss"))
    }

    @Test func defaultsArePort5432AndPreferTLS() throws {
        let endpoint = try PostgresEndpoint(url: "postgres://postgres@127.0.0.1/topgun_test")
        #expect(endpoint.port == 5432 && endpoint.tls == .prefer && endpoint.password == nil)
        #expect(try PostgresEndpoint(url: "postgres://u@h/d?sslmode=disable").tls == .disable)
    }

    @Test("bad URLs are refused with a reason", arguments: [
        "mysql://u@h/d", "postgres://h/d", "postgres://u@h", "postgres://u@h/", "not a url", "postgres://u@h/d?sslmode=bogus",
    ])
    func badURLsAreRefused(_ url: String) {
        #expect(throws: MetadataError.self) { try PostgresEndpoint(url: url) }
    }

    @Test func anotherDatabaseKeepsTheRest() throws {
        let endpoint = try PostgresEndpoint(url: "postgres://u:p@h:1/a")
        #expect(endpoint.with(database: "b") == PostgresEndpoint(host: "h", port: 1, username: "u", password: "p", database: "b"))
    }
}
