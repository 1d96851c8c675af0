import ArgumentParser
import ControlPlane
import Foundation
import Hummingbird
import Metadata
import ServiceLifecycle

/// `topgun control-plane`: the operators' REST API on PostgreSQL metadata.
struct ControlPlaneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control-plane",
        abstract: "Run the control plane (the REST API for tenants, keys, quotas, schemas, usage and audit) on PostgreSQL.",
        discussion: """
            The API is described by GET /openapi.yaml and rendered at GET /docs. Operators \
            authenticate with admin tokens; the bootstrap token (all scopes) comes from \
            TOPGUN_ADMIN_TOKEN or --admin-token-file and must be at least 32 characters.
            """
    )

    @Option(help: "PostgreSQL URL, postgres://user[:password]@host:port/database (env TOPGUN_POSTGRES_URL).")
    var postgresURL: String?

    @Option(help: "File holding the base64 master key (env TOPGUN_MASTER_KEY holds the key itself).")
    var masterKeyFile: String?

    @Option(help: "File holding the bootstrap admin token (env TOPGUN_ADMIN_TOKEN holds the token itself).")
    var adminTokenFile: String?

    @Option(help: "Port to listen on; 0 picks a free one (env TOPGUN_CONTROL_PLANE_PORT; default 8081).")
    var port: Int?

    @Option(help: "Interface to listen on (env TOPGUN_HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "Requests per admin token per minute (env TOPGUN_ADMIN_RATE_LIMIT; default 600).")
    var rateLimit: Int?

    @Flag(help: "Print one line of JSON ({\"controlPlaneURL\": ...}) on stdout once ready.")
    var json = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        guard let url = postgresURL ?? Environment.value("TOPGUN_POSTGRES_URL") else {
            exitWithError("no PostgreSQL URL: pass --postgres-url or set TOPGUN_POSTGRES_URL")
        }
        let masterKey = try MasterKeyFile.load(base64: Environment.value("TOPGUN_MASTER_KEY"), file: masterKeyFile ?? Environment.value("TOPGUN_MASTER_KEY_FILE"))
        let bootstrapToken = try AdminTokenFile.load(value: Environment.value("TOPGUN_ADMIN_TOKEN"), file: adminTokenFile)
        if bootstrapToken == nil {
            logger.warning("no bootstrap admin token (TOPGUN_ADMIN_TOKEN or --admin-token-file): only stored admin tokens are accepted")
        }
        let store = try await PostgresMetadataStore.connect(url: url, masterKey: masterKey, logger: logger)
        try await store.migrate()
        let configuration = ControlPlaneConfiguration(
            host: host ?? Environment.value("TOPGUN_HOST") ?? "127.0.0.1",
            port: port ?? Environment.value("TOPGUN_CONTROL_PLANE_PORT").flatMap(Int.init) ?? 8081,
            bootstrapToken: bootstrapToken,
            requestsPerWindow: rateLimit ?? Environment.value("TOPGUN_ADMIN_RATE_LIMIT").flatMap(Int.init) ?? 600)
        let server: ControlPlaneServer
        do {
            server = try ControlPlaneServer(configuration: configuration, store: store, logger: logger)
        } catch {
            exitWithError("cannot start the control plane: \(error)")
        }
        let json = self.json
        let host = configuration.host
        let application = server.application { port in
            let url = "http://\(host):\(port)"
            let line = json ? "{\"controlPlaneURL\":\"\(url)\"}" : "TopGun control plane is ready at \(url) (API docs: \(url)/docs). Stop with Ctrl-C."
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: application), .init(service: IdempotencyPurgeService(store: store, logger: logger))],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await store.shutdown()
            exitWithError("the control plane stopped: \(ServeFailure.describe(error, ports: [configuration.port], host: configuration.host))")
        }
        await store.shutdown()
    }
}

/// The bootstrap admin token: from the environment, or a file (created with a fresh token on
/// first use by `topgun dev`).
enum AdminTokenFile {
    static func load(value: String?, file: String?) throws -> String? {
        if let value, !value.isEmpty { return value }
        guard let file else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func loadOrCreate(at url: URL) throws -> String {
        let manager = FileManager.default
        if let data = manager.contents(atPath: url.path) {
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let token = AdminTokenValue.generate()
        guard manager.createFile(atPath: url.path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(url.path)")
        }
        return token
    }
}

/// Why serving stopped, for one line on stderr: a port in use says which.
enum ServeFailure {
    static func describe(_ error: any Error, ports: [Int], host: String?) -> String {
        let text = String(describing: error)
        if text.contains("Address already in use") {
            let listed = ports.filter { $0 != 0 }.map { "\(host ?? "*"):\($0)" }.joined(separator: " or ")
            return "a port is already in use\(listed.isEmpty ? "" : " (\(listed))"); stop the other server or pick other ports (0 picks free ones)"
        }
        return text
    }
}
