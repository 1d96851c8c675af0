import ArgumentParser
import DataPlane
import Foundation
import Metadata
import Tenancy

/// `topgun token`: mints an app JWT with a tenant's HS256 key, for development and tests.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint an app JWT signed with a tenant's HS256 signing key.",
        discussion: "Reads the key from the dev store (--data-dir) or from PostgreSQL (--postgres-url). Prints the token on stdout."
    )

    @Option(help: "Tenant id.") var tenant: String
    @Option(help: "Signing key id (kid) of that tenant.") var key: String
    @Option(help: "Subject (the user the token names).") var sub: String
    @Option(help: "Lifetime in seconds (default 3600).") var ttl: Int = 3600
    @Option(help: "Comma-separated roles.") var roles: String = ""
    @Option(help: "Dev data directory (default ./.topgun; env TOPGUN_DATA_DIR).") var dataDir: String?
    @Option(help: "PostgreSQL URL instead of the dev store (env TOPGUN_POSTGRES_URL).") var postgresURL: String?
    @Option(help: "Master key file for PostgreSQL (env TOPGUN_MASTER_KEY holds the key itself).") var masterKeyFile: String?

    func run() async throws {
        guard ttl > 0 else { exitWithError("--ttl must be positive") }
        let metadata: any MetadataStore
        if let url = postgresURL ?? (dataDir == nil ? Environment.value("TOPGUN_POSTGRES_URL") : nil) {
            let masterKey = try MasterKeyFile.load(base64: Environment.value("TOPGUN_MASTER_KEY"), file: masterKeyFile ?? Environment.value("TOPGUN_MASTER_KEY_FILE"))
            metadata = try await PostgresMetadataStore.connect(url: url, masterKey: masterKey)
        } else {
            let dir = URL(fileURLWithPath: dataDir ?? Environment.value("TOPGUN_DATA_DIR") ?? ".topgun").standardizedFileURL
            let keyFile = dir.appendingPathComponent("master.key")
            guard FileManager.default.fileExists(atPath: keyFile.path) else {
                exitWithError("no dev store in \(dir.path): start `topgun dev` there first, or pass --postgres-url")
            }
            metadata = try await SQLiteMetadataStore.open(.file(dir.appendingPathComponent("dev.sqlite").path), masterKey: try MasterKeyFile.loadOrCreate(at: keyFile))
        }
        guard let signingKey = try await metadata.signingKey(kid: key) else { exitWithError("no signing key '\(key)'") }
        guard signingKey.tenant.rawValue == tenant else { exitWithError("key '\(key)' does not belong to tenant '\(tenant)'") }
        guard signingKey.status == .active else { exitWithError("key '\(key)' is revoked") }
        guard case .hmacSecret = signingKey.material else {
            exitWithError("key '\(key)' is a public key; only HS256 keys can mint tokens here (sign with your private key instead)")
        }
        let roleList = roles.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let token = try await TokenIssuer(key: signingKey).mint(subject: sub, roles: roleList, ttl: TimeInterval(ttl))
        await metadata.shutdown()
        print(token)
    }
}
