import Foundation
import StratumJSON

/// Loads a definitions directory: every `*.yaml`/`*.yml` file at any depth,
/// through YAML, schema and semantic validation, reporting every problem.
public enum DefinitionLoader {
    /// The result of loading: the definitions that passed YAML and schema
    /// validation, and every diagnostic (semantic ones included).
    public struct Result: Sendable {
        public var definitions: DefinitionSet
        public var diagnostics: [Diagnostic]
        public var fileCount: Int

        public var isValid: Bool { diagnostics.errorCount == 0 }
    }

    /// Why a directory could not be read at all (not a definition problem).
    public struct ReadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Loads and validates every definition file under `directory`.
    ///
    /// `environment` answers `${env:NAME}` checks (unset ones are warnings).
    public static func load(directory: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ReadError) -> Result {
        let files = try definitionFiles(in: directory)
        var inputs: [(path: String, bytes: [UInt8])] = []
        var diagnostics: [Diagnostic] = []
        for path in files {
            // A file over the limit is refused by its size, never read whole.
            if let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int), size > YAMLLoader.maximumFileSize {
                diagnostics.append(YAMLLoader.tooLarge(size: size, file: path))
                continue
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                diagnostics.append(Diagnostic(file: path, location: .start, message: "cannot read the file"))
                continue
            }
            inputs.append((path, Array(data)))
        }
        var result = load(files: inputs, environment: environment)
        result.diagnostics = (diagnostics + result.diagnostics).sortedForDisplay()
        result.fileCount = files.count
        return result
    }

    /// Loads and validates definitions given as file contents.
    public static func load(files: [(path: String, bytes: [UInt8])], environment: [String: String] = [:]) -> Result {
        var set = DefinitionSet()
        var diagnostics: [Diagnostic] = []
        for file in files {
            diagnostics += loadFile(file.path, file.bytes, into: &set)
        }
        diagnostics += SemanticChecker(definitions: set, environment: environment).check()
        return Result(definitions: set, diagnostics: diagnostics.sortedForDisplay(), fileCount: files.count)
    }

    /// Every definition file (`.yaml`, `.yml`, any case) under `directory`,
    /// sorted; hidden entries are skipped. Symbolic links are followed (a
    /// shared `segments -> ../shared/segments`), each real directory walked
    /// once, so a loop cannot hang the walk. A directory that cannot be read,
    /// or a link to a definition file that does not exist, is an error:
    /// skipping it would call a set valid that was never read.
    public static func definitionFiles(in directory: String) throws(ReadError) -> [String] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw ReadError(description: "\(directory): no such directory")
        }
        guard isDirectory.boolValue else {
            throw ReadError(description: "\(directory) is a file; pass the directory that holds the definitions")
        }
        var files: [String] = []
        var pending = [directory.hasSuffix("/") ? String(directory.dropLast()) : directory]
        var walked: Set<String> = []
        while let current = pending.popLast() {
            guard walked.insert(URL(fileURLWithPath: current).resolvingSymlinksInPath().path).inserted else { continue }
            let names: [String]
            do {
                names = try manager.contentsOfDirectory(atPath: current)
            } catch {
                throw ReadError(description: "\(current): cannot read the directory (\((error as NSError).localizedDescription))")
            }
            for name in names where !name.hasPrefix(".") {
                let path = current + "/" + name
                let type = (try? manager.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
                let isDefinition = [".yaml", ".yml"].contains { name.lowercased().hasSuffix($0) }
                switch type {
                case .typeDirectory?:
                    pending.append(path)
                case .typeSymbolicLink?:
                    var target: ObjCBool = false
                    if manager.fileExists(atPath: path, isDirectory: &target) {
                        if target.boolValue {
                            pending.append(path)
                        } else if isDefinition {
                            files.append(path)
                        }
                    } else if isDefinition {
                        throw ReadError(description: "\(path): a symbolic link to a file that does not exist")
                    }
                default:
                    if isDefinition { files.append(path) }
                }
            }
        }
        return files.sorted()
    }

    static func loadFile(_ path: String, _ bytes: [UInt8], into set: inout DefinitionSet) -> [Diagnostic] {
        let (parsed, yamlDiagnostics) = YAMLLoader.load(bytes, file: path)
        guard let document = parsed else { return yamlDiagnostics }
        guard case .object(let object) = document.root else {
            return [Diagnostic(file: path, location: document.location(of: .root), message: "a definition is a mapping, found \(document.root.briefDescription)", hint: "start the file with kind: and name:")]
        }
        guard let kindValue = object["kind"] else {
            return [Diagnostic(file: path, location: document.location(of: .root), message: "missing required key \"kind\"", hint: "add kind: " + DefinitionKind.allCases.map(\.rawValue).joined(separator: " | "))]
        }
        let kindPointer = JSONPointer(["kind"])
        guard let kindText = kindValue.stringValue, let kind = DefinitionKind(rawValue: kindText) else {
            let kinds = DefinitionKind.allCases.map(\.rawValue)
            let hint = kindValue.stringValue.flatMap { Suggestion.closest(to: $0, in: kinds) }.map { "did you mean \"\($0)\"?" }
                ?? "expected one of: " + kinds.joined(separator: ", ")
            return [Diagnostic(file: path, location: document.location(of: kindPointer), message: "unknown kind \(kindValue.briefDescription)", pointer: kindPointer, hint: hint)]
        }
        // A definition that fails here is still named: its own errors are reported,
        // and references to it are not reported again as unknown names.
        let unloaded = object["name"]?.stringValue.map { "\(kind.rawValue)/\(object["tenant"]?.stringValue ?? Tenant.defaultID)/\($0)" }
        let violations = withoutEchoes(DefinitionSchemas.violations(of: document.root, kind: kind))
        if !violations.isEmpty {
            if let unloaded { set.unloaded.insert(unloaded) }
            return violations.map { diagnostic(for: $0, in: document, file: path) }
        }
        do {
            switch kind {
            case .settings: set.settings.append(try decode(document, path))
            case .source: set.sources.append(try decode(document, path))
            case .identity: set.identities.append(try decode(document, path))
            case .trait: set.traits.append(try decode(document, path))
            case .rfm: set.rfmModels.append(try decode(document, path))
            case .segment: set.segments.append(try decode(document, path))
            case .funnel: set.funnels.append(try decode(document, path))
            case .webhook: set.webhooks.append(try decode(document, path))
            }
        } catch let error as DecodingError {
            if let unloaded { set.unloaded.insert(unloaded) }
            return [decodingDiagnostic(error, document: document, file: path)]
        } catch {
            if let unloaded { set.unloaded.insert(unloaded) }
            return [Diagnostic(file: path, location: .start, message: "\(error)")]
        }
        return []
    }

    static func decode<D: Definition>(_ document: YAMLDocument, _ path: String) throws -> Loaded<D> {
        Loaded(definition: try JSONValueDecoder().decode(D.self, from: document.root), file: path, document: document)
    }

    /// Drops "missing required key K" when the same mapping has an unknown
    /// key that is a likely typo of K: one mistake, reported once.
    static func withoutEchoes(_ violations: [SchemaViolation]) -> [SchemaViolation] {
        let typos = violations.filter { $0.keyword == "additionalProperties" }
        guard !typos.isEmpty else { return violations }
        return violations.filter { violation in
            guard violation.keyword == "required", let key = violation.message.split(separator: "\"").dropFirst().first else { return true }
            return !typos.contains { typo in
                typo.instancePath.parent == violation.instancePath && typo.hint == "did you mean \"\(key)\"?"
            }
        }
    }

    /// A schema violation as a diagnostic at the offending key or value.
    static func diagnostic(for violation: SchemaViolation, in document: YAMLDocument, file: String) -> Diagnostic {
        var hint = violation.hint
        if hint == nil, violation.keyword == "pattern", let value = document.root.value(at: violation.instancePath)?.stringValue {
            hint = FieldPath.suggestion(forPointer: violation.instancePath, value: value)
        }
        if violation.keyword == "type", violation.message.hasPrefix("expected true or false"),
            let text = document.root.value(at: violation.instancePath)?.stringValue,
            ["yes", "no", "on", "off", "y", "n"].contains(text.lowercased())
        {
            hint = "write true or false; YAML 1.2 reads \(text) as text"
        }
        if violation.keyword == "type", violation.message.hasPrefix("expected a string"),
            let value = document.root.value(at: violation.instancePath), value.stringValue == nil, value.arrayValue == nil, value.objectValue == nil
        {
            hint = "quote the value to keep it as text"
        }
        return Diagnostic(
            file: file,
            location: document.location(of: violation.instancePath, preferKey: violation.isAboutKey),
            message: violation.message,
            pointer: violation.instancePath,
            hint: hint
        )
    }

    /// A value the schema allowed but the model could not take (a schema gap).
    static func decodingDiagnostic(_ error: DecodingError, document: YAMLDocument, file: String) -> Diagnostic {
        let context: DecodingError.Context
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): context = c
        @unknown default: return Diagnostic(file: file, location: .start, message: "\(error)")
        }
        let pointer = JSONPointer(context.codingPath.map { $0.intValue.map(String.init) ?? JSONValueDecoder.snakeCase($0.stringValue) })
        return Diagnostic(file: file, location: document.location(of: pointer), message: context.debugDescription, pointer: pointer)
    }
}
