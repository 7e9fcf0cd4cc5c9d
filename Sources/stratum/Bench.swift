import ArgumentParser
import Foundation
import StratumDefinitions

extension Stratum {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure Stratum on generated data. Build with -c release for meaningful figures.",
            subcommands: [BenchValidate.self, BenchIngest.self, BenchSegments.self, BenchFreshness.self, BenchWebhooks.self]
        )
    }

    struct BenchValidate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate",
            abstract: "Generate a definitions directory and time `validate` over it."
        )

        @Option(help: "How many definition files to generate.")
        var files = 1_000

        @Option(help: "How many times to validate the generated set (the figures are per run).")
        var runs = 5

        func validate() throws {
            guard files >= 10 else { throw ValidationError("--files must be at least 10") }
            guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        }

        func run() async throws {
            let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-bench-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let bytes = try BenchDefinitions.write(count: files, to: directory)
            print("generated \(files) definition files (\(bytes / 1024) KiB) in \(directory.path)")
            var timings: [Double] = []
            var result: DefinitionLoader.Result?
            for _ in 0..<runs {
                let start = ContinuousClock.now
                result = try DefinitionLoader.load(directory: directory.path, environment: ["BENCH_SECRET": "x"])
                let elapsed = ContinuousClock.now - start
                timings.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
            guard let result else { return }
            if !result.isValid {
                for diagnostic in result.diagnostics.prefix(10) { printError(diagnostic.formatted) }
                printError("error: the generated set should be valid; the generator and the validator disagree")
                throw ExitCode(1)
            }
            timings.sort()
            let median = timings[timings.count / 2]
            print(String(format: "validate: %d files, %d definitions; median %.3f s (min %.3f s, max %.3f s) over %d runs; %.0f files/s",
                         result.fileCount, result.definitions.count, median, timings.first!, timings.last!, runs, Double(files) / median))
        }
    }
}

/// A deterministic, valid definitions directory of any size for benchmarks.
enum BenchDefinitions {
    /// Writes `count` files; returns the bytes written.
    static func write(count: Int, to directory: URL) throws -> Int {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var written = 0
        func put(_ name: String, _ text: String) throws {
            let data = Data(text.utf8)
            try data.write(to: directory.appending(path: name))
            written += data.count
        }
        try put("stratum.yaml", """
            kind: Settings
            name: stratum
            churn_period_days: 90
            purchase_events: [Purchase]
            consent_types: [push]

            """)
        try put("identity.yaml", """
            kind: Identity
            name: identity
            identifier_types:
              - {type: external_id, priority: 100, limit: 1}
              - {type: email, priority: 80, limit: 5, normalize: email}
              - {type: phone, priority: 70, normalize: phone}
              - {type: device_id, priority: 40}
              - {type: anonymous_id, priority: 10}
            blocked_patterns: ["^[0-]*$"]

            """)
        try put("source.yaml", """
            kind: Source
            name: web
            type: website_pixel
            write_key: ${env:BENCH_SECRET}
            tracking_plan:
              events:
                Purchase:
                  type: object
                  required: [total]
                  properties:
                    total: {type: number, minimum: 0}
                    currency: {type: string}

            """)
        let remaining = count - 3
        let traits = remaining * 3 / 10
        let webhooks = remaining / 10
        let funnels = remaining / 10
        let segments = remaining - traits - webhooks - funnels
        for index in 0..<traits {
            try put("trait-\(index).yaml", """
                kind: Trait
                name: trait-\(index)
                description: Generated trait \(index)
                type: \(["sum", "count", "average", "max"][index % 4])
                event: Purchase
                property: total
                where:
                  - {property: currency, operator: equals, value: USD}
                window: {last: \(index % 90 + 1), unit: days}
                schedule: {every: \(index % 50 + 5)m}

                """)
        }
        for index in 0..<segments {
            let trait = index % traits
            let reference = index > 0 ? "\n        - {field: segment, operator: not_equals, value: segment-\(index - 1)}" : ""
            try put("segment-\(index).yaml", """
                kind: Segment
                name: segment-\(index)
                description: Generated segment \(index)
                segment_type: dynamic
                schedule: {cron: "*/\(index % 30 + 1) * * * *"}
                rules:
                  logic: and
                  conditions:
                    - {field: lifecycle_stage, operator: in, value: [known, customer]}
                    - {field: computed_traits.trait-\(trait), operator: greater_than, value: \(index % 500)}
                    - field: event
                      event_name: Purchase
                      operator: within_last
                      value: 30
                      unit: days
                      where: [{property: total, operator: between, value: [10, \(100 + index)]}]
                      count: {operator: greater_or_equal, value: 2}
                  groups:
                    - logic: or
                      conditions:
                        - {field: profile_data.country, operator: in, value: [US, CA, UK]}
                        - {field: consent.email, operator: equals, value: true}\(reference)

                """)
        }
        for index in 0..<funnels {
            try put("funnel-\(index).yaml", """
                kind: Funnel
                name: funnel-\(index)
                steps:
                  - {step_name: View, event_name: ProductView}
                  - {step_name: Cart, event_name: AddToCart}
                  - step_name: Buy
                    event_name: Purchase
                    conditions: [{property: total, operator: greater_than, value: \(index)}]
                conversion_window_days: 7
                exclusions: [{event_name: Refund, after_step: Cart}]

                """)
        }
        for index in 0..<webhooks {
            try put("webhook-\(index).yaml", """
                kind: Webhook
                name: webhook-\(index)
                url: https://hooks.example.com/\(index)
                secret: ${env:BENCH_SECRET}
                events: [segment.entered, segment.exited, profile.merged]
                segments: [segment-\(index % segments)]
                requires_consent: ads
                retry: {schedule: [5s, 5m, 30m]}
                timeout: {connect: 5s, total: 30s}

                """)
        }
        return written
    }
}
