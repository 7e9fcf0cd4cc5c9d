import Foundation
import StratumJSON
import StratumTestSupport
import Testing

/// schemas/openapi.json describes what the server really answers: an
/// independent validator accepts the document, and live responses validate
/// against its component schemas (OpenAPI 3.1 schemas are JSON Schema 2020-12).
struct OpenAPITests {
    static let documentURL = repositoryRoot.appending(path: "schemas/openapi.json")
    static let documentURI = "stratum:/schemas/openapi.json"

    static let validator: JSONSchemaValidator = {
        var validator = JSONSchemaValidator()
        let document = (try? JSONParser.parse(Array(Data(contentsOf: documentURL)))) ?? .null
        validator.register(document, uri: documentURI)
        return validator
    }()

    static func violations(_ value: JSONValue?, _ schema: String) -> [String] {
        guard let value else { return ["no JSON body"] }
        return validator.validate(value, against: "\(documentURI)#/components/schemas/\(schema)").map { "\($0.instancePath): \($0.message)" }
    }

    static let specValidator: URL? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        return path.split(separator: ":").map { URL(fileURLWithPath: String($0)).appending(path: "openapi-spec-validator") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    @Test func openAPISpecValidatorIsPresentWhereRequired() {
        if ProcessInfo.processInfo.environment["STRATUM_REQUIRE_CHECK_JSONSCHEMA"] == "1" {
            #expect(Self.specValidator != nil, "openapi-spec-validator is required but not on PATH")
        }
    }

    @Test(.enabled(if: specValidator != nil, "openapi-spec-validator is not installed"))
    func anIndependentValidatorAcceptsTheDocument() throws {
        let process = Process()
        process.executableURL = try #require(Self.specValidator)
        process.arguments = [Self.documentURL.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
    }

    @Test func liveResponsesMatchTheDocumentedSchemas() async throws {
        try await ServerHarness.run { server async throws in
            let batch = #"{"batch":[{"type":"identify","userId":"doc","anonymousId":"doc-a","traits":{"email":"doc@example.com"},"context":{"consent":{"ads":true}}},{"type":"track","userId":"doc","event":"Purchase","properties":{"total":12.34}}]}"#
            let success = try await server.send("/v1/batch", batch)
            #expect(Self.violations(success.json, "Success") == [])
            let profile = try await server.get("/v1/profiles/lookup?identifier=email:doc@example.com")
            #expect(Self.violations(profile.json, "Profile") == [])
            let id = try #require(profile.json?["id"]?.stringValue)
            let events = try await server.get("/v1/profiles/\(id)/events?limit=1")
            #expect(Self.violations(events.json, "EventPage") == [])
            #expect(Self.violations(try await server.send("/v1/track", #"{"event":"E"}"#).json, "Error") == [])
            #expect(Self.violations(try await server.get("/v1/profiles/nope").json, "Error") == [])
            #expect(Self.violations(try await server.get("/healthz", token: nil).json, "Status") == [])
            // And the documented schemas are not vacuous.
            #expect(Self.violations(["success": "yes"], "Success") != [])
            #expect(Self.violations(["id": "x"], "Profile") != [])
        }
    }
}
