import Foundation
import PackagePlugin

/// Compiles the JSON Schemas in `schemas/` into the target that declares this plugin,
/// so the binary validates with exactly the published files and no copy can drift.
@main
struct EmbedSchemasPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let schemasDirectory = context.package.directoryURL.appending(path: "schemas")
        let schemaFiles = try FileManager.default
            .contentsOfDirectory(at: schemasDirectory, includingPropertiesForKeys: nil)
            .filter { $0.lastPathComponent.hasSuffix(".schema.json") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedSchemas.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(schemaFiles.count) JSON Schemas from schemas/",
                executable: try context.tool(named: "EmbedSchemas").url,
                arguments: [output.path] + schemaFiles.map(\.path),
                inputFiles: schemaFiles,
                outputFiles: [output]
            )
        ]
    }
}
