import Foundation
import Synchronization

/// Token buckets by key: `limit` requests per minute, refilled continuously,
/// bursting up to `limit`. Keys are sources or tenants, never shared.
final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updatedAt: Double
    }

    private let buckets = Mutex<[String: Bucket]>([:])
    private let now: @Sendable () -> Double

    init(now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.now = now
    }

    /// Takes one token for `key`; nil when allowed, else the seconds to wait.
    func acquire(_ key: String, perMinute limit: Int) -> Int? {
        let instant = now()
        let rate = Double(limit) / 60
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: Double(limit), updatedAt: instant)
            bucket.tokens = min(Double(limit), bucket.tokens + (instant - bucket.updatedAt) * rate)
            bucket.updatedAt = instant
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
        }
    }
}
