import Foundation
import GRDB
import StratumDefinitions
import StratumJSON

/// Sums decimals exactly inside SQLite: JSON numbers arrive as REAL and are
/// read through their shortest round-trip text (19.99 stays 19.99); numeric
/// text is parsed as written. Returns the sum as text (no trailing noise).
struct DecimalSum: DatabaseAggregate {
    var sum: Decimal = 0
    var seen = false

    static let posix = Locale(identifier: "en_US_POSIX")

    static func decimal(_ value: DatabaseValue) -> Decimal? {
        switch value.storage {
        case .int64(let integer): return Decimal(integer)
        case .double(let double) where double.isFinite: return Decimal(string: "\(double)", locale: posix)
        case .string(let text): return Decimal(string: text.trimmingCharacters(in: .whitespaces), locale: posix)
        default: return nil
        }
    }

    mutating func step(_ dbValues: [DatabaseValue]) throws {
        guard let value = dbValues.first.flatMap(Self.decimal) else { return }
        sum += value
        seen = true
    }

    func finalize() throws -> (any DatabaseValueConvertible)? {
        seen ? "\(sum)" : nil
    }

    static let function = DatabaseFunction("stratum_decimal_sum", argumentCount: 1, pure: true, aggregate: DecimalSum.self)
}

/// `stratum_instant(text)`: milliseconds since the epoch of an ISO-8601 date
/// or date-time, read by the parser rule values go through (`Instant.parse`),
/// or NULL for anything else — so stored and rule dates always agree.
enum InstantFunction {
    static let function = DatabaseFunction("stratum_instant", argumentCount: 1, pure: true) { values in
        guard case .string(let text) = values[0].storage, let seconds = Instant.parse(text) else { return nil }
        return Int64((seconds * 1000).rounded())
    }
}

/// One computed trait's values for every profile, from one grouped query.
extension SQLiteStore {
    /// Computes `trait` as of `asOf` for every profile of its tenant and stores
    /// it in `computed_traits.<name>`. Profiles without a matching event get 0
    /// (count, unique_count, sum), false (exists), or no value (the others).
    /// Returns how many profiles have a value.
    ///
    /// The query runs on a reader and the results are written in short
    /// transactions (see `write(traitValues:...)`), so ingestion and
    /// incremental segment runs go on while a trait over millions of events
    /// is computed.
    public func computeTrait(_ trait: TraitDefinition, asOf: Milliseconds) async throws -> Int {
        var query = SegmentQuery(context: RuleContext(tenant: trait.tenantID, asOf: asOf, churnPeriodDays: 0, identifierHash: { _, _ in nil }, segmentReference: { _ in nil }))
        let (sql, arguments) = query.traitValues(trait)
        let statementArguments = StatementArguments(arguments)
        // A NULL result (an average or minimum of no numbers) is no value: the
        // profile gets the fallback like one without events.
        let values = try await pool.read { db in
            var values: [TraitValue] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT profile_id, value FROM (" + sql + ") WHERE value IS NOT NULL", arguments: statementArguments)
            while let row = try rows.next() { values.append(TraitValue(profileID: row[0], value: row[1])) }
            return values
        }
        // The JSON text each profile's value should have: numbers from their text
        // (exact decimals), booleans as JSON booleans; absent values get 0
        // (count, unique_count, sum), false (exists) or no value (the others).
        let json: String
        let fallback: String?
        switch trait.type {
        case .exists: (json, fallback) = ("CASE WHEN v.value THEN 'true' ELSE 'false' END", "'false'")
        case .sum, .count, .uniqueCount: (json, fallback) = ("json(v.value)", "'0'")
        case .average: (json, fallback) = ("json(v.value)", nil)
        // The property's JSON text, so true stays true and objects stay objects.
        case .first, .last: (json, fallback) = (trait.property == nil ? "json_quote(v.value)" : "json(v.value)", nil)
        case .min, .max: (json, fallback) = ("json_quote(v.value)", nil)
        }
        try await write(traitValues: values, json: json, fallback: fallback, at: SegmentQuery.jsonPath([trait.name]), tenant: trait.tenantID)
        return values.count
    }

    /// One profile's computed value, as SQLite returned it.
    struct TraitValue: Sendable {
        var profileID: String
        var value: DatabaseValue
    }

    /// Makes `computed_traits` at `path` equal `values` (`json` turns `v.value`
    /// into JSON text) for the profiles listed, and `fallback` (JSON text, or
    /// nil: no value) for every other profile of the tenant. Only profiles
    /// whose stored value differs are rewritten: a steady-state refresh writes
    /// almost nothing.
    ///
    /// The work is split by ranges of `writeChunk` profile ids, one transaction
    /// each (the range's values staged in a temporary table that lives and dies
    /// inside it, then applied), so no transaction holds the writer for long.
    func write(traitValues values: [TraitValue], json: String, fallback: String?, at path: String, tenant: String) async throws {
        let table = "temp.trait_values"
        let sorted = values.sorted { $0.profileID < $1.profileID }
        // Ranges (lower, upper] of `writeChunk` profile ids; the last one is open, for profiles created meanwhile.
        let chunk = writeChunk
        let uppers: [String?] = try await pool.read { db in
            var uppers: [String?] = []
            while let upper = try String.fetchOne(db, sql: "SELECT id FROM profiles WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT 1 OFFSET ?",
                                                  arguments: [tenant, uppers.last.flatMap { $0 } ?? "", chunk - 1]) {
                uppers.append(upper)
            }
            return uppers + [nil]
        }
        let cache = writerCache
        var lower: String?
        var next = 0
        for upper in uppers {
            // This range's values: staged, then applied, in one transaction.
            var end = next
            while end < sorted.count, upper.map({ sorted[end].profileID <= $0 }) ?? true { end += 1 }
            let staged = sorted[next..<end]
            next = end
            // Plain comparisons (no "?3 IS NULL OR ..."), so SQLite seeks the key range.
            let (low, high) = (lower, upper)
            @Sendable func range(_ id: String) -> String {
                let bounds = [low.map { _ in "\(id) > ?3" }, high.map { _ in "\(id) <= ?4" }].compactMap { $0 }
                return bounds.isEmpty ? "1" : bounds.joined(separator: " AND ")
            }
            // As many arguments as the highest parameter number used.
            let arguments: StatementArguments = upper != nil ? [path, tenant, lower, upper] : lower != nil ? [path, tenant, lower] : [path, tenant]
            try await pool.write { db in
                // `value` has no declared type, so no affinity: decimal sums stay exact text.
                try db.execute(sql: "DROP TABLE IF EXISTS \(table)")
                try db.execute(sql: "CREATE TEMP TABLE trait_values (profile_id TEXT PRIMARY KEY, value)")
                defer { try? db.execute(sql: "DROP TABLE IF EXISTS \(table)") }
                let insert = try db.makeStatement(sql: "INSERT OR REPLACE INTO \(table) (profile_id, value) VALUES (?, ?)")
                for value in staged { try insert.execute(arguments: [value.profileID, value.value]) }
                try db.execute(sql: """
                    UPDATE profiles SET computed_traits = json_set(computed_traits, ?1, json(n.value))
                    FROM (SELECT v.profile_id AS profile_id, \(json) AS value FROM \(table) v WHERE \(range("v.profile_id"))) AS n
                    WHERE profiles.tenant_id = ?2 AND profiles.id = n.profile_id AND (profiles.computed_traits -> ?1) IS NOT n.value
                    """, arguments: arguments)
                // NOT EXISTS probes the staged table's key per profile; NOT IN would copy it whole per statement.
                let others = "tenant_id = ?2 AND \(range("id")) AND NOT EXISTS (SELECT 1 FROM \(table) v WHERE v.profile_id = profiles.id)"
                if let fallback {
                    try db.execute(sql: """
                        UPDATE profiles SET computed_traits = json_set(computed_traits, ?1, json(\(fallback)))
                        WHERE \(others) AND (computed_traits -> ?1) IS NOT \(fallback)
                        """, arguments: arguments)
                } else {
                    try db.execute(sql: """
                        UPDATE profiles SET computed_traits = json_remove(computed_traits, ?1)
                        WHERE \(others) AND (computed_traits -> ?1) IS NOT NULL
                        """, arguments: arguments)
                }
                // computed_traits changed behind the ingestion cache's back: forget the
                // cached profiles before the writer is free for the next transaction.
                cache.clearProfiles()
            }
            lower = upper
        }
    }

    /// Recency, frequency and monetary inputs of every profile with at least
    /// one frequency or recency event in the lookback window.
    public func rfmInputs(_ model: RFMDefinition, asOf: Milliseconds) async throws -> [(profileID: String, days: Int, frequency: Int, monetary: Decimal)] {
        let lookback = Int64(model.lookbackDays ?? 365) * 86_400_000
        let recency = model.recencyEvent ?? "Purchase"
        let frequency = model.frequencyEvent ?? "Purchase"
        let path = SegmentQuery.jsonPath(model.monetaryProperty ?? "total")
        return try await pool.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT e.profile_id AS profile,
                       MAX(CASE WHEN e.event_name = ?1 THEN e.event_time END) AS latest,
                       SUM(CASE WHEN e.event_name = ?2 THEN 1 ELSE 0 END) AS frequency,
                       stratum_decimal_sum(CASE WHEN e.event_name = ?2 AND json_type(e.properties, ?3) IN ('integer', 'real')
                                                THEN json_extract(e.properties, ?3) END) AS monetary
                FROM events e INDEXED BY events_by_name
                WHERE e.tenant_id = ?4 AND e.profile_id IS NOT NULL AND e.event_name IN (?1, ?2)
                  AND e.event_time BETWEEN ?5 AND ?6
                GROUP BY e.profile_id
                """, arguments: [recency, frequency, path, model.tenantID, asOf - lookback, asOf])
            return rows.map { row in
                let latest: Int64? = row["latest"]
                let days = latest.map { Int((asOf - $0) / 86_400_000) } ?? Int(lookback / 86_400_000) + 1
                let monetaryText: String? = row["monetary"]
                return (row["profile"], days, row["frequency"], monetaryText.flatMap { Decimal(string: $0, locale: DecimalSum.posix) } ?? 0)
            }
        }
    }

    /// Stores RFM results under `computed_traits.rfm.<model>`; profiles not in
    /// `scores` lose theirs (they were not scored this run).
    public func storeRFM(model: String, tenant: String, scores: [(profileID: String, r: Int, f: Int, m: Int, segment: String)]) async throws {
        let values = scores.map { score in
            TraitValue(profileID: score.profileID, value: JSONValue.object([
                "r": .number(Double(score.r)), "f": .number(Double(score.f)), "m": .number(Double(score.m)), "segment": .string(score.segment),
            ]).jsonText().databaseValue)
        }
        try await write(traitValues: values, json: "v.value", fallback: nil, at: SegmentQuery.jsonPath(["rfm." + model]), tenant: tenant)
    }
}

extension SegmentQuery {
    /// `SELECT profile_id, <aggregate> FROM events ... GROUP BY profile_id` for a trait.
    mutating func traitValues(_ trait: TraitDefinition) -> (String, [DatabaseValueConvertible?]) {
        var filters = [
            "e.tenant_id = \(bindValue(trait.tenantID))", "e.profile_id IS NOT NULL",
            "e.event_name = \(bindValue(trait.event))", "e.event_time <= \(bindValue(context.asOf))",
        ]
        if case .last(let count, let unit) = trait.window ?? .all {
            filters.append("e.event_time >= \(bindValue(context.asOf - Int64(count) * Int64(unit.seconds) * 1000))")
        }
        if let sources = trait.sources, !sources.isEmpty {
            filters.append("e.source_id IN (" + sources.map { bindValue($0) }.joined(separator: ", ") + ")")
        }
        for condition in trait.where ?? [] {
            let (expression, storage) = Self.jsonValue("e.properties", bindValue(Self.jsonPath(condition.property)))
            filters.append(compare(expression, storage, condition.operator, condition.value, condition.unit))
        }
        let path = trait.property.map { bindValue(Self.jsonPath($0)) } ?? "NULL"
        let property = "json_extract(e.properties, \(path))"
        let type = "json_type(e.properties, \(path))"
        // Numbers only: a JSON true is not 1, and "12.5" is a string (DESIGN.md, Rule semantics).
        let numeric = "CASE WHEN \(type) IN ('integer', 'real') THEN \(property) END"
        // Numbers by value (1 and 1.0 are one value), everything else by its JSON text ("1" and true are not 1).
        let distinct = "CASE WHEN \(type) IN ('integer', 'real') THEN \(property) WHEN \(type) <> 'null' THEN e.properties -> \(path) END"
        let isoTime = "strftime('%Y-%m-%dT%H:%M:%fZ', e.event_time / 1000.0, 'unixepoch')"
        let value: String
        switch trait.type {
        case .count: value = "COUNT(*)"
        case .sum: value = "COALESCE(stratum_decimal_sum(\(numeric)), '0')"
        case .average: value = "AVG(\(numeric))"
        case .min: value = "MIN(\(numeric))"
        case .max: value = "MAX(\(numeric))"
        case .uniqueCount: value = "COUNT(DISTINCT \(distinct))"
        case .exists: value = "1"
        case .first, .last:
            let extreme = trait.type == .first ? "MIN" : "MAX"
            guard trait.property != nil else {
                value = "\(extreme)(\(isoTime))"
                break
            }
            // The property (as JSON text) of the first/last event that carries one;
            // events at the same instant are ordered as they were stored.
            let order = trait.type == .first ? "ASC" : "DESC"
            filters.append("\(type) IS NOT NULL AND \(type) <> 'null'")
            let ranked = "SELECT e.profile_id AS profile_id, e.properties -> \(path) AS value, "
                + "ROW_NUMBER() OVER (PARTITION BY e.profile_id ORDER BY e.event_time \(order), e.seq \(order)) AS position FROM events e WHERE "
                + filters.map { "(\($0))" }.joined(separator: " AND ")
            return ("SELECT profile_id, value FROM (\(ranked)) WHERE position = 1", arguments)
        }
        let grouped = "SELECT e.profile_id AS profile_id, \(value) AS value FROM events e WHERE "
            + filters.map { "(\($0))" }.joined(separator: " AND ") + " GROUP BY e.profile_id"
        return ("SELECT profile_id, value FROM (\(grouped))", arguments)
    }
}

extension SQLiteStore {
    /// Every profile's stored value at a `computed_traits` path (nil: none).
    public func traitValues(tenant: String, path: [String]) async throws -> [JSONValue?] {
        let jsonPath = SegmentQuery.jsonPath(path)
        return try await pool.read { db in
            try String?.fetchAll(db, sql: "SELECT computed_traits -> ? FROM profiles WHERE tenant_id = ?", arguments: [jsonPath, tenant])
                .map { $0.flatMap { try? JSONParser.parse($0) } }
        }
    }
}
