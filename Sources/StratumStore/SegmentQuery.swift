import Foundation
import GRDB
import StratumDefinitions
import StratumJSON

/// What a segment's rules need beyond themselves to become a query.
public struct RuleContext: Sendable {
    public var tenant: String
    /// The evaluation instant: relative time windows end here (`--as-of`).
    public var asOf: Milliseconds
    public var churnPeriodDays: Int
    /// The hash of an identifier value, normalised as ingestion does (nil: unusable).
    public var identifierHash: @Sendable (_ type: String, _ value: String) -> String?
    /// What another segment of the tenant is, for `field: segment` (nil: no such segment).
    public var segmentReference: @Sendable (_ name: String) -> SegmentReference?

    public init(tenant: String, asOf: Milliseconds, churnPeriodDays: Int, identifierHash: @escaping @Sendable (String, String) -> String?, segmentReference: @escaping @Sendable (String) -> SegmentReference?) {
        self.tenant = tenant
        self.asOf = asOf
        self.churnPeriodDays = churnPeriodDays
        self.identifierHash = identifierHash
        self.segmentReference = segmentReference
    }
}

/// How a referenced segment's membership is decided.
public enum SegmentReference: Sendable {
    /// By its rules, evaluated inline as of the same instant (dynamic and computed segments).
    case rules(RuleGroup)
    /// By its stored members (static segments: managed by API and import).
    case storedMembers
}

/// Compiles the rule language (DESIGN.md, Rule semantics) into one SQLite
/// query over all of a tenant's profiles: set-at-a-time, every value bound,
/// field paths validated by the definitions' schema and turned into JSON
/// paths here, never spliced as text.
///
/// Semantics: a missing value matches only `not_equals`, `not_in` and
/// `not_exists`; numbers compare numerically and strings exactly (a JSON
/// string "5" never equals 5); dates compare as instants; time windows are
/// relative to `RuleContext.asOf`.
struct SegmentQuery {
    let context: RuleContext
    /// A table of profile ids (column `id`) the query is limited to, for an
    /// incremental run: every part of it, event subqueries included, reads
    /// only those profiles' rows, so its cost follows the touched profiles,
    /// not the store's size.
    let scope: String?
    private(set) var arguments: [DatabaseValueConvertible?] = []
    /// Segments being expanded, to stop a reference cycle the validator missed.
    private var expanding: [String] = []
    /// Referenced segments' queries, as common table expressions in dependency
    /// order, and the name each is known by: a chain of references stays one
    /// level deep in the SQL text (nested inline, six levels overflowed
    /// SQLite's parser stack), and a segment referenced twice is compiled once.
    private var referenced: [(segment: String, table: String, sql: String)] = []

    init(context: RuleContext, scope: String? = nil) {
        self.context = context
        self.scope = scope
    }

    /// `SELECT p.id FROM profiles p WHERE <tenant> AND <seen by asOf> AND <rules>`:
    /// a profile first seen after the evaluation instant did not exist then.
    mutating func select(_ rules: RuleGroup) throws -> String {
        let tenant = bind(context.tenant)
        let seen = bind(context.asOf)
        let main = "SELECT p.id FROM profiles p WHERE p.tenant_id = \(tenant)\(scoped("p.id")) AND p.first_seen_at <= \(seen) AND (\(try group(rules)))"
        let sql = referenced.isEmpty ? main : "WITH " + referenced.map { "\($0.table) AS (\($0.sql))" }.joined(separator: ", ") + " " + main
        // A condition that can never match ("in: [null]") compiles to 0 after its
        // field's JSON path was bound: SQLite counts parameters up to the highest
        // one the text names, so values past it would be refused as too many.
        arguments.removeLast(arguments.count - Self.highestParameter(in: sql))
        return sql
    }

    /// The highest `?N` in generated SQL (values are always bound, never in the text).
    static func highestParameter(in sql: String) -> Int {
        var highest = 0
        var bytes = sql.utf8.makeIterator()
        var number: Int?
        while let byte = bytes.next() {
            if byte == UInt8(ascii: "?") {
                number = 0
            } else if let current = number, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                number = current * 10 + Int(byte - UInt8(ascii: "0"))
            } else {
                highest = max(highest, number ?? 0)
                number = nil
            }
        }
        return max(highest, number ?? 0)
    }

    /// ` AND <column> IN (SELECT id FROM <scope>)`, or nothing without a scope.
    private func scoped(_ column: String) -> String {
        scope.map { " AND \(column) IN (SELECT id FROM \($0))" } ?? ""
    }

    /// A numbered parameter (`?3`), so an expression can appear twice in the
    /// SQL (`x IS NULL OR NOT (x = ?)`) with its values bound once.
    private mutating func bind(_ value: DatabaseValueConvertible?) -> String {
        arguments.append(value)
        return "?\(arguments.count)"
    }

    /// `bind` for the other query builders of this module.
    mutating func bindValue(_ value: DatabaseValueConvertible?) -> String { bind(value) }

    mutating func group(_ rules: RuleGroup) throws -> String {
        var parts: [(cost: Int, sql: String)] = []
        for condition in rules.conditions ?? [] {
            switch condition {
            case .field(let field): parts.append((Self.cost(of: field), try self.field(field)))
            case .event(let event): parts.append((4, try self.event(event)))
            }
        }
        for nested in rules.groups ?? [] { parts.append((3, try group(nested))) }
        guard !parts.isEmpty else { return "0" }
        // Cheapest first: AND and OR give the same answer in any order, and SQLite
        // stops at the first term that decides (parameters are numbered, so the
        // text can move).
        let ordered = parts.enumerated().sorted { ($0.element.cost, $0.offset) < ($1.element.cost, $1.offset) }
        return Self.balanced(ordered.map(\.element.sql), rules.effectiveLogic == .and ? "AND" : "OR")
    }

    /// `terms` joined by `connective` (AND, OR) as a balanced tree, in their
    /// order. SQLite parses `a OR b OR c …` as a chain as deep as it is long
    /// and refuses an expression deeper than 1,000: a segment with a thousand
    /// `in` values or conditions would never evaluate. Balanced, the depth is
    /// the logarithm, and evaluation still runs left to right and stops at
    /// the first term that decides.
    static func balanced(_ terms: [String], _ connective: String) -> String {
        balanced(terms[...], connective)
    }

    private static func balanced(_ terms: ArraySlice<String>, _ connective: String) -> String {
        guard terms.count > 1 else { return "(\(terms.first ?? (connective == "AND" ? "1" : "0")))" }
        let middle = terms.startIndex + terms.count / 2
        return "(\(balanced(terms[..<middle], connective)) \(connective) \(balanced(terms[middle...], connective)))"
    }

    /// How much a condition costs per profile, in classes: a column (0), a
    /// JSON value (1), a stored date read through `stratum_instant` (2), a
    /// subquery or another segment's rules (3); event conditions are 4.
    static func cost(of condition: FieldCondition) -> Int {
        guard let path = FieldPath(parsing: condition.field) else { return 3 }
        switch path {
        case .identifier, .consent, .segment: return 3
        case .profileData, .computedTrait, .rfm:
            return condition.operator.isAbsoluteTime || condition.operator.isRelativeTime ? 2 : 1
        default: return 0
        }
    }

    /// How a field's values are stored, which decides how they compare.
    enum Storage: Equatable {
        /// An integer column of milliseconds since the epoch.
        case instantMilliseconds
        /// A plain column holding a number or a string.
        case value
        /// A value inside a JSON document; `type` is SQL for its `json_type`
        /// ('true', 'false', 'integer', 'real', 'text', ...), so that true is
        /// never the number 1 although SQLite extracts it as 1.
        case json(type: String)
        /// A decimal kept as text: compared as a number.
        case decimalText
    }

    /// The value at `path` (a bound JSON path) of `document`, typed.
    static func jsonValue(_ document: String, _ path: String) -> (String, Storage) {
        ("json_extract(\(document), \(path))", .json(type: "json_type(\(document), \(path))"))
    }

    mutating func field(_ condition: FieldCondition) throws -> String {
        guard let path = FieldPath(parsing: condition.field) else { throw StoreError("unknown field \(condition.field)") }
        switch path {
        case .segment:
            return try segmentMembership(condition)
        case .identifier(let type):
            return identifier(type, condition)
        case .consent(let type):
            // The record in force at the evaluation instant (a later change is not yet made).
            let expression = "(SELECT c.granted FROM consents c WHERE c.tenant_id = p.tenant_id AND c.profile_id = p.id AND c.consent_type IN (\(bind(type)), 'all') AND c.recorded_at <= \(bind(context.asOf)) ORDER BY c.recorded_at DESC, c.seq DESC LIMIT 1)"
            return compare(expression, .value, condition.operator, condition.value, condition.unit)
        default:
            let (expression, storage) = column(path)
            return compare(expression, storage, condition.operator, condition.value, condition.unit)
        }
    }

    private mutating func column(_ path: FieldPath) -> (String, Storage) {
        switch path {
        case .lifecycleStage:
            let churn = Int64(context.churnPeriodDays) * 86_400_000
            return ("(CASE WHEN \(bind(context.asOf)) - p.last_seen_at > \(bind(churn)) THEN 'churned' ELSE p.lifecycle_stage END)", .value)
        case .externalID: return ("p.external_id", .value)
        case .firstSeenAt: return ("p.first_seen_at", .instantMilliseconds)
        case .lastSeenAt: return ("p.last_seen_at", .instantMilliseconds)
        case .totalEvents: return ("p.total_events", .value)
        case .totalSessions: return ("p.total_sessions", .value)
        case .totalPurchases: return ("p.total_purchases", .value)
        case .totalRevenue: return ("p.total_revenue", .decimalText)
        case .profileData(let key): return Self.jsonValue("p.profile_data", bind(Self.jsonPath(key)))
        case .computedTrait(let name): return Self.jsonValue("p.computed_traits", bind(Self.jsonPath([name])))
        case .rfm(let model, let part): return Self.jsonValue("p.computed_traits", bind(Self.jsonPath(["rfm." + model, part.rawValue])))
        case .identifier, .consent, .segment: return ("NULL", .value)
        }
    }

    /// `$."a"."b"` for `a.b`: every segment quoted, so no key is read as path syntax.
    static func jsonPath(_ dotted: String) -> String {
        jsonPath(dotted.split(separator: ".").map(String.init))
    }

    static func jsonPath(_ segments: [String]) -> String {
        "$" + segments.map { "." + "\"" + $0.replacingOccurrences(of: "\"", with: "") + "\"" }.joined()
    }

    /// A bound SQL value for a JSON scalar.
    static func sqlValue(_ value: JSONValue) -> DatabaseValueConvertible? {
        switch value {
        case .string(let text): text
        case .number(let number): number.rounded() == number && abs(number) < 9e15 ? Int64(number) : number
        case .bool(let flag): flag ? 1 : 0
        default: nil
        }
    }

    /// The instant a rule value denotes, in milliseconds.
    static func instant(_ value: JSONValue?) -> Milliseconds? {
        guard let text = value?.stringValue, let seconds = Instant.parse(text) else { return nil }
        return Milliseconds((seconds * 1000).rounded())
    }

    /// One comparison with the missing-value rule applied.
    mutating func compare(_ expression: String, _ storage: Storage, _ op: RuleOperator, _ value: JSONValue?, _ unit: TimeUnit?) -> String {
        let number = storage == .decimalText ? "CAST(\(expression) AS REAL)" : expression
        let isNumber: String
        let isText: String
        switch storage {
        case .json(let type):
            isNumber = "\(type) IN ('integer', 'real')"
            isText = "\(type) = 'text'"
        case .decimalText:
            isNumber = "\(expression) IS NOT NULL"
            isText = "0"
        case .value, .instantMilliseconds:
            isNumber = "typeof(\(expression)) IN ('integer', 'real')"
            isText = "typeof(\(expression)) = 'text'"
        }
        // Instants are milliseconds in integer columns, ISO-8601 text elsewhere, read
        // by the same parser as rule values (stratum_instant: NULL for anything that
        // is not a date, so "1990" or a number never is one).
        let instant = storage == .instantMilliseconds ? expression
            : "(CASE WHEN \(isText) THEN stratum_instant(\(expression)) END)"
        /// `expression = value`, true only for a value of the same JSON type; a
        /// value that is a date compares as an instant.
        func equal(_ given: JSONValue?) -> String {
            guard let given, Self.sqlValue(given) != nil else { return "0" }
            switch (storage, given) {
            case (.decimalText, .number(let figure)): return "\(number) = \(bind(figure))"
            case (.instantMilliseconds, _):
                guard let moment = Self.instant(given) else { return "0" }
                return "\(expression) = \(bind(moment))"
            case (_, .string) where Self.instant(given) != nil:
                // A stored value that is no date is simply not equal (0, not NULL), so
                // `not_equals` and `not_in` keep it.
                return "COALESCE(\(instant) = \(bind(Self.instant(given))), 0)"
            case (.json(let type), .bool(let flag)): return "\(type) = '\(flag ? "true" : "false")'"
            case (.json, .number): return "(\(isNumber) AND \(expression) = \(bind(Self.sqlValue(given))))"
            case (.json, .string): return "(\(isText) AND \(expression) = \(bind(Self.sqlValue(given))))"
            default: return "\(expression) = \(bind(Self.sqlValue(given)))"
            }
        }
        switch op {
        case .exists: return "\(expression) IS NOT NULL"
        case .notExists: return "\(expression) IS NULL"
        case .equals: return equal(value)
        case .notEquals: return "(\(expression) IS NULL OR NOT (\(equal(value))))"
        case .in, .notIn:
            let items = value?.arrayValue ?? []
            let any = items.isEmpty ? "0" : Self.balanced(items.map(equal), "OR")
            return op == .in ? any : "(\(expression) IS NULL OR NOT (\(any)))"
        case .contains:
            return "\(isText) AND instr(\(expression), \(bind(value?.stringValue ?? ""))) > 0"
        case .greaterThan, .lessThan, .greaterOrEqual, .lessOrEqual:
            let symbol = [RuleOperator.greaterThan: ">", .lessThan: "<", .greaterOrEqual: ">=", .lessOrEqual: "<="][op]!
            return "\(isNumber) AND \(number) \(symbol) \(bind(value?.numberValue))"
        case .between:
            let bounds = value?.arrayValue ?? []
            if bounds.count == 2, let low = bounds[0].numberValue, let high = bounds[1].numberValue {
                return "\(isNumber) AND \(number) BETWEEN \(bind(low)) AND \(bind(high))"
            }
            if bounds.count == 2, let low = Self.instant(bounds[0]), let high = Self.instant(bounds[1]) {
                return "\(instant) BETWEEN \(bind(low)) AND \(bind(high))"
            }
            return "0"
        case .withinLast, .notWithinLast:
            let window = Int64(value?.numberValue ?? 0) * Int64((unit ?? .days).seconds) * 1000
            let start = context.asOf - window
            return op == .withinLast
                ? "\(instant) BETWEEN \(bind(start)) AND \(bind(context.asOf))"
                : "\(instant) < \(bind(start))"
        case .before:
            return "\(instant) < \(bind(Self.instant(value)))"
        case .after:
            return "\(instant) > \(bind(Self.instant(value)))"
        }
    }

    /// `identifiers.<type>`: existence of the type, or equality with a value
    /// hashed as ingestion hashes it.
    mutating func identifier(_ type: String, _ condition: FieldCondition) -> String {
        func exists(_ more: String = "") -> String {
            "EXISTS (SELECT 1 FROM profile_identifiers i WHERE i.tenant_id = p.tenant_id AND i.profile_id = p.id AND i.identifier_type = \(bind(type))\(more))"
        }
        func holding(_ values: [JSONValue]) -> String {
            let hashes = values.compactMap { $0.stringValue.flatMap { context.identifierHash(type, $0) } }
            guard !hashes.isEmpty else { return "0" }
            return exists(" AND i.identifier_hash IN (" + hashes.map { bind($0) }.joined(separator: ", ") + ")")
        }
        switch condition.operator {
        case .exists: return exists()
        case .notExists: return "NOT " + exists()
        case .equals: return holding([condition.value ?? .null])
        case .notEquals: return "NOT (" + holding([condition.value ?? .null]) + ")"
        case .in: return holding(condition.value?.arrayValue ?? [])
        case .notIn: return "NOT (" + holding(condition.value?.arrayValue ?? []) + ")"
        default: return "0"
        }
    }

    /// `field: segment`: membership of another segment, by its rules (a common
    /// table expression, see `referenced`) or its stored members.
    mutating func segmentMembership(_ condition: FieldCondition) throws -> String {
        let names: [String] = condition.operator == .in || condition.operator == .notIn
            ? (condition.value?.arrayValue ?? []).compactMap(\.stringValue)
            : [condition.value?.stringValue].compactMap { $0 }
        var members: [String] = []
        for name in names {
            guard !expanding.contains(name) else { throw StoreError("segment reference cycle through \(name)") }
            switch context.segmentReference(name) {
            case nil:
                throw StoreError("unknown segment \(name)")
            case .storedMembers:
                members.append("p.id IN (SELECT m.profile_id FROM segment_memberships m WHERE m.tenant_id = \(bind(context.tenant)) AND m.segment = \(bind(name)))")
            case .rules(let rules):
                if let known = referenced.first(where: { $0.segment == name }) {
                    members.append("p.id IN \(known.table)")
                    continue
                }
                expanding.append(name)
                let tenant = bind(context.tenant)
                let sql = "SELECT p.id FROM profiles p WHERE p.tenant_id = \(tenant)\(scoped("p.id")) AND (\(try group(rules)))"
                expanding.removeLast()
                let table = "referenced_\(referenced.count + 1)"
                referenced.append((name, table, sql))
                members.append("p.id IN \(table)")
            }
        }
        let any = members.isEmpty ? "0" : Self.balanced(members, "OR")
        switch condition.operator {
        case .equals, .in: return any
        case .notEquals, .notIn: return "NOT (\(any))"
        default: return "0"
        }
    }

    /// An event condition: "performed EVENT [where ...] [count ...] within the
    /// last N units", as one set-based subquery over the events of the window.
    mutating func event(_ condition: EventCondition) throws -> String {
        let window = Int64(condition.value) * Int64(condition.unit.seconds) * 1000
        var filters = [
            "e.tenant_id = \(bind(context.tenant))", "e.event_name = \(bind(condition.eventName))",
            "e.event_time BETWEEN \(bind(context.asOf - window)) AND \(bind(context.asOf))",
        ]
        if let source = condition.source { filters.append("e.source_id = \(bind(source))") }
        // In full: the window of the event name (events_by_name). Scoped: each touched
        // profile's window (events_by_profile), which the planner would otherwise not pick.
        let events: String
        if let scope {
            events = "events e INDEXED BY events_by_profile"
            filters.append("e.profile_id IN (SELECT id FROM \(scope))")
        } else {
            events = "events e"
            filters.append("e.profile_id IS NOT NULL")
        }
        for property in condition.where ?? [] {
            let (expression, storage) = Self.jsonValue("e.properties", bind(Self.jsonPath(property.property)))
            filters.append(compare(expression, storage, property.operator, property.value, property.unit))
        }
        let matching = "SELECT e.profile_id FROM \(events) WHERE " + Self.balanced(filters, "AND") + " GROUP BY e.profile_id"
        if condition.operator == .notWithinLast {
            return "p.id NOT IN (\(matching))"
        }
        guard let count = condition.count else { return "p.id IN (\(matching))" }
        let having: String
        switch count.operator {
        case .between:
            let bounds = count.value.arrayValue?.compactMap(\.numberValue) ?? []
            guard bounds.count == 2 else { return "0" }
            having = "COUNT(*) BETWEEN \(bind(Int64(bounds[0]))) AND \(bind(Int64(bounds[1])))"
        default:
            let symbol = [RuleOperator.equals: "=", .notEquals: "<>", .greaterThan: ">", .lessThan: "<", .greaterOrEqual: ">=", .lessOrEqual: "<="][count.operator] ?? "="
            having = "COUNT(*) \(symbol) \(bind(Int64(count.value.numberValue ?? 0)))"
        }
        // Counts that can be zero ("fewer than 3") include profiles with no such event.
        let target = count.value.numberValue ?? 0
        let zeroMatches: Bool
        switch count.operator {
        case .greaterThan: zeroMatches = target < 0
        case .greaterOrEqual: zeroMatches = target <= 0
        case .lessThan: zeroMatches = target > 0
        case .lessOrEqual: zeroMatches = target >= 0
        case .notEquals: zeroMatches = target != 0
        case .equals: zeroMatches = target == 0
        case .between: zeroMatches = (count.value.arrayValue?.compactMap(\.numberValue)).map { $0.count == 2 && $0[0] <= 0 && $0[1] >= 0 } ?? false
        default: zeroMatches = false
        }
        let counted = "p.id IN (\(matching) HAVING \(having))"
        return zeroMatches ? "(\(counted) OR p.id NOT IN (\(matching)))" : counted
    }
}

extension SQLiteStore {
    /// The ids of the tenant's profiles matching `rules` (up to `limit`, sorted),
    /// and how many match in all.
    public func evaluate(_ rules: RuleGroup, context: RuleContext, limit: Int) async throws -> (count: Int, sample: [String]) {
        var query = SegmentQuery(context: context)
        let sql = try query.select(rules)
        let arguments = StatementArguments(query.arguments)
        return try await pool.read { db in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(sql))", arguments: arguments) ?? 0
            let sample = try String.fetchAll(db, sql: "\(sql) ORDER BY p.id LIMIT \(max(0, limit))", arguments: arguments)
            return (count, sample)
        }
    }
}
