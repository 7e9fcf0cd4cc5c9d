// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "stratum",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "stratum", targets: ["stratum"]),
        .library(name: "StratumDefinitions", targets: ["StratumDefinitions"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        // No default traits: they make SwiftPM reorder compiler flags and rebuild Hummingbird on every run.
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio", exact: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "StratumJSON"),
        .target(name: "StratumCrypto", dependencies: ["CCrypto"]),
        .target(
            name: "StratumDefinitions",
            dependencies: ["CYAML", "StratumJSON"],
            plugins: ["EmbedSchemasPlugin"]
        ),
        .target(
            name: "StratumStore",
            dependencies: [
                "CSQLite", "StratumJSON", "StratumDefinitions", "StratumCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "StratumEngine",
            dependencies: [
                "StratumJSON", "StratumDefinitions", "StratumStore", "StratumCrypto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "StratumDelivery",
            dependencies: [
                "CCurl", "StratumCrypto", "StratumJSON", "StratumDefinitions", "StratumStore", "StratumEngine",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "StratumServer",
            dependencies: [
                "StratumJSON", "StratumDefinitions", "StratumStore", "StratumEngine", "StratumCrypto", "StratumDelivery",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "stratum",
            dependencies: [
                "StratumDefinitions", "StratumStore", "StratumEngine", "StratumDelivery", "StratumServer", "StratumCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(name: "EmbedSchemas"),
        .plugin(name: "EmbedSchemasPlugin", capability: .buildTool(), dependencies: ["EmbedSchemas"]),
        .target(
            name: "StratumTestSupport",
            dependencies: ["StratumEngine", "StratumStore", "StratumDefinitions", "StratumJSON"],
            path: "Tests/StratumTestSupport"
        ),
        .testTarget(name: "StratumJSONTests", dependencies: ["StratumJSON"]),
        // Fixtures are read from the source tree by path, not bundled.
        .testTarget(name: "StratumDefinitionsTests", dependencies: ["StratumDefinitions", "StratumTestSupport", "stratum"], exclude: ["Fixtures"]),
        .testTarget(name: "StratumEngineTests", dependencies: [
            "StratumEngine", "StratumStore", "StratumDefinitions", "StratumCrypto", "StratumJSON", "StratumTestSupport",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ], exclude: ["Fixtures"]),
        .testTarget(
            name: "StratumDeliveryTests",
            dependencies: [
                "StratumDelivery", "StratumEngine", "StratumStore", "StratumDefinitions", "StratumCrypto", "StratumJSON", "StratumTestSupport", "stratum",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "StratumServerTests",
            dependencies: [
                "StratumServer", "StratumEngine", "StratumStore", "StratumDefinitions", "StratumJSON", "StratumTestSupport", "stratum",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
