import Foundation
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Testing

struct CSVReaderTests {
    /// Our reader agrees with Python's csv module (an independent RFC 4180 reader).
    @Test func recordsMatchPythonsCSVModule() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "Fixtures/tricky.csv")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import csv, json, sys; print(json.dumps([r for r in csv.reader(open(sys.argv[1], newline='', encoding='utf-8')) if r]))", fixture.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let expected = try #require(try JSONParser.parse(Array(output)).arrayValue).map { $0.arrayValue?.compactMap(\.stringValue) ?? [] }

        var reader = CSVReader(Array(try Data(contentsOf: fixture)))
        var records: [[String]] = []
        while let record = try reader.next() { records.append(record.map(\.text)) }
        #expect(records == expected)
        #expect(records.count == 6)
    }

    @Test func fieldsKnowTheirLineAndColumn() throws {
        var reader = CSVReader(Array("a,b\n\"x\ny\",z\n".utf8))
        _ = try reader.next()
        let record = try #require(try reader.next())
        #expect(record.map(\.line) == [2, 3])
        #expect(record.map(\.column) == [1, 4])
    }

    @Test(arguments: [
        ("a,\"b\nc\n", "1:3: unterminated quoted field: the quote opened here runs to the end of the file (2 lines); close it, or double a quote meant as text (\"\")"),
        ("a,\"b\nc", "1:3: unterminated quoted field: the quote opened here runs to the end of the file (2 lines); close it, or double a quote meant as text (\"\")"),
        ("a,\"b\nc,d\ne,\"f\"\n", "3:4: unexpected character after a closing quote; double a quote inside a quoted field (\"\"); the quoted field began at 1:3, 2 lines up: a stray quote there?"),
        ("a,Jos\u{E9}\n", "1:3: not UTF-8 text (a Latin-1 or Windows export?); save the file as CSV in UTF-8"),
        ("a,\"b\"c\n", "1:6: unexpected character after a closing quote; double a quote inside a quoted field (\"\")"),
        ("a,b\"c\n", "1:4: a quote inside an unquoted field; quote the whole field and double the quote"),
    ])
    func malformedCSVIsReportedWithItsPosition(_ text: String, _ message: String) {
        // é as Latin-1 (one byte 0xE9), not UTF-8.
        let bytes = text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
        var reader = CSVReader(bytes)
        #expect(throws: CSVReader.SyntaxError.self) { while try reader.next() != nil {} }
        var again = CSVReader(bytes)
        do {
            while try again.next() != nil {}
        } catch {
            #expect(error.description == message)
        }
    }
}

struct ImportTests {
    static let crmDefinitions = [
        "crm.yaml": "kind: Source\nname: crm\ntype: crm_import\ncsv:\n  columns: {id: userId, mail: traits.email, tier: traits.tier, since: timestamp, card: context.externalIds.loyalty_card}\n",
    ]

    @Test func jsonlGoesThroughThePipelineAndReportsBadLines() async throws {
        let harness = try EngineHarness()
        let text = """
            {"type":"identify","userId":"u1","traits":{"email":"u1@example.com"}}
            {"type":"track","userId":"u1","event":"Purchase","properties":{"total":12.5}}

            {"type":"track","userId":"u1","event":"Purchase","properties":{"total":1}
            {"type":"track","event":"NoOne"}
            {"type":"page","anonymousId":"a9","messageId":"given-id"}
            """
        let importer = Importer(store: harness.store, pipeline: harness.pipeline, source: harness.source, groupSize: 2)
        let summary = try await importer.run(Array(text.utf8), format: .jsonl)
        #expect(summary.stored == 3)
        #expect(summary.problems.map(\.line) == [4, 5])
        #expect(summary.problems[0].message.hasPrefix("not valid JSON"))
        #expect(summary.problems[1].message == "userId: userId or anonymousId is required")
        let id = try #require(try await harness.profileID(type: "email", value: "u1@example.com"))
        let profile = try #require(try await harness.profile(id))
        #expect(profile.totalRevenue == Decimal(string: "12.5"))
        // The same file again stores nothing: derived messageIds are stable.
        let again = try await importer.run(Array(text.utf8), format: .jsonl)
        #expect(again.stored == 0)
        #expect(again.duplicates == 3)
    }

    /// History keeps its dates: a line exported from Segment is corrected for
    /// clock skew against its own receivedAt (or sentAt), not the import's time.
    @Test func exportedLinesKeepTheirOwnDates() async throws {
        let harness = try EngineHarness()
        harness.setNow("2026-11-27T09:00:00Z")
        let text = """
            {"type":"track","userId":"u1","event":"A","messageId":"a","originalTimestamp":"2024-01-01T00:00:00Z","sentAt":"2024-01-01T00:00:02Z","receivedAt":"2024-01-01T00:00:03Z"}
            {"type":"track","userId":"u1","event":"B","messageId":"b","timestamp":"2024-02-01T00:00:00Z","sentAt":"2024-02-01T00:00:05Z"}
            {"type":"track","userId":"u1","event":"C","messageId":"c","timestamp":"2024-03-01T00:00:00Z"}
            {"type":"track","userId":"u1","event":"D","messageId":"d","receivedAt":"yesterday"}
            """
        let summary = try await Importer(store: harness.store, pipeline: harness.pipeline, source: harness.source).run(Array(text.utf8), format: .jsonl)
        #expect(summary.stored == 3)
        #expect(summary.problems.map(\.line) == [4])
        #expect(summary.problems.first?.message.hasPrefix("receivedAt: ") == true)
        let id = try #require(try await harness.profileID(type: "external_id", value: "u1"))
        let events = try await harness.read { try $0.events(tenant: "default", profileID: id, after: nil, limit: 10) }
        let times = Dictionary(uniqueKeysWithValues: events.map { ($0.eventName, Instant.format(milliseconds: $0.eventTime)) })
        #expect(times == ["A": "2024-01-01T00:00:01.000Z", "B": "2024-02-01T00:00:00.000Z", "C": "2024-03-01T00:00:00.000Z"])
        let received = Dictionary(uniqueKeysWithValues: events.map { ($0.eventName, Instant.format(milliseconds: $0.receivedAt)) })
        #expect(received["A"] == "2024-01-01T00:00:03.000Z")
        #expect(received["C"] == "2026-11-27T09:00:00.000Z")
    }

    /// A row CSV cannot read is reported and skipped; the rows after it are imported.
    @Test func aMalformedCSVRowIsSkippedAndTheRestImported() async throws {
        let harness = try EngineHarness(definitions: Self.crmDefinitions)
        let source = try #require(harness.runtime.source(named: "crm"))
        let text = "id,mail,tier,since,card\nc-1,one@example.com,gold,,\nc-2,\"Bob\"by,silver,,\nc-3,three@example.com,bronze,,\nc-4,four@example.com,,,\n"
        let summary = try await Importer(store: harness.store, pipeline: harness.pipeline, source: source).run(Array(text.utf8), format: .csv)
        #expect(summary.stored == 3)
        #expect(summary.problems.map { "\($0.line):\($0.column)" } == ["3:10"])
        #expect(summary.problems.first?.message.hasSuffix("the row is skipped") == true)
        #expect(try await harness.profileID(type: "email", value: "four@example.com") != nil)
    }

    @Test func csvRowsBecomeIdentifyCallsThroughTheSourcesMapping() async throws {
        let harness = try EngineHarness(definitions: Self.crmDefinitions)
        let source = try #require(harness.runtime.source(named: "crm"))
        let text = "id,mail,tier,since,card,ignored\nc-1,ONE@example.com,gold,2026-01-01T00:00:00Z,LC-1,x\nc-2,two@example.com,silver,,,y\nc-3,three@example.com\nc-4,four@example.com,bronze,not-a-date,,z\n"
        let importer = Importer(store: harness.store, pipeline: harness.pipeline, source: source)
        let summary = try await importer.run(Array(text.utf8), format: .csv)
        #expect(summary.stored == 2)
        #expect(summary.problems.map { "\($0.line):\($0.column)" } == ["4:1", "5:29"])
        #expect(summary.problems[0].message == "has 2 fields; the header has 6")
        #expect(summary.problems[1].message.hasPrefix("timestamp: expected an ISO-8601 date-time"))
        let id = try #require(try await harness.profileID(type: "email", value: "one@example.com"))
        let profile = try #require(try await harness.profile(id))
        #expect(profile.externalID == "c-1")
        #expect(profile.profileData["tier"] == "gold")
        #expect(profile.firstSeenAt == EngineHarness.instant("2026-01-01T00:00:00Z"))
        #expect(try await harness.profileID(type: "loyalty_card", value: "LC-1") == id)
    }

    @Test func aCSVWhoseHeaderLacksAMappedColumnIsRefused() async throws {
        let harness = try EngineHarness(definitions: Self.crmDefinitions)
        let importer = Importer(store: harness.store, pipeline: harness.pipeline, source: try #require(harness.runtime.source(named: "crm")))
        let summary = try await importer.run(Array("id,email\nc-1,x@example.com\n".utf8), format: .csv)
        #expect(summary.stored == 0)
        #expect(summary.problems.first?.message.contains("no column \"card\"") == true)
    }

    /// What exporters write around the JSON: a byte order mark, CRLF line ends
    /// (the same messages, and the same derived ids, as LF), a batch object.
    @Test func jsonlFromOtherToolsImportsAsTheSameMessages() async throws {
        let harness = try EngineHarness()
        let lf = "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"A\"}\n{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"B\"}\n"
        let importer = Importer(store: harness.store, pipeline: harness.pipeline, source: harness.source)
        #expect(try await importer.run(Array(lf.utf8), format: .jsonl).stored == 2)
        let crlf = Array("\u{FEFF}".utf8) + Array(lf.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        let again = try await importer.run(crlf, format: .jsonl)
        #expect(again.problems.isEmpty, "\(again.problems)")
        #expect((again.stored, again.duplicates) == (0, 2))
        let batch = try await importer.run(Array(#"{"batch":[{"type":"track","userId":"u1","event":"C"}]}"#.utf8), format: .jsonl)
        #expect(batch.problems.map(\.message) == ["batch: a line holds one message, not a batch; write each message of the batch on its own line"])
        let big = try await importer.run(Array((#"{"type":"track","userId":"u1","event":"D","properties":{"x":""# + String(repeating: "y", count: 33_000) + #""}}"#).utf8), format: .jsonl)
        #expect(big.problems.first?.message.hasSuffix("a message may be at most 32768 bytes (32 KB), as over HTTP") == true)
    }

    /// A CRM export: dotted targets nest as JSON identify traits do; an empty
    /// file, a repeated column and a stray quote are each reported; a later
    /// export repeating an earlier row (a value changed and changed back) is
    /// new data, while the same file again is not.
    @Test func csvExportsAreReadAsTheyMeant() async throws {
        let harness = try EngineHarness(definitions: [
            "crm.yaml": "kind: Source\nname: crm\ntype: crm_import\ncsv:\n  columns: {id: userId, city: traits.address.city, points: traits.points}\n",
        ])
        let importer = Importer(store: harness.store, pipeline: harness.pipeline, source: try #require(harness.runtime.source(named: "crm")))
        #expect(try await importer.run(Array("id,city,points\nc-1,Paris,150\n".utf8), format: .csv, fileName: "day1.csv").stored == 1)
        let id = try #require(try await harness.profileID(type: "external_id", value: "c-1"))
        #expect(try await harness.profile(id)?.profileData["address"] == ["city": "Paris"])
        #expect(try await importer.run(Array("id,city,points\nc-1,Paris,200\n".utf8), format: .csv, fileName: "day2.csv").stored == 1)
        #expect(try await importer.run(Array("id,city,points\nc-1,Paris,150\n".utf8), format: .csv, fileName: "day3.csv").stored == 1)
        #expect(try await harness.profile(id)?.profileData["points"] == "150")
        #expect(try await importer.run(Array("id,city,points\nc-1,Paris,150\n".utf8), format: .csv, fileName: "day3.csv").duplicates == 1)

        #expect(try await importer.run([], format: .csv).problems.map(\.message) == ["the file is empty; expected a header row naming the columns"])
        // Repeated unmapped columns (empty trailing ones) are fine; a mapped one twice is not.
        #expect(try await importer.run(Array("id,city,points,,\nc-9,Rome,1,,\n".utf8), format: .csv).stored == 1)
        let twice = try await importer.run(Array("id,city,id,points\nc-2,Rome,c-3,1\n".utf8), format: .csv)
        #expect(twice.problems.map { "\($0.line):\($0.column): \($0.message)" } == ["1:9: column \"id\" appears twice (first at column 1); rename or remove one"])
        #expect(twice.stored == 0)
        let stray = try await importer.run(Array("id,city,points\nc-4,\"Oslo,1\nc-5,Bern,2\nc-6,\"Lima, Peru\",3\nc-7,Kyiv,4\n".utf8), format: .csv)
        #expect(stray.problems.map(\.message) == ["unexpected character after a closing quote; double a quote inside a quoted field (\"\"); the quoted field began at 2:5, 2 lines up: a stray quote there?; lines 2–4 are skipped"])
        #expect(stray.stored == 1)
        // Without a final line break, the lines a runaway quote took are counted alike.
        let unterminated = try await importer.run(Array("id,city,points\nc-8,\"Oslo,1\nc-10,Bern,2".utf8), format: .csv)
        #expect(unterminated.problems.map(\.message) == ["unterminated quoted field: the quote opened here runs to the end of the file (2 lines); close it, or double a quote meant as text (\"\"); lines 2–3 are skipped"])
    }
}
