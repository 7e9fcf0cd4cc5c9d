import Foundation
import StratumJSON

/// The published JSON Schemas in `schemas/`, compiled into the binary by the
/// EmbedSchemas build plugin, and a validator over them.
public enum DefinitionSchemas {
    /// Base URI the schema files are registered under; their relative `$ref`s
    /// resolve between each other as they do on disk.
    public static let baseURI = "stratum:/schemas/"

    /// File name to exact file bytes, as in `schemas/`.
    public static let files: [String: [UInt8]] = EmbeddedSchemas.base64Files.mapValues { encoded in
        Array(Data(base64Encoded: encoded) ?? Data())
    }

    /// A validator with every schema file registered.
    public static let validator: JSONSchemaValidator = {
        var validator = JSONSchemaValidator()
        for (file, bytes) in files.sorted(by: { $0.key < $1.key }) {
            // The files are checked by tests; a broken one fails every validation loudly.
            let schema = (try? JSONParser.parse(bytes)) ?? .bool(false)
            validator.register(schema, uri: baseURI + file)
        }
        return validator
    }()

    /// The violations of `definition` against its kind's schema.
    public static func violations(of definition: JSONValue, kind: DefinitionKind) -> [SchemaViolation] {
        validator.validate(definition, against: baseURI + kind.schemaFile)
    }
}
