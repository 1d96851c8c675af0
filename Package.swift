// swift-tools-version:6.1
import PackageDescription

// Swift 6 language mode everywhere: strict concurrency is an error, not a warning.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "topgun",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "topgun", targets: ["topgun"]),
        .library(name: "TopGunCore", targets: ["TopGunCore"]),
        .library(name: "TopGunWire", targets: ["TopGunWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
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
        // The one executable: argument parsing and wiring only.
        .executableTarget(
            name: "topgun",
            dependencies: [
                "TopGunCore",
                "TopGunWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
    ],
    swiftLanguageModes: [.v6]
)
