import ArgumentParser
import Foundation

/// The `stratum` command: the daemon and every tool around the definitions.
///
/// Exit codes: 0 success, 1 invalid definitions (or a failed check),
/// 2 usage or I/O error.
@main
struct Stratum: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stratum",
        abstract: "Stratum, a customer data platform whose definitions live in git.",
        discussion: "Exit codes: 0 success, 1 invalid definitions or failed check, 2 usage or I/O error.",
        subcommands: [Run.self, Validate.self, Import.self, Refresh.self, Segment.self, TraitCommand.self, RFMCommand.self, Webhooks.self, Bench.self]
    )

    /// Parses and runs, mapping argument errors to exit code 2 (not 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}

/// Writes a line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
