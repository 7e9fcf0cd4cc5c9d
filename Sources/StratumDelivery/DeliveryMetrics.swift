import Prometheus

/// Delivery metrics for /metrics: attempts by outcome and their latency.
public final class DeliveryMetrics: Sendable {
    let delivered: Counter
    let retried: Counter
    let failed: Counter
    let dead: Counter
    let disabled: Counter
    let latency: DurationHistogram

    public init(registry: PrometheusCollectorRegistry) {
        func outcome(_ name: String) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(namespace: "stratum", metricName: "webhook_attempts", unitName: "total", helpText: "Webhook delivery attempts by outcome."),
                labels: [("outcome", name)])
        }
        delivered = outcome("delivered")
        retried = outcome("retried")
        failed = outcome("failed")
        dead = outcome("dead")
        disabled = outcome("disabled")
        latency = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "stratum", metricName: "webhook_attempt_duration", unitName: "seconds", helpText: "How long one webhook delivery attempt took, answer or not."),
            buckets: [.milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30)])
    }

    func record(_ outcome: AttemptOutcome, took duration: Duration) {
        latency.record(duration)
        switch outcome {
        case .delivered: delivered.increment()
        case .retry: retried.increment()
        case .failed: failed.increment()
        case .dead: dead.increment()
        case .gone: disabled.increment()
        }
    }
}
