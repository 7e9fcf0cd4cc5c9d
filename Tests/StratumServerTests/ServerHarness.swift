import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumServer
import StratumStore

/// A real daemon in-process: real definitions, a fresh SQLite file, the
/// HTTP server on 127.0.0.1, and a real HTTP client.
enum ServerHarness {
    static let environment = ["WEB_KEY": "web-key", "LIMITED_KEY": "limited-key", "ACME_KEY": "acme-key", "ADMIN_TOKEN": "admin-token", "ACME_ADMIN": "acme-admin", "WRITER_TOKEN": "writer-token", "OPERATOR_TOKEN": "operator-token", "HOOK_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]

    static let definitions: [String: String] = [
        "web.yaml": "kind: Source\nname: web\ntype: server_api\nwrite_key: ${env:WEB_KEY}\nrate_limit: {requests_per_minute: 100000}\n",
        "limited.yaml": "kind: Source\nname: limited\ntype: website_pixel\nwrite_key: ${env:LIMITED_KEY}\nrate_limit: {requests_per_minute: 2}\n",
        "settings.yaml": """
            kind: Settings
            name: stratum
            admin_tokens:
              - {name: reader, token: "${env:ADMIN_TOKEN}", scopes: [read]}
              - {name: writer, token: "${env:WRITER_TOKEN}", scopes: [write]}
              - {name: operator, token: "${env:OPERATOR_TOKEN}", scopes: [read, write]}
            """,
        "acme-source.yaml": "kind: Source\nname: acme-web\ntenant: acme\ntype: server_api\nwrite_key: ${env:ACME_KEY}\n",
        "acme-settings.yaml": "kind: Settings\nname: acme\ntenant: acme\nadmin_tokens:\n  - {name: acme-reader, token: \"${env:ACME_ADMIN}\", scopes: [read]}\n",
        "buyers.yaml": "kind: Segment\nname: buyers\ndisplay_name: Buyers\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n",
        "hand-picked.yaml": "kind: Segment\nname: hand-picked\nsegment_type: static\n",
        "hook.yaml": "kind: Webhook\nname: hook\nurl: http://127.0.0.1:9/closed\nsecret: ${env:HOOK_SECRET}\nevents: [segment.entered]\ntimeout: {connect: 2s, total: 3s}\n",
        "draft-one.yaml": "kind: Segment\nname: draft-one\nstatus: draft\nrules:\n  conditions:\n    - {field: total_events, operator: exists}\n",
    ]

    struct Context: Sendable {
        let client: any TestClientProtocol
        let store: SQLiteStore

        func send(_ path: String, _ body: String, key: String? = "web-key", method: HTTPRequest.Method = .post, headers extra: HTTPFields = [:]) async throws -> TestResponse {
            try await send(path, bytes: ByteBuffer(string: body), key: key, method: method, headers: extra)
        }

        func send(_ path: String, bytes body: ByteBuffer, key: String? = "web-key", method: HTTPRequest.Method = .post, headers extra: HTTPFields = [:]) async throws -> TestResponse {
            var headers: HTTPFields = [.contentType: "application/json"]
            if let key { headers[.authorization] = "Basic " + Data("\(key):".utf8).base64EncodedString() }
            for field in extra { headers[field.name] = field.value }
            return try await client.execute(uri: path, method: method, headers: headers, body: body)
        }

        func get(_ path: String, token: String? = "admin-token") async throws -> TestResponse {
            var headers: HTTPFields = [:]
            if let token { headers[.authorization] = "Bearer \(token)" }
            return try await client.execute(uri: path, method: .get, headers: headers)
        }

        func countEvents(_ keys: [String], tenant: String = "default") async throws -> [String: Int] {
            try await store.read { try $0.countEvents(tenant: tenant, idempotencyKeys: keys) }
        }
    }

    static func run(extra: [String: String] = [:], environment extraEnvironment: [String: String] = [:], _ test: @escaping @Sendable (Context) async throws -> Void) async throws {
        let definitions = Self.definitions.merging(extra) { $1 }
        let environment = Self.environment.merging(extraEnvironment) { $1 }
        let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let loaded = DefinitionLoader.load(files: definitions.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) }, environment: environment)
        precondition(loaded.isValid, "\(loaded.diagnostics.map(\.formatted))")
        let store = try SQLiteStore(path: directory.appending(path: "store.sqlite").path)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let writer = IngestionWriter(store: store, pipeline: IngestionPipeline(runtime: Runtime(definitions: loaded.definitions, environment: environment)), logger: logger)
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: store, runtime: Runtime(definitions: loaded.definitions, environment: environment))
        let state = try ServerState(store: store, writer: writer, definitions: loaded.definitions, environment: environment, evaluator: evaluator)
        let app = buildApplication(state: state, host: "127.0.0.1", port: 0, services: [writer], logger: logger)
        try await app.test(.live) { client in
            try await test(Context(client: client, store: store))
        }
    }
}

extension TestResponse {
    var json: JSONValue? { try? JSONParser.parse(Array(body.readableBytesView)) }
    var text: String { String(buffer: body) }
}
