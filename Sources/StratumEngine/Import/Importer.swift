import Foundation
import StratumCrypto
import StratumJSON
import StratumStore

/// Bulk import through the ingestion pipeline: Segment-format JSONL (one
/// message per line) or CRM CSV mapped by the Source's `csv.columns`.
public struct Importer: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case jsonl, csv
    }

    /// A line or row that was not imported, and why.
    public struct Problem: Sendable, Hashable {
        public var line: Int
        public var column: Int
        public var message: String
    }

    public struct Summary: Sendable {
        public var stored = 0
        public var duplicates = 0
        public var problems: [Problem] = []
    }

    let store: any Store
    let pipeline: IngestionPipeline
    let source: SourceRuntime
    /// Messages per transaction.
    let groupSize: Int

    public init(store: any Store, pipeline: IngestionPipeline, source: SourceRuntime, groupSize: Int = 1_000) {
        self.store = store
        self.pipeline = pipeline
        self.source = source
        self.groupSize = groupSize
    }

    /// Imports `bytes`; `progress` is called after each committed group with the bytes consumed.
    ///
    /// `fileName` (the file's base name) is part of the ids a CSV row gets:
    /// the same file imported twice stores nothing new, while a later export
    /// (another name) repeating an earlier row is new data — a value that
    /// changed and changed back is not dropped as a duplicate.
    public func run(_ bytes: [UInt8], format: Format, fileName: String = "", progress: (Int) -> Void = { _ in }) async throws -> Summary {
        var summary = Summary()
        var pending: [IncomingMessage] = []
        func flush(consumed: Int) async throws {
            guard !pending.isEmpty else { return }
            let messages = pending
            let pipeline = self.pipeline
            let source = self.source
            let outcomes = try await store.write { transaction in try pipeline.process(messages, source: source, in: transaction) }
            for outcome in outcomes {
                if case .duplicate = outcome { summary.duplicates += 1 } else { summary.stored += 1 }
            }
            pending.removeAll(keepingCapacity: true)
            progress(consumed)
        }
        let receivedAt = pipeline.clock()
        switch format {
        case .jsonl:
            var lineNumber = 0
            // A UTF-8 byte order mark is no part of the first line.
            var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
            while start < bytes.count {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                lineNumber += 1
                var line = bytes[start..<end]
                start = end + 1
                // A CRLF file's lines are the same messages (and the same derived ids) as an LF file's.
                if line.last == 0x0D { line = line.dropLast() }
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                guard line.count <= MessageParser.maximumMessageBytes else {
                    summary.problems.append(Problem(line: lineNumber, column: 1, message: "is \(line.count) bytes; a message may be at most \(MessageParser.maximumMessageBytes) bytes (32 KB), as over HTTP"))
                    continue
                }
                do {
                    let value = try JSONParser.parse(Array(line))
                    if let object = value.objectValue, object["batch"] != nil, object["type"] == nil {
                        throw MessageError(path: "batch", message: "a line holds one message, not a batch; write each message of the batch on its own line")
                    }
                    // A line exported from Segment says when it was received (or at least
                    // sent): history keeps its dates instead of taking the import's.
                    let object = value.objectValue ?? [:]
                    let received = try MessageParser.instantField(object, "receivedAt", "receivedAt")
                        ?? MessageParser.instantField(object, "sentAt", "sentAt") ?? receivedAt
                    let message = try MessageParser.parse(value, type: nil, path: "", receivedAt: received, newMessageID: {
                        // Deterministic, so importing the same file twice stores nothing new.
                        "import:" + Digest.sha256Hex(source.name + "\n" + String(decoding: line, as: UTF8.self))
                    })
                    if case .violation(let path, let text) = source.trackingPlan?.check(message) {
                        throw MessageError(path: path, message: text)
                    }
                    pending.append(message)
                } catch let error as JSONParser.SyntaxError {
                    summary.problems.append(Problem(line: lineNumber, column: error.column, message: "not valid JSON: \(error.message)"))
                } catch let error as MessageError {
                    summary.problems.append(Problem(line: lineNumber, column: 1, message: error.description))
                }
                if pending.count >= groupSize { try await flush(consumed: start) }
            }
            try await flush(consumed: bytes.count)
        case .csv:
            guard let mapping = source.csvMapping else {
                summary.problems.append(Problem(line: 1, column: 1, message: "Source \(source.name) has no csv column mapping; add csv: {columns: ...} to it"))
                return summary
            }
            var reader = CSVReader(bytes, delimiter: mapping.delimiter?.utf8.first ?? UInt8(ascii: ","))
            let header: [CSVReader.Field]
            do {
                guard let first = try reader.next() else {
                    summary.problems.append(Problem(line: 1, column: 1, message: "the file is empty; expected a header row naming the columns"))
                    return summary
                }
                header = first
            } catch {
                summary.problems.append(Problem(line: error.line, column: error.column, message: error.message))
                return summary
            }
            let names = header.map { $0.text.trimmingWhitespace() }
            // A mapped column named twice is ambiguous; repeated unmapped ones (a spreadsheet's
            // empty trailing columns) are not read at all.
            for (index, name) in names.enumerated() where mapping.columns[name] != nil {
                if let first = names.firstIndex(of: name), first < index {
                    summary.problems.append(Problem(line: header[index].line, column: header[index].column, message: "column \"\(name)\" appears twice (first at column \(header[first].column)); rename or remove one"))
                }
            }
            for column in mapping.columns.keys.sorted() where !names.contains(column) {
                summary.problems.append(Problem(line: 1, column: 1, message: "the header has no column \"\(column)\" that Source \(source.name) maps; columns: \(names.joined(separator: ", "))"))
            }
            guard summary.problems.isEmpty else { return summary }
            while true {
                let row: [CSVReader.Field]
                do {
                    guard let next = try reader.next() else { break }
                    row = next
                } catch {
                    reader.skipLine()
                    // A quote gone wrong can take many lines with it: say which.
                    let last = reader.lastLine
                    let skipped = last > error.recordLine ? "; lines \(error.recordLine)–\(last) are skipped" : "; the row is skipped"
                    summary.problems.append(Problem(line: error.line, column: error.column, message: error.message + skipped))
                    continue
                }
                let line = row.first?.line ?? 0
                guard row.count == names.count else {
                    summary.problems.append(Problem(line: line, column: 1, message: "has \(row.count) fields; the header has \(names.count)"))
                    continue
                }
                do {
                    pending.append(try message(row: row, names: names, mapping: mapping.columns, receivedAt: receivedAt, fileName: fileName))
                } catch let error as MessageError {
                    let column = names.firstIndex { mapping.columns[$0] == error.path }.map { row[$0].column } ?? 1
                    summary.problems.append(Problem(line: line, column: column, message: error.description))
                }
                if pending.count >= groupSize { try await flush(consumed: reader.offset) }
            }
            try await flush(consumed: bytes.count)
        }
        return summary
    }

    /// One CSV row as an identify message.
    func message(row: [CSVReader.Field], names: [String], mapping: [String: String], receivedAt: Milliseconds, fileName: String) throws -> IncomingMessage {
        var message: JSONObject = ["type": "identify"]
        var traits = JSONObject()
        var externalIDs: [JSONValue] = []
        for (index, name) in names.enumerated() {
            guard let target = mapping[name] else { continue }
            let value = row[index].text.trimmingWhitespace()
            guard !value.isEmpty else { continue }
            if target.hasPrefix("traits.") {
                // traits.address.city is {"address": {"city": ...}}, as a JSON identify sends it
                // and as rules read profile_data.address.city.
                Self.set(.string(value), at: target.dropFirst(7).split(separator: ".").map(String.init), in: &traits)
            } else if target.hasPrefix("context.externalIds.") {
                externalIDs.append(["id": .string(value), "type": .string(String(target.dropFirst(20))), "collection": "users", "encoding": "none"])
            } else {
                message[target] = .string(value)
            }
        }
        message["traits"] = .object(traits)
        if !externalIDs.isEmpty { message["context"] = ["externalIds": .array(externalIDs)] }
        let rowText = row.map(\.text).joined(separator: "\u{1F}")
        let messageID = "import:" + Digest.sha256Hex(source.name + "\n" + fileName + "\n" + rowText)
        return try MessageParser.parse(.object(message), type: .identify, path: "", receivedAt: receivedAt, newMessageID: { messageID })
    }

    /// Sets `value` at the nested `path` of `object`, making the objects on the way.
    static func set(_ value: JSONValue, at path: [String], in object: inout JSONObject) {
        guard let key = path.first else { return }
        guard path.count > 1 else { return object[key] = value }
        var inner = object[key]?.objectValue ?? JSONObject()
        set(value, at: Array(path.dropFirst()), in: &inner)
        object[key] = .object(inner)
    }
}
