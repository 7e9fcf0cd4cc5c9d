import ArgumentParser
import Foundation
import StratumDefinitions
import StratumDelivery
import StratumEngine
import StratumJSON
import StratumStore

extension Stratum {
    struct Webhooks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inspect and operate webhook deliveries.",
            subcommands: [List.self, Deliveries.self, Replay.self, Test.self]
        )
    }
}

extension Stratum.Webhooks {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The webhooks and their deliveries by status.")
        @Option(help: "The tenant.") var tenant = Tenant.defaultID
        @OptionGroup var location: StoreOptions

        func run() async throws {
            let loaded = try location.loadDefinitions()
            guard loaded.definitions.tenants.contains(tenant) else {
                printError("error: no tenant \(tenant) in \(location.definitions); tenants: \(loaded.definitions.tenants.sorted().joined(separator: ", "))")
                throw ExitCode(2)
            }
            let store = try location.openStore(settings: loaded.definitions.settings(for: Tenant.defaultID), existing: true)
            let counts = try await store.deliveryCounts(tenant: tenant)
            for webhook in loaded.definitions.webhooks.map(\.definition).filter({ $0.tenantID == tenant }).sorted(by: { $0.name < $1.name }) {
                let statuses = counts[webhook.name] ?? [:]
                let summary = ["pending", "delivered", "failed", "dead", "disabled"].map { "\($0) \(statuses[$0] ?? 0)" }.joined(separator: ", ")
                print("\(webhook.name)\(webhook.enabled == false ? " (disabled)" : "")  \(webhook.url)  [\(webhook.events.map(\.rawValue).joined(separator: ", "))]  \(summary)")
            }
        }
    }

    struct Deliveries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A webhook's deliveries, oldest first.")
        @Argument(help: "The webhook's name.") var name: String
        @Option(help: "Only this status: pending, delivered, failed, dead or disabled.") var status: String?
        @Option(help: "The tenant.") var tenant = Tenant.defaultID
        @OptionGroup var location: StoreOptions

        func validate() throws {
            if let status, !Self.statuses.contains(status) {
                throw ValidationError("--status \(status) is not a delivery status; use one of \(Self.statuses.joined(separator: ", "))")
            }
        }

        static let statuses = ["pending", "delivered", "failed", "dead", "disabled"]

        func run() async throws {
            let loaded = try location.loadDefinitions()
            guard loaded.definitions.webhooks.contains(where: { $0.definition.name == name && $0.definition.tenantID == tenant }) else {
                printError("error: no Webhook \"\(name)\" in tenant \(tenant)")
                throw ExitCode(2)
            }
            let store = try location.openStore(settings: loaded.definitions.settings(for: Tenant.defaultID), existing: true)
            let limit = 100_000
            let deliveries = try await store.deliveries(tenant: tenant, webhook: name, status: status, limit: limit)
            for delivery in deliveries {
                let last = delivery.lastStatus.map { "HTTP \($0)" } ?? delivery.lastError ?? "-"
                print("\(delivery.id)  \(delivery.eventType)  \(delivery.status)  attempts \(delivery.attempts)  last \(last)")
            }
            if deliveries.count == limit { printError("(the oldest \(limit) shown; filter with --status)") }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a webhook's dead letters again (the running daemon sends them), with a fresh retry budget.")
        @Argument(help: "The webhook's name.") var name: String
        @Option(help: "Only this delivery id.") var id: String?
        @Flag(help: "Also replay failed (4xx) and disabled (410) deliveries.") var all = false
        @Option(help: "The tenant.") var tenant = Tenant.defaultID
        @OptionGroup var location: StoreOptions

        func run() async throws {
            let loaded = try location.loadDefinitions()
            guard loaded.definitions.webhooks.contains(where: { $0.definition.name == name && $0.definition.tenantID == tenant }) else {
                printError("error: no Webhook \"\(name)\" in tenant \(tenant)")
                throw ExitCode(2)
            }
            let store = try location.openStore(settings: loaded.definitions.settings(for: Tenant.defaultID), existing: true)
            let count = try await store.replayDeliveries(tenant: tenant, webhook: name, id: id, statuses: all ? ["dead", "failed", "disabled"] : ["dead"], at: IngestionPipeline.systemClock())
            print("\(name): \(count) deliver\(count == 1 ? "y" : "ies") queued again")
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send one signed test delivery now and print the answer.")
        @Argument(help: "The webhook's name.") var name: String
        @Option(help: "The tenant.") var tenant = Tenant.defaultID
        @OptionGroup var location: StoreOptions

        func run() async throws {
            let loaded = try location.loadDefinitions()
            let (endpoints, problems) = WebhookEndpoint.endpoints(definitions: loaded.definitions, environment: ProcessInfo.processInfo.environment)
            guard let endpoint = endpoints.first(where: { $0.name == name && $0.tenant == tenant }) else {
                printError("error: no usable Webhook \"\(name)\" in tenant \(tenant)" + (problems.isEmpty ? "" : "\n" + problems.joined(separator: "\n")))
                throw ExitCode(2)
            }
            let id = "msg_test_" + IDGenerator().next().replacingOccurrences(of: "-", with: "")
            let timestamp = IngestionPipeline.systemClock() / 1000
            let payload: JSONValue = ["event_type": "webhook.test", "timestamp": .string(ISO8601DateFormatter().string(from: Date())), "data": ["webhook": .string(name)]]
            let body = Array(payload.jsonText().utf8)
            let headers = endpoint.requestHeaders(id: id, timestamp: timestamp, body: body)
            let result = CurlSender().post(url: endpoint.url, headers: headers, body: body, connectTimeoutMilliseconds: endpoint.connectTimeoutMilliseconds, totalTimeoutMilliseconds: endpoint.totalTimeoutMilliseconds)
            if let status = result.status {
                print("\(name): HTTP \(status)\(result.body.isEmpty ? "" : "  \(result.body.prefix(200))")")
                if !(200..<300).contains(status) { throw ExitCode(1) }
            } else {
                print("\(name): no response: \(result.error ?? "unknown error")")
                throw ExitCode(1)
            }
        }
    }
}
