import Foundation

/// The repository's root directory.
public let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs the built `stratum` binary, as a user would.
public enum StratumBinary {
    public static var url: URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appending(path: "stratum")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
            directory = directory.deletingLastPathComponent()
        }
        return repositoryRoot.appending(path: ".build/debug/stratum")
    }

    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    public static func run(_ arguments: [String], environment: [String: String] = [:], directory: URL = repositoryRoot) throws -> Output {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// A `stratum run` daemon in its own process, on a free loopback port.
public final class DaemonProcess: @unchecked Sendable {
    public let process = Process()
    public let port: Int
    private let stderrPipe = Pipe()

    /// Starts the daemon and waits (at most `timeout` seconds) until it listens.
    public init(arguments: [String], environment: [String: String], timeout: TimeInterval = 60) throws {
        process.executableURL = StratumBinary.url
        process.arguments = ["run", "--listen", "127.0.0.1:0"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdoutPipe = Pipe()
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        try process.run()
        var output = ""
        let deadline = Date().addingTimeInterval(timeout)
        let handle = stdoutPipe.fileHandleForReading
        while Date() < deadline, !output.contains("\n"), process.isRunning {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            output += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = output.split(separator: "\n").first(where: { $0.contains("listening on http://") }),
            let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
        else {
            process.terminate()
            let errors = String(decoding: stderrPipe.fileHandleForReading.availableData, as: UTF8.self)
            throw DaemonError(description: "the daemon did not start: \(output) \(errors)")
        }
        self.port = port
    }

    public struct DaemonError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Sends `signal` and waits for the process to exit; returns its status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
