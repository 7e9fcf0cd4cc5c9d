import Foundation
import GRDB
import StratumCrypto

extension SQLiteStore {
    /// The raw SQLite insert rate on this machine for rows shaped like stored
    /// events: `count` rows into this store's events table through one cached
    /// prepared statement in one transaction (no identity resolution, no
    /// HTTP). Benchmarks print it as the ceiling ingestion is measured against.
    public func measureRawEventInsertRate(rows count: Int) throws -> Double {
        let started = ContinuousClock.now
        try pool.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO events (tenant_id, id, profile_id, source_id, type, event_name, event_time, received_at,
                  idempotency_key, properties, context, identifiers, processed, emq_score)
                VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
                """)
            for index in 0..<count {
                statement.setUncheckedArguments([
                    "default", "ceiling-\(index)", "bench", "track", "ProductView", 1_700_000_000_000 + index, 1_700_000_000_000 + index,
                    "ceiling-\(index)", #"{"product_id":"p-\#(index % 500)","price":19.99}"#,
                    #"{"ip":"203.0.113.7","userAgent":"bench","library":{"name":"bench"}}"#,
                    #"[{"type":"anonymous_id","hash":"0000000000000000000000000000000000000000000000000000000000000000"}]"#, 0.5,
                ])
                try statement.execute()
            }
        }
        let elapsed = ContinuousClock.now - started
        return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}

extension SQLiteStore {
    /// Fills an empty store with deterministic shop data for benchmarks:
    /// profiles with email identifiers and countries, and events (page views,
    /// product views, carts, checkouts, purchases with totals) over 2026.
    public func generateShopData(profiles: Int, events: Int, tenant: String = "default") async throws {
        let cache = writerCache
        try await pool.write { db in
            // Profiles and identifiers written here bypass the ingestion cache.
            defer { cache.clear() }
            var random = SplitMix64(seed: 42)
            func next() -> UInt64 { random.next() }
            let start: Int64 = 1_767_225_600_000 // 2026-01-01
            let year: UInt64 = 365 * 86_400_000
            let countries = ["US", "CA", "UK", "DE", "FR", "US", "US", "JP"]
            let profile = try db.makeStatement(sql: """
                INSERT INTO profiles (tenant_id, id, external_id, first_seen_at, last_seen_at, profile_data, computed_traits, lifecycle_stage,
                  total_events, total_sessions, total_purchases, total_revenue, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?, 1, ?, ?, ?, ?)
                """)
            let identifier = try db.makeStatement(sql: """
                INSERT INTO profile_identifiers (tenant_id, identifier_type, identifier_hash, id, profile_id, is_primary, confidence_score, created_at)
                VALUES (?, 'email', ?, ?, ?, 1, 1, ?)
                """)
            let perProfile = max(1, events / max(profiles, 1))
            for index in 0..<profiles {
                let id = String(format: "p%09d", index)
                let first = start + Int64(next() % year)
                let purchases = Int(next() % 4)
                profile.setUncheckedArguments([
                    tenant, id, "customer-\(index)", first, first + Int64(perProfile) * 3_600_000,
                    #"{"country":"\#(countries[Int(next() % 8)])","email":"c\#(index)@example.com"}"#,
                    purchases > 0 ? "customer" : "known", perProfile, purchases, "\(purchases * 40)", first, first,
                ])
                try profile.execute()
                identifier.setUncheckedArguments([tenant, String(format: "%064x", index), "i\(index)", id, first])
                try identifier.execute()
            }
            let event = try db.makeStatement(sql: """
                INSERT INTO events (tenant_id, id, profile_id, source_id, type, event_name, event_time, received_at, idempotency_key,
                  properties, context, identifiers, processed, emq_score)
                VALUES (?, ?, ?, 'bench', ?, ?, ?, ?, ?, ?, '{}', '[]', 1, 0.5)
                """)
            let names = ["page", "ProductView", "ProductView", "AddToCart", "BeginCheckout", "Purchase", "ProductView", "page"]
            for index in 0..<events {
                let owner = Int(next() % UInt64(profiles))
                let name = names[Int(next() % 8)]
                // Stored in arrival order, as ingestion stores them: times rise through
                // the year, each up to a minute late or early.
                let time = start + Int64(index) * Int64(year) / Int64(max(events, 1)) + Int64(next() % 120_000) - 60_000
                let product = next() % 500
                let properties = name == "Purchase"
                    ? #"{"total":\#(next() % 300 + 5).\#(next() % 100),"currency":"USD","category":"c\#(product % 12)"}"#
                    : #"{"product_id":"p-\#(product)","category":"c\#(product % 12)","price":\#(product % 90 + 9).99}"#
                event.setUncheckedArguments([
                    tenant, "e\(index)", String(format: "p%09d", owner), name == "page" ? "page" : "track", name, time, time, "m\(index)", properties,
                ])
                try event.execute()
            }
        }
    }
}

extension SQLiteStore {
    /// Puts `count` pending deliveries for `webhook` in the outbox (benchmarks),
    /// 10,000 per transaction.
    public func enqueueBenchmarkDeliveries(count: Int, tenant: String = "default", webhook: String, at instant: Milliseconds) async throws {
        for chunk in stride(from: 0, to: count, by: 10_000) {
            try await pool.write { db in
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO webhook_deliveries (id, tenant_id, webhook, event_type, payload, created_at, next_attempt_at, status)
                    VALUES (?, ?, ?, 'segment.entered', ?, ?, ?, 'pending')
                    """)
                for index in chunk..<min(chunk + 10_000, count) {
                    statement.setUncheckedArguments([
                        "msg_bench_\(index)", tenant, webhook,
                        #"{"event_type":"segment.entered","timestamp":"2026-01-01T00:00:00.000Z","data":{"segment":"bench","profiles":[{"profile_id":"p\#(index)"}]}}"#,
                        instant, instant,
                    ])
                    try statement.execute()
                }
            }
        }
    }
}
