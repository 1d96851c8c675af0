import ArgumentParser
import ControlPlane
import DataPlane
import Foundation
import Logging
import Metadata
import Tenancy

/// `topgun dev`: everything on one machine with zero set-up, on an embedded SQLite file.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a development node on an embedded SQLite store, with a ready dev tenant.",
        discussion: """
            On first start it creates --data-dir (metadata, records, and the master key that \
            encrypts signing secrets) and a tenant 'dev' with an HS256 key; later starts reuse \
            them. Prints the URLs and a fresh app token valid for a day.
            """
    )

    @Option(help: "Where the SQLite file and master key live (env TOPGUN_DATA_DIR; default ./.topgun).")
    var dataDir: String?

    @Option(help: "Data-plane port; 0 picks a free one (env TOPGUN_PORT; default 8080).")
    var port: Int?

    @Option(help: "Control-plane port; 0 picks a free one (env TOPGUN_CONTROL_PLANE_PORT; default 8081, or 0 with --port 0).")
    var controlPlanePort: Int?

    @Option(help: "Interface to listen on (env TOPGUN_HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "Record storage: sqlite (durable, the default) or memory (records are lost at exit; for tests and benchmarks).")
    var storage: StorageKind = .sqlite

    @Flag(help: "Print exactly one line of JSON on stdout once ready (logs stay on stderr).")
    var json = false

    @OptionGroup var logging: LoggingOptions
    @OptionGroup var connectionLimit: ConnectionLimitOptions
    @OptionGroup var bounds: NodeBoundsOptions

    enum StorageKind: String, ExpressibleByArgument, CaseIterable {
        case sqlite
        case memory
    }

    func run() async throws {
        let logger = logging.bootstrap()
        let connectionRate = connectionLimit.resolved()
        let dataDir = URL(fileURLWithPath: self.dataDir ?? Environment.value("TOPGUN_DATA_DIR") ?? ".topgun").standardizedFileURL
        let port = self.port ?? Environment.value("TOPGUN_PORT").flatMap(Int.init) ?? 8080
        let host = self.host ?? Environment.value("TOPGUN_HOST") ?? "127.0.0.1"
        // With --port 0 (tests, several servers at once) the control plane picks a free port too.
        let controlPlanePort = self.controlPlanePort ?? Environment.value("TOPGUN_CONTROL_PLANE_PORT").flatMap(Int.init) ?? (port == 0 ? 0 : 8081)
        let databasePath = dataDir.appendingPathComponent("dev.sqlite").path

        let masterKey: [UInt8]
        let adminToken: String
        do {
            masterKey = try MasterKeyFile.loadOrCreate(at: dataDir.appendingPathComponent("master.key"))
            adminToken = try AdminTokenFile.loadOrCreate(at: dataDir.appendingPathComponent("admin.token"))
        } catch {
            exitWithError("cannot prepare \(dataDir.path): \(error)")
        }
        let metadata = try await SQLiteMetadataStore.open(.file(databasePath), masterKey: masterKey, logger: logger)
        try await metadata.migrate()
        let (tenant, key) = try await DevTenantSeed.ensure(in: metadata)
        let appToken = try await TokenIssuer(key: key).mint(subject: "dev-user", roles: ["user"], ttl: 86_400)

        let records: DataPlaneNode.RecordStorage
        switch storage {
        case .sqlite: records = .persistent(SQLiteServerStorage(path: databasePath, logger: logger))
        case .memory:
            records = .memoryOnly
            logger.warning("--storage memory: records are kept in memory only and are lost when the process exits")
        }
        var configuration = DataPlaneConfiguration(
            nodeId: "dev-node", host: host, port: port,
            connectionOpsPerSecond: connectionRate.perSecond, connectionOpsBurst: connectionRate.burst,
            storageMeterInterval: StorageMeterOption.interval())
        bounds.apply(to: &configuration)
        let node = DataPlaneNode(
            configuration: configuration,
            storage: records,
            authenticator: TokenAuthenticator(verifier: TokenVerifier(resolver: metadata)),
            metadata: metadata,
            logger: logger)
        let controlPlane = try ControlPlaneServer(
            configuration: ControlPlaneConfiguration(
                host: host, port: controlPlanePort, bootstrapToken: adminToken,
                requestsPerWindow: Environment.value("TOPGUN_ADMIN_RATE_LIMIT").flatMap(Int.init) ?? 600),
            store: metadata, logger: logger)
        let json = self.json
        let ready = DevReadyInfo(
            dataPlaneURL: "", httpURL: "", nodeId: "dev-node", tenant: tenant.id.rawValue, tenantSlug: tenant.slug,
            keyId: key.kid, appToken: appToken, storage: storage.rawValue, dataDir: dataDir.path, adminToken: adminToken)
        // Printed once both servers are listening.
        let announcer = ReadyAnnouncer(info: ready, json: json)
        let controlPlaneApplication = controlPlane.application { port in
            await announcer.controlPlaneBound("http://\(host):\(port)")
        }
        do {
            try await node.run(alongside: [controlPlaneApplication, IdempotencyPurgeService(store: metadata, logger: logger)]) { bound in
                await announcer.dataPlaneBound(webSocketURL: bound.webSocketURL, httpURL: bound.httpURL, maxConnections: bound.maxConnections)
            }
        } catch {
            await metadata.shutdown()
            exitWithError("the dev server stopped: \(ServeFailure.describe(error, ports: [port, controlPlanePort], host: host))")
        }
        await metadata.shutdown()
    }
}

/// What `topgun dev` (and `topgun data-plane`) print once ready.
struct DevReadyInfo: Encodable {
    var dataPlaneURL: String
    var httpURL: String
    var nodeId: String
    var tenant: String?
    var tenantSlug: String?
    var keyId: String?
    var appToken: String?
    var storage: String
    var dataDir: String?
    var controlPlaneURL: String?
    var adminToken: String?
    var maxConnections: Int?

    func jsonLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    func text() -> String {
        var lines = [
            "TopGun node \(nodeId) is ready.",
            "  Data plane (WebSocket):  \(dataPlaneURL)",
            "  HTTP (sync, health):     \(httpURL)  (POST /sync, GET /health, /ready, /metrics)",
        ]
        if let tenant, let keyId, let appToken {
            lines += [
                "  Tenant:                  \(tenant) (slug '\(tenantSlug ?? "")')",
                "  Signing key id:          \(keyId)",
                "  App token (24 h):        \(appToken)",
            ]
        }
        if let controlPlaneURL, let adminToken {
            lines += [
                "  Control plane (REST):    \(controlPlaneURL)  (API docs: \(controlPlaneURL)/docs)",
                "  Admin token:             \(adminToken)",
            ]
        }
        lines.append("  Storage:                 \(storage)\(dataDir.map { " in \($0)" } ?? "")")
        if let maxConnections { lines.append("  Client connections:      at most \(maxConnections)") }
        if let tenant, let keyId, let dataDir {
            lines.append("Mint more tokens with: topgun token --data-dir \(dataDir) --tenant \(tenant) --key \(keyId) --sub <user>")
        }
        lines.append("Stop with Ctrl-C.")
        return lines.joined(separator: "\n")
    }
}

/// Prints the ready line once both the data plane and the control plane listen.
actor ReadyAnnouncer {
    private var info: DevReadyInfo
    private let json: Bool
    private var dataPlaneReady = false
    private var controlPlaneReady = false

    init(info: DevReadyInfo, json: Bool) {
        self.info = info
        self.json = json
    }

    func dataPlaneBound(webSocketURL: String, httpURL: String, maxConnections: Int) {
        info.dataPlaneURL = webSocketURL
        info.httpURL = httpURL
        info.maxConnections = maxConnections
        dataPlaneReady = true
        announceIfReady()
    }

    func controlPlaneBound(_ url: String) {
        info.controlPlaneURL = url
        controlPlaneReady = true
        announceIfReady()
    }

    private func announceIfReady() {
        guard dataPlaneReady, controlPlaneReady else { return }
        // Unbuffered, so a parent process reading the pipe sees the line at once.
        FileHandle.standardOutput.write(Data(((json ? info.jsonLine() : info.text()) + "\n").utf8))
    }
}

/// The 32-byte master key that encrypts signing secrets at rest: base64 in a file readable
/// by its owner only, created on first use.
enum MasterKeyFile {
    static func loadOrCreate(at url: URL) throws -> [UInt8] {
        let manager = FileManager.default
        try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if let data = manager.contents(atPath: url.path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let bytes = Data(base64Encoded: text), bytes.count == 32 else {
                throw ValidationError("\(url.path) does not hold a base64 32-byte key")
            }
            return [UInt8](bytes)
        }
        let key = SecretBox.generateMasterKey()
        guard manager.createFile(atPath: url.path, contents: Data(Data(key).base64EncodedString().utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(url.path)")
        }
        return key
    }

    /// The key from `TOPGUN_MASTER_KEY` (base64) or a file.
    static func load(base64: String?, file: String?) throws -> [UInt8] {
        if let base64 {
            guard let bytes = Data(base64Encoded: base64), bytes.count == 32 else {
                throw ValidationError("the master key must be 32 bytes, base64")
            }
            return [UInt8](bytes)
        }
        if let file {
            return try loadOrCreate(at: URL(fileURLWithPath: file))
        }
        throw ValidationError("no master key: set --master-key-file or TOPGUN_MASTER_KEY (32 bytes, base64)")
    }
}
