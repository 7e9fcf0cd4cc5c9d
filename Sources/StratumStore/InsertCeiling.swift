import Foundation
import GRDB

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
