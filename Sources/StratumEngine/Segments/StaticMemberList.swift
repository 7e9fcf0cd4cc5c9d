import Foundation
import StratumJSON
import StratumStore

/// A CSV list of a static segment's members, as a customer-care team exports
/// it: a header row, then one person per row, named by `profile_id` or by any
/// identifier type of the tenant's Identity (`email`, `phone`, `external_id`,
/// ...). A row's first non-empty column names it.
///
/// Identifiers are normalised and hashed exactly as ingestion does, so
/// `Ana@Example.com ` finds the profile that sent `ana@example.com`.
public struct StaticMemberList: Sendable {
    /// One usable row: how it names its profile, and where it is.
    public struct Entry: Sendable, Hashable {
        public enum Key: Sendable, Hashable {
            case profileID(String)
            case identifier(type: String, hash: String)
        }

        public var key: Key
        public var line: Int
        /// The column and value as written, for reports.
        public var written: String
    }

    /// A row that names no profile, or a profile that does not exist.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Why a file cannot be read as a member list at all.
    public struct FormatError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var column: Int
        public var message: String
        public var description: String { "\(line):\(column): \(message)" }
    }

    public var entries: [Entry] = []
    /// Rows skipped while reading (blank or unusable values).
    public var problems: [Problem] = []

    /// Reads `bytes` (UTF-8 CSV with a header row) with `identity`'s types and normalisation.
    public init(csv bytes: [UInt8], identity: IdentityRules) throws(FormatError) {
        var reader = CSVReader(bytes)
        let first: [CSVReader.Field]?
        do {
            first = try reader.next()
        } catch {
            throw FormatError(line: error.line, column: error.column, message: error.message)
        }
        guard let header = first else { throw FormatError(line: 1, column: 1, message: "the file is empty; expected a header row such as `email` or `profile_id`") }
        let known = ["profile_id"] + identity.types.keys.sorted()
        var columns: [(index: Int, name: String)] = []
        for (index, field) in header.enumerated() {
            let name = field.text.trimmingWhitespace().lowercased()
            guard known.contains(name) else {
                let hint = Suggestion.closest(to: name, in: known).map { "did you mean \($0)? " } ?? ""
                throw FormatError(line: field.line, column: field.column, message: "unknown column \"\(field.text)\"; \(hint)columns are profile_id or an identifier type: \(known.dropFirst().joined(separator: ", "))")
            }
            guard !columns.contains(where: { $0.name == name }) else {
                throw FormatError(line: field.line, column: field.column, message: "column \(name) appears twice")
            }
            columns.append((index, name))
        }
        while true {
            let row: [CSVReader.Field]
            do {
                guard let next = try reader.next() else { break }
                row = next
            } catch {
                throw FormatError(line: error.line, column: error.column, message: error.message)
            }
            let line = row.first?.line ?? 0
            guard row.count <= header.count else {
                throw FormatError(line: line, column: row[header.count].column, message: "this row has \(row.count) fields; the header has \(header.count)")
            }
            guard let (name, text) = columns.lazy.compactMap({ column -> (String, String)? in
                guard column.index < row.count else { return nil }
                let text = row[column.index].text.trimmingWhitespace()
                return text.isEmpty ? nil : (column.name, text)
            }).first else {
                problems.append(Problem(line: line, message: "no value in any of \(columns.map(\.name).joined(separator: ", "))"))
                continue
            }
            if name == "profile_id" {
                entries.append(Entry(key: .profileID(text), line: line, written: "profile_id \(text)"))
            } else if let identifier = identity.identifier(type: name, raw: text) {
                entries.append(Entry(key: .identifier(type: name, hash: identifier.hash), line: line, written: "\(name) \(text)"))
            } else {
                problems.append(Problem(line: line, message: "\(name) \"\(text)\" is not a usable identifier (it does not normalise, or it is a blocked value)"))
            }
        }
    }

    /// The profile ids the entries name, following merges to the survivor;
    /// entries naming no stored profile become problems.
    public func resolve(tenant: String, in reader: any StoreReader) throws -> (profileIDs: [String], problems: [Problem]) {
        var ids: [String] = []
        var missing = problems
        for entry in entries {
            switch entry.key {
            case .profileID(let id):
                if let current = try reader.currentProfileID(tenant: tenant, id: id) {
                    ids.append(current)
                } else {
                    missing.append(Problem(line: entry.line, message: "no profile \(id) in tenant \(tenant)"))
                }
            case .identifier(let type, let hash):
                if let match = try reader.matches(tenant: tenant, identifiers: [(type, hash)]).first {
                    ids.append(match.profileID)
                } else {
                    missing.append(Problem(line: entry.line, message: "no profile holds \(entry.written)"))
                }
            }
        }
        return (ids, missing.sorted { $0.line < $1.line })
    }
}
