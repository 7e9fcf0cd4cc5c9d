import Foundation
import StratumTestSupport
import Testing

/// `stratum import` and `stratum segment preview`, run as a user runs them.
struct CommandTests {
    static func workspace() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-commands-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appending(path: "definitions"), withIntermediateDirectories: true)
        try Data("kind: Source\nname: web\ntype: server_api\nwrite_key: ${env:WEB_KEY}\n".utf8).write(to: directory.appending(path: "definitions/web.yaml"))
        try Data("kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n".utf8)
            .write(to: directory.appending(path: "definitions/buyers.yaml"))
        let events = [
            #"{"type":"identify","userId":"u1","traits":{"country":"US"},"timestamp":"2026-01-01T00:00:00Z"}"#,
            #"{"type":"track","userId":"u1","event":"Purchase","properties":{"total":10},"timestamp":"2026-01-02T00:00:00Z"}"#,
            #"{"type":"track","userId":"u2","event":"Viewed","timestamp":"2026-01-03T00:00:00Z"}"#,
            #"{"type":"track","event":"NoIdentity"}"#,
        ]
        try Data(events.joined(separator: "\n").utf8).write(to: directory.appending(path: "events.jsonl"))
        return directory
    }

    @Test func importReportsBadLinesByPositionAndIsIdempotent() throws {
        let directory = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: directory) }
        let arguments = ["import", "events.jsonl", "--source", "web", "--definitions", "definitions", "--store", "s.sqlite"]
        let first = try StratumBinary.run(arguments, environment: ["WEB_KEY": "k"], directory: directory)
        #expect(first.status == 1)
        #expect(first.stderr.contains("events.jsonl:4:1: error: userId: userId or anonymousId is required"))
        #expect(first.stdout.contains("events.jsonl: 3 stored, 0 duplicates skipped, 1 error"))
        let second = try StratumBinary.run(arguments, environment: ["WEB_KEY": "k"], directory: directory)
        #expect(second.stdout.contains("events.jsonl: 0 stored, 3 duplicates skipped, 1 error"))
        let unknown = try StratumBinary.run(["import", "events.jsonl", "--source", "nope", "--definitions", "definitions", "--store", "s.sqlite"], directory: directory)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("no Source \"nope\" in tenant default; sources: web"))
        let format = try StratumBinary.run(["import", "events.txt", "--source", "web"], directory: directory)
        #expect(format.status == 2)
    }

    @Test func segmentPreviewPrintsCountAndSampleWithoutSaving() throws {
        let directory = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try StratumBinary.run(["import", "events.jsonl", "--source", "web", "--definitions", "definitions", "--store", "s.sqlite"], directory: directory)
        let common = ["--definitions", "definitions", "--store", "s.sqlite", "--as-of", "2026-02-01"]
        let buyers = try StratumBinary.run(["segment", "preview", "definitions/buyers.yaml"] + common, directory: directory)
        #expect(buyers.status == 0, "\(buyers.stderr)")
        #expect(buyers.stdout.hasPrefix("buyers: 1 profile as of 2026-02-01T00:00:00Z"))
        // A new file replaces nothing and may refer to the directory's segments.
        try Data("kind: Segment\nname: not-buyers\nrules:\n  conditions:\n    - {field: segment, operator: not_equals, value: buyers}\n".utf8)
            .write(to: directory.appending(path: "not-buyers.yaml"))
        let others = try StratumBinary.run(["segment", "preview", "not-buyers.yaml", "--format", "json"] + common, directory: directory)
        #expect(others.stdout.contains("\"profile_count\": 1"))
        // Before anyone was seen, nobody is a member.
        let early = try StratumBinary.run(["segment", "preview", "definitions/buyers.yaml", "--definitions", "definitions", "--store", "s.sqlite", "--as-of", "2025-12-01"], directory: directory)
        #expect(early.stdout.hasPrefix("buyers: 0 profiles"))
        try Data("kind: Segment\nname: broken\nrules:\n  conditions:\n    - {field: computed_traits.nope, operator: exists}\n".utf8)
            .write(to: directory.appending(path: "broken.yaml"))
        let broken = try StratumBinary.run(["segment", "preview", "broken.yaml"] + common, directory: directory)
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("broken.yaml:5:15: error: unknown trait \"nope\""))
        #expect(try StratumBinary.run(["segment", "preview", "missing.yaml"] + common, directory: directory).status == 2)
        #expect(try StratumBinary.run(["segment", "preview", "definitions/buyers.yaml", "--as-of", "someday"], directory: directory).status == 2)
    }
}
