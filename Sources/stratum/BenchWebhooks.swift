import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import StratumDefinitions
import StratumDelivery
import StratumEngine
import StratumStore
import Synchronization

extension Stratum {
    struct BenchWebhooks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "webhooks",
            abstract: "Deliver queued webhooks to a local receiver; print deliveries/s and peak RSS.",
            discussion: "Queues the deliveries straight into a fresh outbox, then drains it with the delivery worker (signing, libcurl, recording each attempt) to a receiver on 127.0.0.1."
        )

        @Option(help: "Deliveries to queue and send.")
        var deliveries = 100_000

        @Option(help: "Concurrent requests.")
        var concurrency = 8

        func validate() throws {
            guard (1...10_000_000).contains(deliveries) else { throw ValidationError("--deliveries must be 1...10000000") }
            guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be 1...256") }
        }

        func run() async throws {
            let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-bench-webhooks-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            var logger = Logger(label: "bench")
            logger.logLevel = .error
            let received = Atomic<Int>(0)
            let router = Router()
            router.post("/hook") { _, _ -> HTTPResponse.Status in
                received.add(1, ordering: .relaxed)
                return .noContent
            }
            let port = PortBox()
            let receiver = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { port.set($0.localAddress?.port ?? 0) }, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [.init(service: receiver)], logger: logger))
            let serving = Task { try await group.run() }
            let url = "http://127.0.0.1:\(try await port.wait())/hook"

            let store = try SQLiteStore(path: directory.appending(path: "bench.sqlite").path)
            let now = IngestionPipeline.systemClock()
            try await store.enqueueBenchmarkDeliveries(count: deliveries, webhook: "bench", at: now)
            let endpoint = WebhookEndpoint(
                tenant: "default", name: "bench", url: url, key: Array("bench-key-bench-key-bench-key-32".utf8), headers: [],
                connectTimeoutMilliseconds: 5_000, totalTimeoutMilliseconds: 30_000, retrySchedule: [1_000])
            let worker = DeliveryWorker(store: store, endpoints: [endpoint], logger: logger, concurrency: concurrency)
            print(String(format: "bench webhooks: %d deliveries queued (peak RSS so far %.0f MiB); sending with %d concurrent requests to %@", deliveries, peakResidentMiB(), concurrency, url))
            let started = ContinuousClock.now
            while try await worker.drainOnce() > 0 {}
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let delivered = try await store.deliveryCounts(tenant: "default")["bench"]?["delivered"] ?? 0
            print(String(format: "  %d delivered (%d received) in %.1f s: %.0f deliveries/s; resident now %.0f MiB, peak %.0f MiB",
                         delivered, received.load(ordering: .relaxed), seconds, Double(delivered) / seconds, residentMiB(), peakResidentMiB()))
            await group.triggerGracefulShutdown()
            _ = await serving.result
        }
    }
}
