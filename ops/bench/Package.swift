// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package so that the product's build and CI never compile
// them; `ops/bench/run` builds this in release mode against the checkout beside it.
//
// - TopGunBench: codec and CRDT microbenchmarks (issue 2).
// - TopGunLoad: the load generator of issue 3 (throughput, latency, idle connections), a
//   process of its own that speaks the protocol over raw NIO sockets.
// - WritePathBench: the node's write path per OP_BATCH in one process, without sockets.
// - EchoServer: the ceiling for throughput, a minimal WebSocket echo server on the server's
//   own stack (Hummingbird 2 + hummingbird-websocket).
// - ConstantServer: the baseline of the control-plane benchmark (issue 4, ops/bench/control-plane),
//   a bare Hummingbird 2 route returning a constant JSON body.
let package = Package(
    name: "topgun-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "topgun", path: "../.."),
        // Same versions as the root package's.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
    ],
    targets: [
        .executableTarget(
            name: "TopGunBench",
            dependencies: [
                "BatchFrames",
                .product(name: "TopGunCore", package: "topgun"),
                .product(name: "TopGunWire", package: "topgun"),
            ],
            path: "Sources/TopGunBench"
        ),
        // The load generator's OP_BATCH frames, shared with the in-process write-path figure.
        .target(
            name: "BatchFrames",
            dependencies: [
                .product(name: "TopGunCore", package: "topgun"),
                .product(name: "TopGunWire", package: "topgun"),
            ],
            path: "Sources/BatchFrames"
        ),
        .executableTarget(
            name: "WritePathBench",
            dependencies: [
                "BatchFrames",
                .product(name: "DataPlane", package: "topgun"),
                .product(name: "Tenancy", package: "topgun"),
                .product(name: "TopGunCore", package: "topgun"),
                .product(name: "TopGunWire", package: "topgun"),
            ],
            path: "Sources/WritePathBench"
        ),
        .executableTarget(
            name: "TopGunLoad",
            dependencies: [
                "BatchFrames",
                .product(name: "TopGunCore", package: "topgun"),
                .product(name: "TopGunWire", package: "topgun"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/TopGunLoad",
            // Event-loop-confined NIO handlers; Swift 5 mode keeps Sendable checks as warnings.
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "EchoServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ],
            path: "Sources/EchoServer"
        ),
        .executableTarget(
            name: "ConstantServer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Sources/ConstantServer"
        ),
    ],
    swiftLanguageModes: [.v6]
)
