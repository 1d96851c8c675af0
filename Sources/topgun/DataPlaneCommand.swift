import ArgumentParser
import DataPlane
import Foundation
import Metadata
import Tenancy

/// `topgun data-plane`: one data-plane node on PostgreSQL.
struct DataPlaneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data-plane",
        abstract: "Run a data-plane node whose metadata and records live in PostgreSQL."
    )

    @Option(help: "PostgreSQL URL, postgres://user[:password]@host:port/database (env TOPGUN_POSTGRES_URL).")
    var postgresURL: String?

    @Option(help: "File holding the base64 master key (env TOPGUN_MASTER_KEY holds the key itself).")
    var masterKeyFile: String?

    @Option(help: "Port to listen on; 0 picks a free one (env TOPGUN_PORT; default 8080).")
    var port: Int?

    @Option(help: "Interface to listen on (env TOPGUN_HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "This node's id, unique in its cluster: 1 to 64 letters, digits, '.', '_' or '-' (env TOPGUN_NODE_ID; default the host name, which nodes on one machine share).")
    var nodeId: String?

    @Flag(help: "Print one line of JSON on stdout once ready.")
    var json = false

    @Flag(help: "Create (or reuse) a tenant 'dev' with an HS256 key and print a day-long app token for it; for development and tests until tenants come from the control plane.")
    var devTenant = false

    @OptionGroup var logging: LoggingOptions
    @OptionGroup var connectionLimit: ConnectionLimitOptions
    @OptionGroup var bounds: NodeBoundsOptions
    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        let logger = logging.bootstrap()
        let connectionRate = connectionLimit.resolved()
        guard let url = postgresURL ?? Environment.value("TOPGUN_POSTGRES_URL") else {
            exitWithError("no PostgreSQL URL: pass --postgres-url or set TOPGUN_POSTGRES_URL")
        }
        let masterKey = try MasterKeyFile.load(base64: Environment.value("TOPGUN_MASTER_KEY"), file: masterKeyFile ?? Environment.value("TOPGUN_MASTER_KEY_FILE"))
        let nodeId = (self.nodeId ?? Environment.value("TOPGUN_NODE_ID") ?? ProcessInfo.processInfo.hostName).replacingOccurrences(of: ":", with: "-")
        let metadata = try await PostgresMetadataStore.connect(url: url, masterKey: masterKey, logger: logger)
        try await metadata.migrate()
        var dev: (Tenant, SigningKey, String)?
        if devTenant {
            let (tenant, key) = try await DevTenantSeed.ensure(in: metadata)
            dev = (tenant, key, try await TokenIssuer(key: key).mint(subject: "dev-user", roles: ["user"], ttl: 86_400))
        }
        let records = PostgresServerStorage(endpoint: try PostgresEndpoint(url: url), logger: logger)
        var configuration = DataPlaneConfiguration(
            nodeId: nodeId, host: host ?? Environment.value("TOPGUN_HOST") ?? "127.0.0.1",
            port: port ?? Environment.value("TOPGUN_PORT").flatMap(Int.init) ?? 8080,
            connectionOpsPerSecond: connectionRate.perSecond, connectionOpsBurst: connectionRate.burst,
            storageMeterInterval: StorageMeterOption.interval())
        bounds.apply(to: &configuration)
        let clusterSettings = cluster.resolved(node: nodeId, host: configuration.host)
        configuration.advertiseHost = clusterSettings?.advertiseHost
        let node = DataPlaneNode(
            configuration: configuration,
            storage: .persistent(records),
            authenticator: TokenAuthenticator(verifier: TokenVerifier(resolver: metadata)),
            metadata: metadata,
            cluster: try clusterSettings.map { (PostgresClusterStore(endpoint: try PostgresEndpoint(url: url), logger: logger), $0) },
            logger: logger)
        let json = self.json
        let ready = dev
        do {
            try await node.run { bound in
                let info = DevReadyInfo(
                    dataPlaneURL: bound.webSocketURL, httpURL: bound.httpURL, nodeId: nodeId, tenant: ready?.0.id.rawValue,
                    tenantSlug: ready?.0.slug, keyId: ready?.1.kid, appToken: ready?.2, storage: "postgres", dataDir: nil,
                    maxConnections: bound.maxConnections)
                // Unbuffered, so a parent process reading the pipe sees the line at once.
                FileHandle.standardOutput.write(Data(((json ? info.jsonLine() : info.text()) + "\n").utf8))
            }
        } catch {
            await metadata.shutdown()
            exitWithError("the data plane stopped: \(ServeFailure.describe(error, ports: [], host: nil))")
        }
        await metadata.shutdown()
    }
}
