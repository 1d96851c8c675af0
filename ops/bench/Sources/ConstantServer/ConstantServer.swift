import Foundation
import Hummingbird
import Logging

/// The baseline for the control-plane benchmark (issue 4, `ops/bench/control-plane`): a bare
/// Hummingbird 2 application (the control plane's HTTP stack, without its pipeline or store)
/// whose routes answer a fixed small JSON body: `GET /constant` and `POST /constant`, and the
/// same under the control plane's own path templates (`GET /v1/tenants/:tenant_id`,
/// `POST /v1/tenants/:tenant_id/keys`), so one wrk script drives both servers alike. POST
/// routes read the request body (as the control plane does) and discard it.
///
/// Usage: ConstantServer [--port P]   prints one JSON line {"url": "http://127.0.0.1:P", "pid": N} once bound.
@main
struct ConstantServer {
    static func main() async throws {
        let args = CommandLine.arguments
        let port: Int
        if let i = args.firstIndex(of: "--port"), i + 1 < args.count, let p = Int(args[i + 1]) { port = p } else { port = 0 }
        var logger = Logger(label: "constant")
        logger.logLevel = .warning
        let body = ByteBuffer(string: #"{"id":"tn_constantconstantcons","status":"ok"}"#)
        let router = Router()
        @Sendable func get(_ request: Request, _ context: BasicRequestContext) -> Response {
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
        }
        @Sendable func post(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
            _ = try await request.body.collect(upTo: 262_144)
            return Response(status: .created, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
        }
        router.get("/constant", use: get)
        router.post("/constant", use: post)
        router.get("/v1/tenants/:tenant_id", use: get)
        router.post("/v1/tenants/:tenant_id/keys", use: post)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "constant"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                let line = "{\"url\": \"http://127.0.0.1:\(bound)\", \"pid\": \(ProcessInfo.processInfo.processIdentifier)}\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            },
            logger: logger
        )
        try await app.runService()
    }
}
