import ArgumentParser
import Foundation
import StratumDefinitions
import StratumJSON

extension Stratum {
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a definitions directory: YAML, schemas and cross-file semantics.",
            discussion: """
                Prints every problem as `path:line:column: error|warning: message (at /json/pointer)`.
                Exit codes: 0 valid, 1 invalid (or warnings with --strict), 2 usage or I/O error.
                """
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case text, json, github
        }

        @Argument(help: "The definitions directory.")
        var directory = "definitions"

        @Option(help: "Output format: text, json, or github (GitHub Actions annotations).")
        var format: Format = .text

        @Flag(help: "Fail (exit 1) on warnings too.")
        var strict = false

        func run() async throws {
            let result: DefinitionLoader.Result
            do {
                result = try DefinitionLoader.load(directory: directory)
            } catch {
                printError("error: \(error.description)")
                // A machine reading stdout learns of it too.
                switch format {
                case .json: print(JSONValue.object(["directory": .string(directory), "valid": false, "error": .string(error.description)]).jsonText(pretty: true))
                case .github: print("::error title=stratum validate::\(DiagnosticReport.escapeData(error.description))")
                case .text: break
                }
                throw ExitCode(2)
            }
            print(DiagnosticReport(result: result, directory: directory).render(format))
            let failed = result.diagnostics.errorCount > 0 || (strict && result.diagnostics.warningCount > 0)
            if failed { throw ExitCode(1) }
        }
    }
}

/// Renders a validation result in the formats `validate` offers.
struct DiagnosticReport {
    var result: DefinitionLoader.Result
    var directory: String

    func render(_ format: Stratum.Validate.Format) -> String {
        switch format {
        case .text: text
        case .json: json
        case .github: github
        }
    }

    var summary: String {
        let errors = result.diagnostics.errorCount
        let warnings = result.diagnostics.warningCount
        let verdict = errors == 0 ? "valid" : "invalid"
        return "\(directory): \(result.fileCount) file\(result.fileCount == 1 ? "" : "s"), \(result.definitions.count) definition\(result.definitions.count == 1 ? "" : "s"), "
            + "\(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s"): \(verdict)"
    }

    var text: String {
        (result.diagnostics.map(\.formatted) + [summary]).joined(separator: "\n")
    }

    var json: String {
        let diagnostics: [JSONValue] = result.diagnostics.map { diagnostic in
            var object = JSONObject()
            object["file"] = .string(diagnostic.file)
            object["line"] = .number(Double(diagnostic.location.line))
            object["column"] = .number(Double(diagnostic.location.column))
            object["severity"] = .string(diagnostic.severity.rawValue)
            object["message"] = .string(diagnostic.message)
            object["hint"] = diagnostic.hint.map(JSONValue.string) ?? .null
            object["pointer"] = diagnostic.pointer.map { .string($0.description) } ?? .null
            return .object(object)
        }
        let report: JSONValue = [
            "directory": .string(directory),
            "valid": .bool(result.isValid),
            "files": .number(Double(result.fileCount)),
            "definitions": .number(Double(result.definitions.count)),
            "errors": .number(Double(result.diagnostics.errorCount)),
            "warnings": .number(Double(result.diagnostics.warningCount)),
            "diagnostics": .array(diagnostics),
        ]
        return report.jsonText(pretty: true)
    }

    /// GitHub Actions workflow commands (`::error file=...,line=...::message`).
    var github: String {
        let lines = result.diagnostics.map { diagnostic in
            var message = diagnostic.message
            if let hint = diagnostic.hint { message += "; " + hint }
            if let pointer = diagnostic.pointer, !pointer.tokens.isEmpty { message += " (at \(pointer))" }
            return "::\(diagnostic.severity.rawValue) file=\(Self.escapeProperty(diagnostic.file)),line=\(diagnostic.location.line),col=\(diagnostic.location.column),title=stratum validate::\(Self.escapeData(message))"
        }
        return (lines + [summary]).joined(separator: "\n")
    }

    static func escapeData(_ text: String) -> String {
        text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D").replacingOccurrences(of: "\n", with: "%0A")
    }

    static func escapeProperty(_ text: String) -> String {
        escapeData(text).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
    }
}
