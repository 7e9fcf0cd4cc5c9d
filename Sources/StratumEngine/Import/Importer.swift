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
    public func run(_ bytes: [UInt8], format: Format, progress: (Int) -> Void = { _ in }) async throws -> Summary {
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
            var start = 0
            while start < bytes.count {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                lineNumber += 1
                let line = bytes[start..<end]
                start = end + 1
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                do {
                    let value = try JSONParser.parse(Array(line))
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
                guard let first = try reader.next() else { return summary }
                header = first
            } catch {
                summary.problems.append(Problem(line: error.line, column: error.column, message: error.message))
                return summary
            }
            let names = header.map { $0.text.trimmingWhitespace() }
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
                    summary.problems.append(Problem(line: error.line, column: error.column, message: error.message + "; the row is skipped"))
                    reader.skipLine()
                    continue
                }
                let line = row.first?.line ?? 0
                guard row.count == names.count else {
                    summary.problems.append(Problem(line: line, column: 1, message: "has \(row.count) fields; the header has \(names.count)"))
                    continue
                }
                do {
                    pending.append(try message(row: row, names: names, mapping: mapping.columns, receivedAt: receivedAt))
                } catch let error as MessageError {
                    let column = names.firstIndex { mapping.columns[$0] == error.path }.map { row[$0].column } ?? 1
                    summary.problems.append(Problem(line: line, column: column, message: error.description))
                }
                if pending.count >= groupSize { try await flush(consumed: 0) }
            }
            try await flush(consumed: bytes.count)
        }
        return summary
    }

    /// One CSV row as an identify message.
    func message(row: [CSVReader.Field], names: [String], mapping: [String: String], receivedAt: Milliseconds) throws -> IncomingMessage {
        var message: JSONObject = ["type": "identify"]
        var traits = JSONObject()
        var externalIDs: [JSONValue] = []
        for (index, name) in names.enumerated() {
            guard let target = mapping[name] else { continue }
            let value = row[index].text.trimmingWhitespace()
            guard !value.isEmpty else { continue }
            if target.hasPrefix("traits.") {
                traits[String(target.dropFirst(7))] = .string(value)
            } else if target.hasPrefix("context.externalIds.") {
                externalIDs.append(["id": .string(value), "type": .string(String(target.dropFirst(20))), "collection": "users", "encoding": "none"])
            } else {
                message[target] = .string(value)
            }
        }
        message["traits"] = .object(traits)
        if !externalIDs.isEmpty { message["context"] = ["externalIds": .array(externalIDs)] }
        let rowText = row.map(\.text).joined(separator: "\u{1F}")
        let messageID = "import:" + Digest.sha256Hex(source.name + "\n" + rowText)
        return try MessageParser.parse(.object(message), type: .identify, path: "", receivedAt: receivedAt, newMessageID: { messageID })
    }
}
