import Foundation
import StratumStore
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

    @Test func webhooksTestRefusesAHeaderWhoseVariableIsUnset() throws {
        let directory = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("kind: Webhook\nname: crm\nurl: http://127.0.0.1:9/\nsecret: ${env:HOOK_SECRET}\nevents: [segment.entered]\nheaders: {X-Api-Key: \"${env:CRM_API_KEY}\"}\n".utf8)
            .write(to: directory.appending(path: "definitions/crm.yaml"))
        // The daemon would refuse to start; the test send is not made without the header either.
        let result = try StratumBinary.run(["webhooks", "test", "crm", "--definitions", "definitions", "--store", "s.sqlite"],
                                           environment: ["WEB_KEY": "k", "HOOK_SECRET": "whsec_" + Data(repeating: 7, count: 24).base64EncodedString()], directory: directory)
        #expect(result.status == 2)
        #expect(result.stderr.contains("Webhook \"crm\" header X-Api-Key ${env:CRM_API_KEY} is not set"))
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

    /// A daemon that cannot listen says where, exits 2, and has run nothing:
    /// scheduled runs start only once the server listens.
    @Test func aTakenPortStopsTheDaemonBeforeAnyRun() async throws {
        let directory = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(socket, $0, length) == 0 && listen(socket, 1) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let result = try StratumBinary.run(["run", "--listen", "127.0.0.1:\(port)", "--definitions", "definitions", "--store", "s.sqlite"],
                                           environment: ["WEB_KEY": "k", "LOG_LEVEL": "error"], directory: directory)
        #expect(result.status == 2)
        #expect(result.stderr.contains("127.0.0.1:\(port)") && result.stderr.contains("Address already in use"), "\(result.stderr)")
        let store = try SQLiteStore(path: directory.appending(path: "s.sqlite").path)
        #expect(try await store.evaluationRuns(tenant: "default").isEmpty)
    }

    /// What operators do to a daemon: a SIGHUP (systemctl reload) leaves it
    /// running; a second daemon on its store is refused (both would send
    /// every webhook); an empty secret is no secret; a mistyped store for
    /// refresh is an error, not a new empty store.
    @Test func theDaemonSurvivesOperators() throws {
        let directory = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = directory.appending(path: "s.sqlite").path
        let definitions = directory.appending(path: "definitions").path
        let daemon = try DaemonProcess(arguments: ["--definitions", definitions, "--store", store], environment: ["WEB_KEY": "k", "LOG_LEVEL": "error"])
        kill(daemon.process.processIdentifier, SIGHUP)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(daemon.process.isRunning, "a SIGHUP ended the daemon")
        let second = try StratumBinary.run(["run", "--listen", "127.0.0.1:0", "--definitions", definitions, "--store", store], environment: ["WEB_KEY": "k", "LOG_LEVEL": "error"])
        #expect(second.status == 2)
        #expect(second.stderr.contains("another `stratum run` serves the store"), "\(second.stderr)")
        #expect(daemon.stop() == 0)

        let empty = try StratumBinary.run(["run", "--listen", "127.0.0.1:0", "--definitions", definitions, "--store", store], environment: ["WEB_KEY": ""])
        #expect(empty.status == 1)
        #expect(empty.stderr.contains("write_key ${env:WEB_KEY} is not set"), "\(empty.stderr)")
        let mistyped = try StratumBinary.run(["refresh", "--definitions", definitions, "--store", store + "x"])
        #expect(mistyped.status == 2)
        #expect(!FileManager.default.fileExists(atPath: store + "x"))
    }

    @Test func segmentPreviewPrintsCountAndSampleWithoutSaving() throws {
        let directory = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try StratumBinary.run(["import", "events.jsonl", "--source", "web", "--definitions", "definitions", "--store", "s.sqlite"], directory: directory)
        let common = ["--definitions", "definitions", "--store", "s.sqlite", "--as-of", "2026-02-01"]
        let buyers = try StratumBinary.run(["segment", "preview", "definitions/buyers.yaml"] + common, directory: directory)
        #expect(buyers.status == 0, "\(buyers.stderr)")
        #expect(buyers.stdout.hasPrefix("buyers: 1 profile as of 2026-02-01T00:00:00.000Z"))
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
        #expect(try StratumBinary.run(["segment", "preview", "definitions/buyers.yaml", "--sample=-1"] + common, directory: directory).status == 2)
        let github = try StratumBinary.run(["segment", "preview", "definitions/buyers.yaml", "--format", "github"] + common, directory: directory)
        #expect(github.status == 2 && github.stderr.contains("Please provide one of 'text' and 'json'"))
        // Commands that only read refuse a store that is not there, and create none.
        let mistyped = ["--definitions", "definitions", "--store", "mistyped.sqlite"]
        for arguments in [["segment", "preview", "definitions/buyers.yaml"], ["webhooks", "list"]] {
            let result = try StratumBinary.run(arguments + mistyped, directory: directory)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.contains("there is no store at mistyped.sqlite"), "\(arguments): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "mistyped.sqlite").path))
        // Names, tenants and statuses that are not there are errors, not empty answers.
        for (arguments, message) in [
            (["webhooks", "deliveries", "nosuch"], "no Webhook \"nosuch\" in tenant default"),
            (["webhooks", "deliveries", "nosuch", "--status", "bogus"], "--status bogus is not a delivery status"),
            (["webhooks", "list", "--tenant", "nosuch"], "no tenant nosuch"),
        ] {
            let result = try StratumBinary.run(arguments + ["--definitions", "definitions", "--store", "s.sqlite"], directory: directory)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
    }
}

/// `stratum segment import`: a CSV list becomes a static segment's members.
struct SegmentImportCommandTests {
    static func workspace() throws -> URL {
        let directory = try CommandTests.workspace()
        try Data("kind: Segment\nname: vips\nsegment_type: static\n".utf8).write(to: directory.appending(path: "definitions/vips.yaml"))
        try Data("""
            kind: Webhook
            name: care
            url: http://127.0.0.1:9/hooks
            secret: ${env:CARE_SECRET}
            events: [segment.entered, segment.exited]
            segments: [vips]

            """.utf8).write(to: directory.appending(path: "definitions/care.yaml"))
        let events = [
            #"{"type":"identify","userId":"u1","traits":{"email":"ana@example.com"},"timestamp":"2026-01-01T00:00:00Z"}"#,
            #"{"type":"track","userId":"u2","event":"Viewed","timestamp":"2026-01-03T00:00:00Z"}"#,
            #"{"type":"identify","userId":"u3","traits":{"email":"bo@example.com"},"timestamp":"2026-01-04T00:00:00Z"}"#,
        ]
        try Data(events.joined(separator: "\n").utf8).write(to: directory.appending(path: "events.jsonl"))
        _ = try StratumBinary.run(["import", "events.jsonl", "--source", "web", "--definitions", "definitions", "--store", "s.sqlite"], environment: ["WEB_KEY": "k"], directory: directory)
        return directory
    }

    static func write(_ text: String, to name: String, in directory: URL) throws {
        try Data(text.utf8).write(to: directory.appending(path: name))
    }

    @Test func addsReplacesAndRemovesMembersByIdentifier() throws {
        let directory = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: directory) }
        let common = ["--definitions", "definitions", "--store", "s.sqlite"]
        // Identifiers are normalised as ingestion does; a row names its profile by its first non-empty column.
        try Self.write("email,external_id\n  ANA@Example.com ,u2\n,u2\nnobody@example.com,\n,\nnot-an-email,\n", to: "list.csv", in: directory)
        let added = try StratumBinary.run(["segment", "import", "vips", "list.csv"] + common, directory: directory)
        #expect(added.status == 1)
        #expect(added.stdout.contains("list.csv: 5 rows, 2 profiles matched, 3 skipped; 2 entered, 0 exited; vips has 2 members"))
        #expect(added.stderr.contains("list.csv:4: warning: no profile holds email nobody@example.com; row skipped"))
        #expect(added.stderr.contains("list.csv:5: warning: no value in any of email, external_id; row skipped"))
        #expect(added.stderr.contains("list.csv:6: warning: email \"not-an-email\" is not a usable identifier"))

        let again = try StratumBinary.run(["segment", "import", "vips", "list.csv"] + common, directory: directory)
        #expect(again.stdout.contains("0 entered, 0 exited; vips has 2 members"))

        try Self.write("external_id\nu3\nu2\n", to: "replacement.csv", in: directory)
        let preview = try StratumBinary.run(["segment", "import", "vips", "replacement.csv", "--mode", "replace", "--dry-run"] + common, directory: directory)
        #expect(preview.status == 0)
        #expect(preview.stdout.contains("would enter 1, exit 1 (dry run, nothing changed)"))
        let replaced = try StratumBinary.run(["segment", "import", "vips", "replacement.csv", "--mode", "replace"] + common, directory: directory)
        #expect(replaced.status == 0)
        #expect(replaced.stdout.contains("1 entered, 1 exited; vips has 2 members"))

        // Replacing from a list that matches nobody, or that lost rows, is refused.
        try Self.write("email\n", to: "empty.csv", in: directory)
        let empty = try StratumBinary.run(["segment", "import", "vips", "empty.csv", "--mode", "replace"] + common, directory: directory)
        #expect(empty.status == 2)
        #expect(empty.stderr.contains("empty.csv names no stored profile; replacing would empty vips"))
        try Self.write("external_id\nu3\nu2\nnobody\n", to: "lossy.csv", in: directory)
        let lossy = try StratumBinary.run(["segment", "import", "vips", "lossy.csv", "--mode", "replace"] + common, directory: directory)
        #expect(lossy.status == 2)
        #expect(lossy.stderr.contains("1 row was skipped (above); replacing would take those people out of vips"))
        let allowed = try StratumBinary.run(["segment", "import", "vips", "lossy.csv", "--mode", "replace", "--allow-skipped"] + common, directory: directory)
        #expect(allowed.status == 1)
        #expect(allowed.stdout.contains("0 entered, 0 exited; vips has 2 members"))

        try Self.write("external_id\nu3\n", to: "leavers.csv", in: directory)
        let removed = try StratumBinary.run(["segment", "import", "vips", "leavers.csv", "--mode", "remove"] + common, directory: directory)
        #expect(removed.stdout.contains("0 entered, 1 exited; vips has 1 member"))

        // Every change reached the subscribed webhook's outbox: three runs with entries, two with exits.
        let deliveries = try StratumBinary.run(["webhooks", "deliveries", "care"] + common, directory: directory)
        let lines = deliveries.stdout.split(separator: "\n")
        #expect(lines.filter { $0.contains("segment.entered  pending") }.count == 2)
        #expect(lines.filter { $0.contains("segment.exited  pending") }.count == 2)
    }

    @Test func refusesBadListsAndNonStaticSegments() throws {
        let directory = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: directory) }
        let common = ["--definitions", "definitions", "--store", "s.sqlite"]
        try Self.write("emial\nana@example.com\n", to: "typo.csv", in: directory)
        let typo = try StratumBinary.run(["segment", "import", "vips", "typo.csv"] + common, directory: directory)
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("typo.csv:1:1: error: unknown column \"emial\"; did you mean email?"))
        try Self.write("email\n\"ana@example.com\n", to: "quote.csv", in: directory)
        let quote = try StratumBinary.run(["segment", "import", "vips", "quote.csv"] + common, directory: directory)
        #expect(quote.status == 2)
        #expect(quote.stderr.contains("quote.csv:2:1: error:"))
        try Self.write("email\nana@example.com,extra\n", to: "wide.csv", in: directory)
        let wide = try StratumBinary.run(["segment", "import", "vips", "wide.csv"] + common, directory: directory)
        #expect(wide.status == 2)
        #expect(wide.stderr.contains("wide.csv:2:17: error: this row has 2 fields; the header has 1"))
        let dynamic = try StratumBinary.run(["segment", "import", "buyers", "typo.csv"] + common, directory: directory)
        #expect(dynamic.status == 2)
        #expect(dynamic.stderr.contains("segment buyers is dynamic; only static segments take members from a list"))
        let unknown = try StratumBinary.run(["segment", "import", "vip", "typo.csv"] + common, directory: directory)
        #expect(unknown.stderr.contains("no Segment \"vip\" in tenant default; did you mean vips?"))
    }
}

/// Benchmark options are checked before anything runs.
struct BenchArgumentTests {
    @Test func badFreshnessOptionsAreRefusedWithTheReason() throws {
        let directory = FileManager.default.temporaryDirectory
        let cases: [([String], String)] = [
            (["--rate", "0"], "--rate must be 1...100000"),
            (["--trait-every", "soon"], "--full-refresh-every and --trait-every must be durations"),
            (["--history-profiles", "5"], "--history-profiles and --history-events go together"),
            (["--segments", "0"], "--segments must be 1...100"),
        ]
        for (arguments, message) in cases {
            let result = try StratumBinary.run(["bench", "freshness"] + arguments, directory: directory)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        // Numbers out of range are refused before anything runs (they crashed or hung).
        for (arguments, message) in [
            (["bench", "webhooks", "--deliveries", "10", "--concurrency=-3"], "--concurrency must be 1...256"),
            (["bench", "webhooks", "--concurrency", "0"], "--concurrency must be 1...256"),
            (["bench", "webhooks", "--deliveries=-1"], "--deliveries must be 1...10000000"),
            (["bench", "segments", "--profiles=-1"], "--profiles must be 1...100000000"),
            (["bench", "segments", "--events=-1"], "--events must be 0...1000000000"),
            (["run", "--idle-timeout", "0"], "--idle-timeout must be 1...3600 seconds"),
        ] {
            let result = try StratumBinary.run(arguments, directory: directory)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        let mode = try StratumBinary.run(["segment", "import", "vips", "list.csv", "--mode", "sideways"], directory: directory)
        #expect(mode.status == 2)
        #expect(mode.stderr.contains("sideways"))
    }
}
