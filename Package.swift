// swift-tools-version:6.1
import PackageDescription

// Swift 6 language mode everywhere: strict concurrency is an error, not a warning.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// Every SQL file under Migrations/, embedded in code. A test checks that none is missing.
var migrationResources: [Resource] {
    [
        "sqlite/0001_tenants_and_signing_keys.sqlite.sql",
        "postgres/0001_tenants_and_signing_keys.postgres.sql",
        "sqlite/0002_records.sqlite.sql",
        "postgres/0002_records.postgres.sql",
        "sqlite/0003_control_plane.sqlite.sql",
        "postgres/0003_control_plane.postgres.sql",
        "sqlite/0004_record_sequence.sqlite.sql",
        "postgres/0004_record_sequence.postgres.sql",
        "sqlite/0005_map_kinds.sqlite.sql",
        "postgres/0005_map_kinds.postgres.sql",
        "sqlite/0006_cluster.sqlite.sql",
        "postgres/0006_cluster.postgres.sql",
        "sqlite/0007_cluster_incarnations.sqlite.sql",
        "postgres/0007_cluster_incarnations.postgres.sql",
        "sqlite/0008_cluster_quotas.sqlite.sql",
        "postgres/0008_cluster_quotas.postgres.sql",
    ].map { .embedInCode($0) }
}

let package = Package(
    name: "topgun",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "topgun", targets: ["topgun"]),
        .library(name: "TopGunCore", targets: ["TopGunCore"]),
        .library(name: "TopGunWire", targets: ["TopGunWire"]),
        .library(name: "Tenancy", targets: ["Tenancy"]),
        .library(name: "Metadata", targets: ["Metadata"]),
        .library(name: "DataPlane", targets: ["DataPlane"]),
        .library(name: "ControlPlane", targets: ["ControlPlane"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // Pure data types and algorithms: no I/O.
        .target(
            name: "TopGunCore",
            path: "Sources/TopGunCore",
            swiftSettings: swiftSettings
        ),
        // MessagePack codec and the typed protocol messages.
        .target(
            name: "TopGunWire",
            dependencies: ["TopGunCore"],
            path: "Sources/TopGunWire",
            swiftSettings: swiftSettings
        ),
        // What both planes share about tenants: ids, request context, JWT verification.
        .target(
            name: "Tenancy",
            dependencies: [
                "TopGunCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Tenancy",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        // The ordered SQL files, embedded in the binary so it finds them from anywhere.
        .target(
            name: "Migrations",
            path: "Migrations",
            exclude: ["README.md"],
            resources: migrationResources,
            swiftSettings: swiftSettings
        ),
        // The metadata store (tenants, keys, ...) on SQLite and PostgreSQL.
        .target(
            name: "Metadata",
            dependencies: [
                "Tenancy",
                "Migrations",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Metadata",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        // The HTTP/1 edge both planes share: problem answers to requests the parser refuses.
        .target(
            name: "HTTPEdge",
            dependencies: [
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/HTTPEdge",
            swiftSettings: swiftSettings
        ),
        // A data-plane node: sessions, handlers, storage with write-behind.
        .target(
            name: "DataPlane",
            dependencies: [
                "TopGunCore",
                "TopGunWire",
                "Tenancy",
                "Metadata",
                "HTTPEdge",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "DataPlane",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        // The control plane: the operators' REST API (ControlPlane/openapi.yaml is its contract).
        .target(
            name: "ControlPlane",
            dependencies: [
                "TopGunCore",
                "Tenancy",
                "Metadata",
                "HTTPEdge",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "ControlPlane",
            exclude: ["README.md"],
            resources: [.embedInCode("openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        // The one executable: argument parsing and wiring only.
        .executableTarget(
            name: "topgun",
            dependencies: [
                "TopGunCore",
                "TopGunWire",
                "Tenancy",
                "Metadata",
                "DataPlane",
                "ControlPlane",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/topgun",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TopGunCoreTests",
            dependencies: [
                "TopGunCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/TopGunCoreTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TopGunWireTests",
            dependencies: [
                "TopGunCore",
                "TopGunWire",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/TopGunWireTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TenancyTests",
            dependencies: [
                "Tenancy",
                "TopGunCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/TenancyTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MetadataTests",
            dependencies: [
                "Metadata", "Tenancy", "Migrations",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/MetadataTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HTTPEdgeTests",
            dependencies: [
                "HTTPEdge",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/HTTPEdgeTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DataPlaneTests",
            dependencies: [
                "DataPlane", "Metadata", "Tenancy", "TopGunWire", "TopGunCore",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/DataPlaneTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ControlPlaneTests",
            dependencies: [
                "ControlPlane", "Metadata", "Tenancy",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/ControlPlaneTests",
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
