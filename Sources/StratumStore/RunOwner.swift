import Foundation

/// Which process an evaluation run belongs to: the boot, the process id and
/// the process's start time (a reused pid is another process). A run left
/// `running` by a process that died can then be told from one still going in
/// another process on this machine (`stratum refresh` beside the daemon; a
/// SQLite store in WAL mode is only ever shared on one machine).
public enum RunOwner {
    static let current = of(process: getpid())

    /// The owner string of a running process.
    public static func of(process pid: Int32) -> String {
        "\(bootID):\(pid):\(startTime(of: pid) ?? "")"
    }

    /// This boot's id (Linux); empty where there is none.
    static let bootID = ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "")
        .trimmingCharacters(in: .whitespacesAndNewlines)

    /// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
    static func startTime(of pid: Int32) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let name = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: name)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }

    /// Whether the process that wrote `owner` is still running (no owner: runs
    /// recorded before owners were, whose process is long gone).
    static func isAlive(_ owner: String?) -> Bool {
        let parts = owner?.split(separator: ":", omittingEmptySubsequences: false) ?? []
        guard parts.count == 3, parts[0] == bootID, let pid = Int32(parts[1]) else { return false }
        if parts[2].isEmpty { return kill(pid, 0) == 0 || errno == EPERM }
        return startTime(of: pid) == String(parts[2])
    }
}
