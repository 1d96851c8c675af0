// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package so that the product's build and CI never compile
// them; `ops/bench/run` builds this in release mode against the checkout beside it.
let package = Package(
    name: "topgun-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "topgun", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "TopGunBench",
            dependencies: [
                .product(name: "TopGunCore", package: "topgun"),
                .product(name: "TopGunWire", package: "topgun"),
            ],
            path: "Sources/TopGunBench"
        ),
    ],
    swiftLanguageModes: [.v6]
)
