import Foundation
import HTTPTypes
import StratumJSON
import Testing

/// The table of malformed requests: each gets its documented status and an
/// error that names the problem (and the field, where there is one).
struct MalformedRequestTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var path: String
        var body: String
        var key: String? = "web-key"
        var header: (String, String)?
        var status: Int
        var code: String
        var message: String
        var field: String?

        var description: String { name }
    }

    static let big = String(repeating: "x", count: 33 * 1024)

    static let cases: [Case] = [
        Case(name: "no credentials", path: "/v1/track", body: #"{"userId":"u","event":"E"}"#, key: nil, status: 401, code: "unauthorized", message: "no write key"),
        Case(name: "unknown write key", path: "/v1/track", body: #"{"userId":"u","event":"E"}"#, key: "nope", status: 401, code: "unauthorized", message: "unknown write key"),
        Case(name: "unknown writeKey in the body", path: "/v1/track", body: #"{"writeKey":"nope","userId":"u","event":"E"}"#, key: nil, status: 401, code: "unauthorized", message: "unknown write key"),
        Case(name: "unsupported auth scheme", path: "/v1/track", body: "{}", key: nil, header: ("Authorization", "Token abc"), status: 401, code: "unauthorized", message: "unsupported Authorization scheme Token"),
        Case(name: "basic auth that is not base64", path: "/v1/track", body: "{}", key: nil, header: ("Authorization", "Basic !!!"), status: 401, code: "unauthorized", message: "not valid base64"),
        Case(name: "an admin token is not a write key", path: "/v1/track", body: #"{"userId":"u","event":"E"}"#, key: "admin-token", status: 401, code: "unauthorized", message: "unknown write key"),
        Case(name: "a body that says gzip but is not", path: "/v1/track", body: #"{"userId":"u","event":"E"}"#, header: ("Content-Encoding", "gzip"), status: 400, code: "invalid_encoding", message: "is not valid gzip data"),
        Case(name: "a brotli-encoded body", path: "/v1/track", body: #"{"userId":"u","event":"E"}"#, header: ("Content-Encoding", "br"), status: 415, code: "unsupported_encoding", message: "Content-Encoding br is not supported"),
        Case(name: "a numeric userId past 2^53", path: "/v1/track", body: #"{"userId":9007199254740993,"event":"E"}"#, status: 400, code: "invalid_message", message: "too large to keep exactly", field: "userId"),
        Case(name: "a numeric messageId past 2^53", path: "/v1/track", body: #"{"userId":"u","event":"E","messageId":-9007199254740993}"#, status: 400, code: "invalid_message", message: "send it as a string", field: "messageId"),
        Case(name: "a timestamp in year 0000", path: "/v1/track", body: #"{"userId":"u","event":"E","timestamp":"0000-01-01T00:00:00+14:00"}"#, status: 400, code: "invalid_message", message: "outside years 0001–9999", field: "timestamp"),
        Case(name: "a timestamp rounding past year 9999", path: "/v1/track", body: #"{"userId":"u","event":"E","timestamp":"9999-12-31T23:59:59.9999Z"}"#, status: 400, code: "invalid_message", message: "outside years 0001–9999", field: "timestamp"),
        Case(name: "empty body", path: "/v1/track", body: "", status: 400, code: "invalid_json", message: "the request body is empty"),
        Case(name: "broken JSON", path: "/v1/identify", body: "{\"userId\": \"u\",\n \"traits\": {]}", status: 400, code: "invalid_json", message: "expected a string key at line 2, column 13"),
        Case(name: "a number no double holds", path: "/v1/track", body: #"{"userId":"u","event":"E","properties":{"total":1e400}}"#, status: 400, code: "invalid_json", message: "number out of range (beyond ±1.8e308) at line 1, column 49"),
        Case(name: "a JSON array", path: "/v1/track", body: "[1,2]", status: 400, code: "invalid_message", message: "expected a JSON object"),
        Case(name: "track without event", path: "/v1/track", body: #"{"userId":"u"}"#, status: 400, code: "invalid_message", message: "required for track", field: "event"),
        Case(name: "track with an empty event", path: "/v1/track", body: #"{"userId":"u","event":"  "}"#, status: 400, code: "invalid_message", message: "expected a non-empty string", field: "event"),
        Case(name: "track with a numeric event", path: "/v1/track", body: #"{"userId":"u","event":42}"#, status: 400, code: "invalid_message", message: "found 42", field: "event"),
        Case(name: "an event name over 200 characters", path: "/v1/track", body: #"{"userId":"u","event":"\#(String(repeating: "e", count: 201))"}"#, status: 400, code: "invalid_message", message: "longer than 200 characters", field: "event"),
        Case(name: "neither userId nor anonymousId", path: "/v1/page", body: #"{"name":"Home"}"#, status: 400, code: "invalid_message", message: "userId or anonymousId is required", field: "userId"),
        Case(name: "userId as an object", path: "/v1/identify", body: #"{"userId":{"id":1}}"#, status: 400, code: "invalid_message", message: "expected a string", field: "userId"),
        Case(name: "properties as a string", path: "/v1/track", body: #"{"userId":"u","event":"E","properties":"x"}"#, status: 400, code: "invalid_message", message: "expected an object", field: "properties"),
        Case(name: "context as a list", path: "/v1/screen", body: #"{"userId":"u","context":[]}"#, status: 400, code: "invalid_message", message: "expected an object", field: "context"),
        Case(name: "traits as a number", path: "/v1/identify", body: #"{"userId":"u","traits":5}"#, status: 400, code: "invalid_message", message: "expected an object", field: "traits"),
        Case(name: "an unparseable timestamp", path: "/v1/track", body: #"{"userId":"u","event":"E","timestamp":"yesterday"}"#, status: 400, code: "invalid_message", message: "expected an ISO-8601 date-time", field: "timestamp"),
        Case(name: "an impossible sentAt", path: "/v1/track", body: #"{"userId":"u","event":"E","sentAt":"2024-02-30T00:00:00Z"}"#, status: 400, code: "invalid_message", message: "expected an ISO-8601 date-time", field: "sentAt"),
        Case(name: "an empty messageId", path: "/v1/track", body: #"{"userId":"u","event":"E","messageId":""}"#, status: 400, code: "invalid_message", message: "expected a non-empty string", field: "messageId"),
        Case(name: "a skew correction past year 9999", path: "/v1/track", body: #"{"userId":"u","event":"E","originalTimestamp":"0001-01-01T00:00:00Z","sentAt":"9999-12-31T23:59:59Z"}"#, status: 400, code: "invalid_message", message: "falls outside years 0001–9999", field: "sentAt"),
        Case(name: "a blank messageId", path: "/v1/track", body: #"{"userId":"u","event":"E","messageId":"  "}"#, status: 400, code: "invalid_message", message: "omit it to have one assigned", field: "messageId"),
        Case(name: "alias without previousId", path: "/v1/alias", body: #"{"userId":"u"}"#, status: 400, code: "invalid_message", message: "required for alias", field: "previousId"),
        Case(name: "group without groupId", path: "/v1/group", body: #"{"userId":"u"}"#, status: 400, code: "invalid_message", message: "required for group", field: "groupId"),
        Case(name: "a message over 32 KB", path: "/v1/track", body: #"{"userId":"u","event":"E","properties":{"x":"\#(big)"}}"#, status: 413, code: "body_too_large", message: "larger than 32 KB"),
        Case(name: "batch without batch", path: "/v1/batch", body: #"{"context":{}}"#, status: 400, code: "invalid_batch", message: "required", field: "batch"),
        Case(name: "batch that is not a list", path: "/v1/batch", body: #"{"batch":{}}"#, status: 400, code: "invalid_batch", message: "expected an array", field: "batch"),
        Case(name: "empty batch", path: "/v1/batch", body: #"{"batch":[]}"#, status: 400, code: "invalid_batch", message: "is empty", field: "batch"),
        Case(name: "batch item of unknown type", path: "/v1/batch", body: #"{"batch":[{"type":"trak","userId":"u","event":"E"}]}"#, status: 400, code: "invalid_batch", message: "did you mean \"track\"?", field: "batch[0].type"),
        Case(name: "batch item without type", path: "/v1/batch", body: #"{"batch":[{"userId":"u","event":"E"}]}"#, status: 400, code: "invalid_batch", message: "missing; expected one of track", field: "batch[0].type"),
        Case(name: "every batch item invalid", path: "/v1/batch", body: #"{"batch":[{"type":"track","event":"E"},{"type":"track","userId":"u"}]}"#, status: 400, code: "invalid_batch", message: "userId or anonymousId is required (and 1 other message; each is listed when a batch stores some)", field: "batch[0].userId"),
        Case(name: "batch item over 32 KB", path: "/v1/batch", body: #"{"batch":[{"type":"track","userId":"u","event":"E","properties":{"x":"\#(big)"}}]}"#, status: 400, code: "invalid_batch", message: "a message may be at most 32768 bytes (32 KB)", field: "batch[0]"),
        Case(name: "batch over 500 KB", path: "/v1/batch", body: #"{"batch":[{"type":"track","userId":"u","event":"E","properties":{"x":"\#(String(repeating: "y", count: 510 * 1024))"}}]}"#, status: 413, code: "body_too_large", message: "larger than 500 KB"),
        Case(name: "batch with a bad batch-level sentAt", path: "/v1/batch", body: #"{"sentAt":"now","batch":[{"type":"track","userId":"u","event":"E"}]}"#, status: 400, code: "invalid_batch", message: "expected an ISO-8601 date-time", field: "sentAt"),
    ]

    @Test func thereAreAtLeastTwentyFiveCases() {
        #expect(Self.cases.count >= 25)
    }

    @Test func everyMalformedRequestGetsItsStatusAndANamedError() async throws {
        try await ServerHarness.run { server async throws in
            for testCase in Self.cases {
                var extra: HTTPFields = [:]
                if let (name, value) = testCase.header { extra[HTTPField.Name(name)!] = value }
                let response = try await server.send(testCase.path, testCase.body, key: testCase.key, headers: extra)
                #expect(Int(response.status.code) == testCase.status, "\(testCase.name): \(response.text)")
                let error = response.json?["error"]
                #expect(error?["code"]?.stringValue == testCase.code, "\(testCase.name): \(response.text)")
                #expect(error?["message"]?.stringValue?.contains(testCase.message) == true, "\(testCase.name): \(response.text)")
                #expect(error?["path"]?.stringValue == testCase.field, "\(testCase.name): \(response.text)")
            }
        }
    }

    /// Requests no route serves get a JSON error too; HEAD answers for GET routes.
    @Test func unroutedRequestsGetAJSONErrorAndHeadAnswers() async throws {
        try await ServerHarness.run { server async throws in
            for (method, path) in [(HTTPRequest.Method.post, "/v1/nope"), (.get, "/v1/track"), (.delete, "/v1/profiles/x")] {
                let response = try await server.send(path, "", method: method)
                #expect(response.status == .notFound, "\(method) \(path)")
                #expect(response.json?["error"]?["message"]?.stringValue?.hasPrefix("no route for \(method) \(path)") == true, "\(method) \(path): \(response.text)")
            }
            let head = try await server.send("/healthz", "", key: nil, method: .head)
            #expect(head.status == .ok)
        }
    }
}
