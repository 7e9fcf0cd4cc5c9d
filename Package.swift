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
    ],
    targets: [
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .target(name: "StratumJSON"),
        .target(
            name: "StratumDefinitions",
            dependencies: ["CYAML", "StratumJSON"],
            plugins: ["EmbedSchemasPlugin"]
        ),
        .executableTarget(
            name: "stratum",
            dependencies: [
                "StratumDefinitions",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "EmbedSchemas"),
        .plugin(name: "EmbedSchemasPlugin", capability: .buildTool(), dependencies: ["EmbedSchemas"]),
        .testTarget(name: "StratumJSONTests", dependencies: ["StratumJSON"]),
        .testTarget(name: "StratumDefinitionsTests", dependencies: ["StratumDefinitions", "stratum"]),
    ],
    swiftLanguageModes: [.v6]
)
