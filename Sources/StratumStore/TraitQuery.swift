import CSQLite
import Foundation
import GRDB
import StratumDefinitions
import StratumJSON

/// `stratum_instant(text)`: milliseconds since the epoch of an ISO-8601 date
/// or date-time, read by the parser rule values go through (`Instant.parse`),
/// or NULL for anything else — so stored and rule dates always agree.
enum InstantFunction {
    static let function = DatabaseFunction("stratum_instant", argumentCount: 1, pure: true) { values in
        guard case .string(let text) = values[0].storage, let seconds = Instant.parse(text) else { return nil }
        return Int64((seconds * 1000).rounded())
    }
}

/// New `computed_traits` values for every profile of a tenant, for one trait
/// or RFM model: what its query computed, and what every other profile gets.
///
/// Compact, since a batch holds every value of its definitions until their
/// write pass: the profile ids, and the values' JSON texts back to back.
public struct TraitColumn: Sendable {
    /// The member of `computed_traits` (the trait's name, `rfm.<model>`).
    let key: String
    /// JSON text for profiles without a value; nil: no value.
    let fallback: [UInt8]?
    let conversion: Conversion
    /// Profiles with a value, ascending (as SQLite orders them).
    private(set) var profileIDs: [String] = []
    /// Value `i` is `json[ends[i - 1] ..< ends[i]]`.
    private var json: [UInt8] = []
    private var ends: [Int] = []
    private var sorted = true

    /// How many profiles have a computed value.
    public var count: Int { profileIDs.count }

    /// How a value SQLite returned becomes JSON text.
    enum Conversion {
        /// Numbers as numbers; text is JSON already (an exact decimal sum, a property's JSON).
        case json
        /// Numbers as numbers, text as a JSON string.
        case quoted
        /// A truth value as true or false.
        case boolean
    }

    init(key: String, conversion: Conversion, fallback: String?) {
        self.key = key
        self.conversion = conversion
        self.fallback = fallback.map { Array($0.utf8) }
    }

    /// Adds a profile's value (NULL: none).
    mutating func append(_ profileID: String, _ value: DatabaseValue) {
        guard Self.appendJSON(value, conversion, to: &json) else { return }
        if let last = profileIDs.last, ProfileOrder.precedes(profileID, last) { sorted = false }
        profileIDs.append(profileID)
        ends.append(json.count)
    }

    /// Where `profileID`'s value is, if it has one (binary search).
    func position(of profileID: String) -> Int? {
        var (low, high) = (0, profileIDs.count)
        while low < high {
            let middle = (low + high) / 2
            if ProfileOrder.precedes(profileIDs[middle], profileID) { low = middle + 1 } else { high = middle }
        }
        return low < profileIDs.count && ProfileOrder.equal(profileIDs[low], profileID) ? low : nil
    }

    /// The JSON text of value `index`.
    func value(_ index: Int) -> ArraySlice<UInt8> {
        json[(index == 0 ? 0 : ends[index - 1])..<ends[index]]
    }

    /// The column with its values in profile id order (byte order, as SQLite's).
    func inOrder() -> TraitColumn {
        guard !sorted else { return self }
        var result = self
        (result.profileIDs, result.json, result.ends, result.sorted) = ([], [], [], true)
        for index in profileIDs.indices.sorted(by: { ProfileOrder.precedes(profileIDs[$0], profileIDs[$1]) }) {
            result.profileIDs.append(profileIDs[index])
            result.json.append(contentsOf: value(index))
            result.ends.append(result.json.count)
        }
        return result
    }

    /// Appends the JSON text of `value` to `output`; false (nothing appended)
    /// for NULL: no value.
    static func appendJSON(_ value: DatabaseValue, _ conversion: Conversion, to output: inout [UInt8]) -> Bool {
        switch (value.storage, conversion) {
        case (.null, _), (.blob, _), (.string, .boolean): return false
        case (.int64(let integer), .boolean): output.append(contentsOf: (integer != 0 ? "true" : "false").utf8)
        case (.double(let double), .boolean): output.append(contentsOf: (double != 0 ? "true" : "false").utf8)
        case (.int64(let integer), _): output.append(contentsOf: String(integer).utf8)
        case (.double(let double), _): output.append(contentsOf: JSONValue.number(double).jsonBytes())
        case (.string(let text), .json): output.append(contentsOf: text.utf8)
        case (.string(let text), .quoted): output.append(contentsOf: JSONValue.string(text).jsonBytes())
        }
        return true
    }
}

/// Computed traits and RFM scores: each one's values from one grouped query on
/// a reader, then many written together in one pass over the profiles.
extension SQLiteStore {
    /// Computes `traits` (all of one `TraitScan`) as of `asOf` for every
    /// profile of their tenant, in one query on a reader;
    /// `write(columns:tenant:)` stores them in `computed_traits.<name>`.
    /// Profiles without a matching event get 0 (count, unique_count, sum),
    /// false (exists), or no value (the others).
    public func traitColumns(_ traits: [TraitDefinition], asOf: Milliseconds, profiles: ProfileSlots) async throws -> [TraitColumn] {
        guard let first = traits.first else { return [] }
        var query = SegmentQuery(context: RuleContext(tenant: first.tenantID, asOf: asOf, churnPeriodDays: 0, identifierHash: { _, _ in nil }, segmentReference: { _ in nil }))
        let (sql, arguments, layout) = query.traitEvents(traits)
        let statementArguments = StatementArguments(arguments)
        // Numbers from their text (exact decimals), booleans as JSON booleans;
        // profiles without a value get 0 (count, unique_count, sum), false
        // (exists), or none (the others).
        let empty = traits.map { trait in
            switch trait.type {
            case .exists: TraitColumn(key: trait.name, conversion: .boolean, fallback: "false")
            case .sum, .count, .uniqueCount: TraitColumn(key: trait.name, conversion: .json, fallback: "0")
            case .average: TraitColumn(key: trait.name, conversion: .json, fallback: nil)
            // The property's JSON text, so true stays true and objects stay objects.
            case .first, .last: TraitColumn(key: trait.name, conversion: trait.property == nil ? .quoted : .json, fallback: nil)
            case .min, .max: TraitColumn(key: trait.name, conversion: .quoted, fallback: nil)
            }
        }
        return try await pool.read { db in
            let accumulators = layout.traits.map { TraitAccumulator.make($0.trait, start: $0.start, property: $0.property) }
            var slots = SlotAssignment(profiles)
            // A table row only for profiles with events here (1 + its row; 0: none),
            // so a rare event costs rows for the few profiles that have it.
            var rows = [Int32](repeating: 0, count: slots.count)
            let table = AccumulatorTable(accumulators, rows: 0)
            let statement = try db.makeStatement(sql: sql)
            statement.setUncheckedArguments(statementArguments)
            try withExtendedLifetime(statement) {
                let handle = statement.sqliteStatement
                let row = TraitEventRow(handle: handle)
                while true {
                    let code = sqlite3_step(handle)
                    if code == SQLITE_DONE { break }
                    guard code == SQLITE_ROW else {
                        throw StoreError("traits \(traits.map(\.name).joined(separator: ", ")): \(String(cString: sqlite3_errmsg(db.sqliteConnection)))")
                    }
                    let (slot, isNew) = slots.slot(String(cString: sqlite3_column_text(handle, 0)))
                    if isNew { rows.append(0) }
                    if rows[slot] == 0 {
                        table.grow(to: table.rows + 1)
                        rows[slot] = Int32(table.rows)
                    }
                    let (time, sequence) = (sqlite3_column_int64(handle, 1), sqlite3_column_int64(handle, 2))
                    let state = table.row(Int(rows[slot]) - 1)
                    for accumulator in accumulators { accumulator.add(state, time: time, sequence: sequence, event: row) }
                }
            }
            // A NULL result (no events, or an average or minimum of no numbers) is
            // no value: the profile gets the fallback.
            var columns = empty
            for slot in slots.inOrder() where rows[slot] > 0 {
                let state = table.row(Int(rows[slot]) - 1)
                for index in columns.indices {
                    let value = accumulators[index].value(state)
                    if !value.isNull { columns[index].append(slots.id(slot), value) }
                }
            }
            return columns
        }
    }

    /// The tenant's profile ids in order, numbered for the passes of one refresh.
    public func profileSlots(tenant: String) async throws -> ProfileSlots {
        try await pool.read { db in
            ProfileSlots(ids: try String.fetchAll(db, sql: "SELECT id FROM profiles WHERE tenant_id = ? ORDER BY id", arguments: [tenant]))
        }
    }

    /// How many columns one write pass takes at most: every value of each is
    /// held in memory until the pass.
    public static let columnsPerWrite = 32

    /// Makes each column's member of `computed_traits` equal its computed
    /// values for the profiles listed and its fallback for every other profile
    /// of `tenant`, all columns in one pass: each profile row is rewritten at
    /// most once, and only if one of its values differs, so a steady-state
    /// refresh writes almost nothing. The other members are kept as written.
    ///
    /// The pass goes by ranges of `writeChunk` profile ids. A range's rows are
    /// read and spliced on a reader (while the writer applies the previous
    /// range), then updated in one short transaction, each only if it is still
    /// as read: a row a merge changed meanwhile is read and spliced again
    /// there. A profile created after its range was read gets its fallbacks at
    /// the next run.
    public func write(columns: [TraitColumn], tenant: String) async throws {
        guard !columns.isEmpty else { return }
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
        // Each range: its bounds, and the index range of each column's values in it.
        var ranges: [(lower: String?, upper: String?, values: [Range<Int>])] = []
        var next = Array(repeating: 0, count: columns.count)
        for upper in uppers {
            var values: [Range<Int>] = []
            for (index, column) in columns.enumerated() {
                var end = next[index]
                while end < column.count, upper.map({ !ProfileOrder.precedes($0, column.profileIDs[end]) }) ?? true { end += 1 }
                values.append(next[index]..<end)
                next[index] = end
            }
            ranges.append((ranges.last?.upper, upper, values))
        }
        // A range's rows are read and spliced on a reader while the writer applies the
        // previous range's: the writer only runs the updates.
        @Sendable func rewrites(_ range: (lower: String?, upper: String?, values: [Range<Int>])) async throws -> [Rewrite] {
            // Plain comparisons (no "?2 IS NULL OR ..."), so SQLite seeks the key range;
            // as many arguments as the highest parameter number used.
            let bounds = [range.lower.map { _ in "id > ?2" }, range.upper.map { _ in "id <= ?3" }].compactMap { $0 }
            let inRange = bounds.isEmpty ? "1" : bounds.joined(separator: " AND ")
            let arguments: StatementArguments = range.upper != nil ? [tenant, range.lower ?? "", range.upper] : range.lower != nil ? [tenant, range.lower] : [tenant]
            return try await pool.read { db in
                // Every profile of the range in id order, walked beside the columns' sorted values.
                var changed: [Rewrite] = []
                var heads = range.values.map(\.lowerBound)
                let rows = try Row.fetchCursor(db, sql: "SELECT id, computed_traits FROM profiles WHERE tenant_id = ?1 AND \(inRange) ORDER BY id", arguments: arguments)
                while let row = try rows.next() {
                    let id: String = row[0]
                    let stored: String = row[1]
                    let position = { (index: Int) -> Int? in
                        let end = range.values[index].upperBound
                        // Values of profiles that are gone (merged since the query) are skipped.
                        while heads[index] < end, ProfileOrder.precedes(columns[index].profileIDs[heads[index]], id) { heads[index] += 1 }
                        return heads[index] < end && ProfileOrder.equal(columns[index].profileIDs[heads[index]], id) ? heads[index] : nil
                    }
                    if let rewritten = Self.splice(stored, columns, position) { changed.append(Rewrite(id: id, stored: stored, rewritten: rewritten)) }
                }
                return changed
            }
        }
        let cache = writerCache
        var pending: Task<[Rewrite], any Error>? = ranges.first.map { first in Task { try await rewrites(first) } }
        defer { pending?.cancel() }
        for index in ranges.indices {
            guard let current = pending else { break }
            let changed = try await current.value
            pending = index + 1 < ranges.count ? Task { [range = ranges[index + 1]] in try await rewrites(range) } : nil
            try await pool.write { db in
                // Only if the row is still as it was read; one changed since (a merge gave it
                // traits, or took it away) is read and spliced again here.
                let statements = HotStatements(db: db)
                func update(_ id: String, from stored: String, to rewritten: String) throws -> Bool {
                    var update = try statements.statement(.rewriteComputedTraits)
                    update.bind(rewritten)
                    update.bind(tenant)
                    update.bind(id)
                    update.bind(stored)
                    try update.execute()
                    return db.changesCount == 1
                }
                var moved: [String] = []
                for rewrite in changed where try !update(rewrite.id, from: rewrite.stored, to: rewrite.rewritten) {
                    moved.append(rewrite.id)
                }
                let read = try db.makeStatement(sql: "SELECT computed_traits FROM profiles WHERE tenant_id = ? AND id = ?")
                for id in moved {
                    guard let stored = try String.fetchOne(read, arguments: [tenant, id]) else { continue }
                    let position = { (index: Int) -> Int? in columns[index].position(of: id) }
                    if let rewritten = Self.splice(stored, columns, position) {
                        _ = try update(id, from: stored, to: rewritten)
                    }
                }
                // computed_traits changed behind the ingestion cache's back: forget the
                // cached profiles before the writer is free for the next transaction.
                cache.clearProfiles()
            }
        }
    }

    /// A profile's computed_traits as read, and as it should be.
    struct Rewrite: Sendable {
        var id: String
        var stored: String
        var rewritten: String
    }

    /// `stored` with each column's member set to the profile's value (at the
    /// position `position` gives, if any) or the column's fallback; nil if
    /// nothing changes. Anything but an object (only a hand edit makes one) is
    /// replaced by the values computed, not left to fail every pass.
    static func splice(_ stored: String, _ columns: [TraitColumn], _ position: (Int) -> Int?) -> String? {
        var traits = RawJSONObject(stored) ?? RawJSONObject()
        for (index, column) in columns.enumerated() {
            if let at = position(index) {
                traits.set(column.key, Array(column.value(at)))
            } else {
                traits.set(column.key, column.fallback)
            }
        }
        let rewritten = traits.bytes
        return stored.utf8.elementsEqual(rewritten) ? nil : String(decoding: rewritten, as: UTF8.self)
    }

    /// An RFM model's inputs as traits, computed in the trait passes (so they
    /// share a pass with traits reading the same events) and never stored:
    /// the latest recency event, and the count and exact sum of
    /// `monetary_property` of frequency events, each in the lookback window.
    public static func rfmInputTraits(_ model: RFMDefinition) -> [TraitDefinition] {
        let window = TraitWindow.last(model.lookbackDays ?? 365, .days)
        let frequency = model.frequencyEvent ?? "Purchase"
        return [
            TraitDefinition(name: "rfm.\(model.name).recency", tenant: model.tenant, type: .last, event: model.recencyEvent ?? "Purchase", window: window),
            TraitDefinition(name: "rfm.\(model.name).frequency", tenant: model.tenant, type: .count, event: frequency, window: window),
            TraitDefinition(name: "rfm.\(model.name).monetary", tenant: model.tenant, type: .sum, event: frequency, property: model.monetaryProperty ?? "total", window: window),
        ]
    }

    /// Recency, frequency and monetary inputs of every profile with at least
    /// one recency or frequency event in the lookback window, from the columns
    /// of `rfmInputTraits` (in its order).
    public static func rfmInputs(_ model: RFMDefinition, asOf: Milliseconds, columns: [TraitColumn]) -> [(profileID: String, days: Int, frequency: Int, monetary: Decimal, monetaryText: String)] {
        let (recency, frequency, monetary) = (columns[0], columns[1], columns[2])
        let lookbackDays = model.lookbackDays ?? 365
        var inputs: [(profileID: String, days: Int, frequency: Int, monetary: Decimal, monetaryText: String)] = []
        var (r, f) = (0, 0)
        while r < recency.count || f < frequency.count {
            let id: String
            if f == frequency.count || (r < recency.count && ProfileOrder.precedes(recency.profileIDs[r], frequency.profileIDs[f])) {
                id = recency.profileIDs[r]
            } else {
                id = frequency.profileIDs[f]
            }
            var days = lookbackDays + 1
            if r < recency.count, ProfileOrder.equal(recency.profileIDs[r], id) {
                // The instant as the trait stores it: a JSON string.
                let text = String(decoding: recency.value(r).dropFirst().dropLast(), as: UTF8.self)
                if let seconds = Instant.parse(text) { days = Int((asOf - Int64((seconds * 1000).rounded())) / 86_400_000) }
                r += 1
            }
            var (count, text) = (0, "0")
            if f < frequency.count, ProfileOrder.equal(frequency.profileIDs[f], id) {
                count = Int(String(decoding: frequency.value(f), as: UTF8.self)) ?? 0
                if let at = monetary.position(of: id) { text = String(decoding: monetary.value(at), as: UTF8.self) }
                f += 1
            }
            inputs.append((id, days, count, DecimalSum.decimal(text) ?? 0, text))
        }
        return inputs
    }

    /// RFM results for `computed_traits.rfm.<model>`; profiles not in
    /// `scores` lose theirs (they were not scored this run).
    public static func rfmColumn(model: String, scores: [(profileID: String, r: Int, f: Int, m: Int, segment: String)]) -> TraitColumn {
        // {"r":5,"f":4,"m":3,"segment":"Loyal"}, each segment name encoded once.
        var names: [String: String] = [:]
        var column = TraitColumn(key: "rfm." + model, conversion: .json, fallback: nil)
        for score in scores {
            let name = names[score.segment] ?? {
                let encoded = JSONValue.string(score.segment).jsonText()
                names[score.segment] = encoded
                return encoded
            }()
            column.append(score.profileID, #"{"r":\#(score.r),"f":\#(score.f),"m":\#(score.m),"segment":\#(name)}"#.databaseValue)
        }
        return column.inOrder()
    }
}

/// The events a trait reads. Traits with the same scan are computed from one
/// pass over those events, in the widest of their windows (each narrower
/// window is applied to its own aggregate).
public struct TraitScan: Hashable, Sendable {
    let tenant: String
    let event: String
    let sources: [String]
    let conditions: [PropertyCondition]

    public init(_ trait: TraitDefinition) {
        tenant = trait.tenantID
        event = trait.event
        sources = trait.sources ?? []
        conditions = trait.where ?? []
    }
}

extension SegmentQuery {
    /// `SELECT profile_id, event_time, seq, <property columns> FROM events ...`:
    /// every event the traits of one `TraitScan` read, over the widest of
    /// their windows; `TraitAccumulators` aggregate them per profile.
    ///
    /// SQLite would group them by sorting every row by profile (GROUP BY, or
    /// a window function for first/last of a property): several times the
    /// cost of reading them. The rows are found by name and time
    /// (`events_by_name`, forced), in storage order.
    mutating func traitEvents(_ traits: [TraitDefinition]) -> (sql: String, arguments: [DatabaseValueConvertible?], layout: TraitEventLayout) {
        let trait = traits[0]
        precondition(traits.allSatisfy { TraitScan($0) == TraitScan(trait) }, "traits of one query share their scan")
        var filters = [
            "e.tenant_id = \(bindValue(trait.tenantID))", "e.profile_id IS NOT NULL",
            "e.event_name = \(bindValue(trait.event))", "e.event_time <= \(bindValue(context.asOf))",
        ]
        let starts = traits.map { trait -> Milliseconds? in
            guard case .last(let count, let unit) = trait.window ?? .all else { return nil }
            return context.asOf - Int64(count) * Int64(unit.seconds) * 1000
        }
        let scanStart = starts.contains(nil) ? nil : starts.compactMap { $0 }.min()
        if let scanStart {
            filters.append("e.event_time >= \(bindValue(scanStart))")
        }
        if let sources = trait.sources, !sources.isEmpty {
            filters.append("e.source_id IN (" + sources.map { bindValue($0) }.joined(separator: ", ") + ")")
        }
        for condition in trait.where ?? [] {
            let (expression, storage) = Self.jsonValue("e.properties", bindValue(Self.jsonPath(condition.property)))
            filters.append(compare(expression, storage, condition.operator, condition.value, condition.unit))
        }
        // Each property read once, as JSON text, and only from the events of the
        // widest window of the traits that read it.
        var columns = ["e.profile_id", "e.event_time", "e.seq"]
        var propertyColumns: [String: Int32] = [:]
        var layout = TraitEventLayout()
        for (trait, start) in zip(traits, starts) {
            let column = trait.property.map { name in
                propertyColumns[name] ?? {
                    let readers = zip(traits, starts).filter { $0.0.property == name }.map(\.1)
                    let from = readers.contains(nil) ? nil : readers.compactMap { $0 }.min()
                    let json = "e.properties -> \(bindValue(Self.jsonPath(name)))"
                    columns.append(from.flatMap { $0 == scanStart ? nil : "CASE WHEN e.event_time >= \(bindValue($0)) THEN \(json) END" } ?? json)
                    propertyColumns[name] = Int32(columns.count - 1)
                    return Int32(columns.count - 1)
                }()
            }
            layout.traits.append((trait, start == scanStart ? nil : start, column))
        }
        let sql = "SELECT " + columns.joined(separator: ", ") + " FROM events e INDEXED BY events_by_name WHERE "
            + SegmentQuery.balanced(filters, "AND")
        return (sql, arguments, layout)
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
