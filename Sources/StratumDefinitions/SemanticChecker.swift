import Foundation
import StratumJSON

/// The third validation layer: checks across files that a schema cannot
/// express (references, cycles, operator/type fit, schedules, secrets).
struct SemanticChecker {
    let definitions: DefinitionSet
    let environment: [String: String]
    private var diagnostics: [Diagnostic] = []
    /// Segment reference edges for cycle detection: tenant/name → targets.
    private var segmentEdges: [String: [(target: String, file: String, pointer: JSONPointer, location: SourceLocation)]] = [:]

    init(definitions: DefinitionSet, environment: [String: String]) {
        self.definitions = definitions
        self.environment = environment
    }

    func check() -> [Diagnostic] {
        var checker = self
        checker.run()
        return checker.diagnostics
    }

    /// What a compared value must be.
    enum ValueKind: Equatable {
        case number, string, boolean, date, any
        case enumeration([String])
        case segmentName
        /// Identifier values, stored as hashes: equal or not, never searched.
        case identifierValue

        var phrase: String {
            switch self {
            case .number: "numbers"
            case .string: "strings"
            case .boolean: "true or false"
            case .date: "dates"
            case .any: "any value"
            case .enumeration(let values): "one of " + values.map { "\"\($0)\"" }.joined(separator: ", ")
            case .segmentName: "segment names"
            case .identifierValue: "identifier values, stored as SHA-256 hashes"
            }
        }

        func allows(_ op: RuleOperator) -> Bool {
            switch self {
            case .any: true
            case .number: !(op == .contains || op.isRelativeTime || op.isAbsoluteTime)
            case .string: [.equals, .notEquals, .contains, .in, .notIn, .exists, .notExists].contains(op)
            case .boolean: [.equals, .notEquals, .in, .notIn, .exists, .notExists].contains(op)
            case .date: [.equals, .notEquals, .exists, .notExists, .withinLast, .notWithinLast, .before, .after, .between].contains(op)
            case .enumeration: [.equals, .notEquals, .in, .notIn, .exists, .notExists].contains(op)
            case .segmentName: [.equals, .notEquals, .in, .notIn].contains(op)
            case .identifierValue: [.equals, .notEquals, .in, .notIn, .exists, .notExists].contains(op)
            }
        }
    }

    /// Where a problem goes: a file and its document.
    struct Place {
        var file: String
        var document: YAMLDocument
        var tenant: String

        init<D: Definition>(_ loaded: Loaded<D>) {
            file = loaded.file
            document = loaded.document
            tenant = loaded.definition.tenantID
        }
    }

    private mutating func report(_ place: Place, _ pointer: JSONPointer, _ message: String, hint: String? = nil, severity: Diagnostic.Severity = .error, atKey: Bool = false) {
        diagnostics.append(Diagnostic(
            file: place.file, location: place.document.location(of: pointer, preferKey: atKey),
            severity: severity, message: message, pointer: pointer, hint: hint))
    }

    // MARK: - Run

    private mutating func run() {
        checkDuplicates()
        for loaded in definitions.settings { checkSettings(loaded) }
        for loaded in definitions.sources { checkSource(loaded) }
        for loaded in definitions.identities { checkIdentity(loaded) }
        for loaded in definitions.traits { checkTrait(loaded) }
        for loaded in definitions.rfmModels { checkRFM(loaded) }
        for loaded in definitions.segments { checkSegment(loaded) }
        for loaded in definitions.funnels { checkFunnel(loaded) }
        for loaded in definitions.webhooks { checkWebhook(loaded) }
        checkSegmentCycles()
    }

    // MARK: - Names

    private mutating func checkDuplicates() {
        checkUniqueNames(definitions.settings, oneOnly: true)
        checkUniqueNames(definitions.sources)
        checkUniqueNames(definitions.identities, oneOnly: true)
        checkUniqueNames(definitions.traits)
        checkUniqueNames(definitions.rfmModels)
        checkUniqueNames(definitions.segments)
        checkUniqueNames(definitions.funnels)
        checkUniqueNames(definitions.webhooks)

        var keyOwners: [String: [(Loaded<SourceDefinition>, String)]] = [:]
        for loaded in definitions.sources {
            let source = loaded.definition
            for (key, pointer) in [(source.writeKey, "write_key"), (source.writeKeySha256, "write_key_sha256")] {
                if let key { keyOwners[key, default: []].append((loaded, pointer)) }
            }
        }
        for owners in keyOwners.values where owners.count > 1 {
            for (loaded, pointer) in owners {
                let others = owners.filter { $0.0.file != loaded.file }.map { "\"\($0.0.definition.name)\" (\($0.0.file))" }
                report(Place(loaded), JSONPointer([pointer]), "this write key is also the key of Source \(others.joined(separator: ", ")); a write key selects exactly one source", hint: "give each source its own key")
            }
        }
        // An admin token names one tenant: the same token in two Settings would open both.
        var tokenOwners: [String: [(Loaded<SettingsDefinition>, Int)]] = [:]
        for loaded in definitions.settings {
            for (index, token) in (loaded.definition.adminTokens ?? []).enumerated() {
                if let key = token.tokenSha256?.lowercased() ?? token.token { tokenOwners[key, default: []].append((loaded, index)) }
            }
        }
        for owners in tokenOwners.values where owners.count > 1 {
            for (loaded, index) in owners {
                let token = loaded.definition.adminTokens![index]
                let others = owners.filter { $0.0.file != loaded.file || $0.1 != index }
                    .map { "\"\($0.0.definition.adminTokens![$0.1].name)\" of tenant \($0.0.definition.tenantID) (\($0.0.file))" }
                report(Place(loaded), JSONPointer(["admin_tokens", String(index), token.tokenSha256 != nil ? "token_sha256" : "token"]),
                       "this admin token is also token \(others.joined(separator: ", ")); a token must identify one tenant and one set of scopes", hint: "give each its own token")
            }
        }
    }

    /// Names are unique per kind and tenant; Settings and Identity exist once per tenant.
    private mutating func checkUniqueNames<D: Definition>(_ all: [Loaded<D>], oneOnly: Bool = false) {
        let groups = Dictionary(grouping: all) { loaded in
            oneOnly ? loaded.definition.tenantID : loaded.definition.tenantID + "/" + loaded.definition.name
        }
        for group in groups.values where group.count > 1 {
            for loaded in group {
                let others = group.filter { $0.file != loaded.file }
                    .map { "\($0.file):\($0.location(JSONPointer(["name"])).line)" }.joined(separator: ", ")
                let message = oneOnly
                    ? "tenant \"\(loaded.definition.tenantID)\" has more than one \(D.kind.rawValue) (also \(others)); each tenant has at most one"
                    : "duplicate \(D.kind.rawValue) name \"\(loaded.definition.name)\" in tenant \"\(loaded.definition.tenantID)\" (also \(others))"
                report(Place(loaded), JSONPointer(["name"]), message, hint: oneOnly ? "merge them into one file" : "rename one of them")
            }
        }
    }

    // MARK: - Lookups

    private func named<D: Definition>(_ all: [Loaded<D>], _ name: String, tenant: String) -> Loaded<D>? {
        all.first { $0.definition.name == name && $0.definition.tenantID == tenant }
    }

    /// Reports a reference to a missing definition, suggesting a near name in
    /// the tenant or pointing out one that exists only in another tenant.
    private mutating func reportUnknown<D: Definition>(_ kind: String, _ name: String, among all: [Loaded<D>], _ place: Place, _ pointer: JSONPointer) {
        // Its own file has errors, reported there: one mistake, reported once.
        guard !definitions.unloaded.contains("\(D.kind.rawValue)/\(place.tenant)/\(name)") else { return }
        let local = all.filter { $0.definition.tenantID == place.tenant }.map(\.definition.name)
        var hint = Suggestion.closest(to: name, in: local).map { "did you mean \"\($0)\"?" }
        if hint == nil, let elsewhere = all.first(where: { $0.definition.name == name }) {
            hint = "\"\(name)\" exists in tenant \"\(elsewhere.definition.tenantID)\"; definitions cannot refer across tenants"
        }
        if hint == nil, !local.isEmpty { hint = "known: " + local.sorted().prefix(10).joined(separator: ", ") }
        report(place, pointer, "unknown \(kind) \"\(name)\"", hint: hint)
    }

    private func consentTypes(tenant: String) -> [String] {
        ConsentTypes.builtIn + (definitions.settings(for: tenant)?.consentTypes ?? [])
    }

    /// The built-in types (which ingestion keeps whether or not the Identity
    /// file lists them) and the file's own.
    private func identifierTypes(tenant: String) -> [String] {
        let declared = (definitions.identity(for: tenant)?.identifierTypes ?? []).map(\.type)
        return IdentityDefinition.defaultIdentifierTypes.map(\.type).filter { !declared.contains($0) } + declared
    }

    private mutating func checkConsentType(_ type: String, _ place: Place, _ pointer: JSONPointer) {
        let known = consentTypes(tenant: place.tenant)
        guard !known.contains(type) else { return }
        let hint = Suggestion.closest(to: type, in: known).map { "did you mean \"\($0)\"?" }
            ?? "known: \(known.joined(separator: ", ")); add custom types to Settings consent_types"
        report(place, pointer, "unknown consent type \"\(type)\"", hint: hint)
    }

    /// The tracking-plan schema of `event` in the tenant's sources, if any declares it.
    private func plannedEvent(_ event: String, tenant: String) -> (source: String, schema: JSONValue)? {
        for loaded in definitions.sources where loaded.definition.tenantID == tenant {
            if let schema = loaded.definition.trackingPlan?.events?[event] { return (loaded.definition.name, schema) }
        }
        return nil
    }

    /// Checks a property path against a tracking plan; returns the declared kind.
    private mutating func checkPlannedProperty(_ property: String, event: String, _ place: Place, _ pointer: JSONPointer) -> ValueKind {
        guard let (source, schema) = plannedEvent(event, tenant: place.tenant),
            let declared = schema["properties"]?.objectValue
        else { return .any }
        let top = String(property.split(separator: ".").first ?? Substring(property))
        guard let propertySchema = declared[top] else {
            let hint = Suggestion.closest(to: top, in: declared.keys).map { "did you mean \"\($0)\"?" }
                ?? "planned properties: " + declared.keys.joined(separator: ", ")
            report(place, pointer, "property \"\(top)\" is not in the tracking plan of \(event) (Source \"\(source)\")", hint: hint)
            return .any
        }
        guard top == property else { return .any }
        let types = propertySchema["type"]?.arrayValue?.compactMap(\.stringValue) ?? [propertySchema["type"]?.stringValue].compactMap { $0 }
        guard types.count == 1 else { return .any }
        switch types[0] {
        case "number", "integer": return .number
        case "boolean": return .boolean
        case "string": return propertySchema["format"]?.stringValue == "date-time" || propertySchema["format"]?.stringValue == "date" ? .date : .string
        default: return .any
        }
    }

    // MARK: - Conditions

    /// Checks an operator, value and unit against what the subject holds.
    private mutating func checkComparison(_ op: RuleOperator, value: JSONValue?, unit: TimeUnit?, kind: ValueKind, subject: String, _ place: Place, _ pointer: JSONPointer) {
        guard kind.allows(op) else {
            let allowed = RuleOperator.allCases.filter(kind.allows).map(\.rawValue).joined(separator: ", ")
            report(place, pointer.appending("operator"), "\"\(op.rawValue)\" does not apply to \(subject), which holds \(kind.phrase)", hint: "use one of: \(allowed)")
            return
        }
        if unit != nil && !op.isRelativeTime {
            report(place, pointer.appending("unit"), "unit applies only to within_last and not_within_last", hint: "remove unit")
        }
        let valuePointer = pointer.appending("value")
        if op.takesNoValue {
            if let value, value != .null {
                report(place, valuePointer, "\"\(op.rawValue)\" takes no value", hint: "remove value")
            }
            return
        }
        guard let value, value != .null else {
            report(place, pointer, "\"\(op.rawValue)\" needs a value", hint: "add value:")
            return
        }
        switch op {
        case .withinLast, .notWithinLast:
            if unit == nil { report(place, pointer, "\"\(op.rawValue)\" needs a unit", hint: "add unit: minutes, hours or days") }
            guard let amount = value.numberValue, amount > 0, amount.rounded() == amount, amount <= Self.longestWindow else {
                report(place, valuePointer, "\"\(op.rawValue)\" needs a positive whole number of units, at most \(Int(Self.longestWindow)), found \(value.briefDescription)")
                return
            }
        case .before, .after:
            checkDate(value, place, valuePointer)
        case .between:
            checkBetween(value, kind: kind, subject: subject, place, valuePointer)
        case .in, .notIn:
            guard let elements = value.arrayValue, !elements.isEmpty else {
                report(place, valuePointer, "\"\(op.rawValue)\" needs a non-empty list, found \(value.briefDescription)", hint: "write value: [a, b]")
                return
            }
            for (index, element) in elements.enumerated() {
                checkFits(element, kind: kind, subject: subject, place, valuePointer.appending(index))
            }
        case .greaterThan, .lessThan, .greaterOrEqual, .lessOrEqual:
            if value.numberValue == nil {
                report(place, valuePointer, "\"\(op.rawValue)\" compares numbers; \(value.briefDescription) is not a number")
            }
        case .contains:
            if value.stringValue == nil {
                report(place, valuePointer, "\"contains\" looks for text; \(value.briefDescription) is not a string", hint: "quote the value")
            }
        case .equals, .notEquals:
            checkFits(value, kind: kind, subject: subject, place, valuePointer)
        case .exists, .notExists:
            break
        }
    }

    private mutating func checkDate(_ value: JSONValue, _ place: Place, _ pointer: JSONPointer) {
        guard let text = value.stringValue, Instant.parse(text) != nil else {
            report(place, pointer, "expected a date, found \(value.briefDescription)", hint: "write a date like \"2024-01-15\" or \"2024-01-15T14:32:18Z\"")
            return
        }
    }

    private mutating func checkBetween(_ value: JSONValue, kind: ValueKind, subject: String, _ place: Place, _ pointer: JSONPointer) {
        guard let bounds = value.arrayValue, bounds.count == 2 else {
            report(place, pointer, "\"between\" needs two values [low, high], found \(value.briefDescription)", hint: "write value: [low, high]")
            return
        }
        let numbers = bounds.compactMap(\.numberValue)
        let dates = bounds.compactMap { $0.stringValue.flatMap(Instant.parse) }
        let ordered: [Double]
        if numbers.count == 2, kind != .date {
            ordered = numbers
        } else if dates.count == 2, kind == .date || kind == .any {
            ordered = dates
        } else {
            report(place, pointer, "\"between\" on \(subject) needs two \(kind == .date ? "dates" : "numbers"), found \(bounds.map(\.briefDescription).joined(separator: " and "))")
            return
        }
        if ordered[0] > ordered[1] {
            report(place, pointer, "\"between\" bounds are reversed: \(bounds[0].briefDescription) is greater than \(bounds[1].briefDescription)", hint: "write [\(bounds[1].jsonText()), \(bounds[0].jsonText())]")
        }
    }

    /// Checks one compared value against what the subject holds.
    private mutating func checkFits(_ value: JSONValue, kind: ValueKind, subject: String, _ place: Place, _ pointer: JSONPointer) {
        switch (kind, value) {
        case (_, .array), (_, .object):
            report(place, pointer, "compare \(subject) with a single value, not \(value.briefDescription)", hint: "use in/not_in for a list")
        case (.any, _), (.number, .number), (.string, .string), (.identifierValue, .string), (.boolean, .bool):
            break
        case (.date, .string):
            checkDate(value, place, pointer)
        case (.enumeration(let allowed), .string(let text)) where allowed.contains(text):
            break
        case (.enumeration(let allowed), _):
            let hint = value.stringValue.flatMap { Suggestion.closest(to: $0, in: allowed) }.map { "did you mean \"\($0)\"?" }
            report(place, pointer, "\(value.briefDescription) never matches \(subject), which is \(kind.phrase)", hint: hint)
        case (.segmentName, .string(let name)):
            let segments = definitions.segments
            if named(segments, name, tenant: place.tenant) == nil {
                reportUnknown("segment", name, among: segments, place, pointer)
            } else {
                segmentEdges[place.tenant + "/" + (place.document.root["name"]?.stringValue ?? ""), default: []]
                    .append((place.tenant + "/" + name, place.file, pointer, place.document.location(of: pointer)))
            }
        default:
            report(place, pointer, "\(subject) holds \(kind.phrase), so \(value.briefDescription) can never match")
        }
    }

    private mutating func checkPropertyConditions(_ conditions: [PropertyCondition]?, event: String?, _ place: Place, _ pointer: JSONPointer) {
        for (index, condition) in (conditions ?? []).enumerated() {
            let conditionPointer = pointer.appending(index)
            var kind = ValueKind.any
            if let event {
                kind = checkPlannedProperty(condition.property, event: event, place, conditionPointer.appending("property"))
            }
            checkComparison(condition.operator, value: condition.value, unit: condition.unit, kind: kind, subject: "property \"\(condition.property)\"", place, conditionPointer)
        }
    }

    private mutating func checkRuleGroup(_ group: RuleGroup, _ place: Place, _ pointer: JSONPointer) {
        if (group.conditions ?? []).isEmpty && (group.groups ?? []).isEmpty {
            report(place, pointer, "an empty rule group", hint: "add conditions or groups")
        }
        for (index, condition) in (group.conditions ?? []).enumerated() {
            let conditionPointer = pointer.appending("conditions").appending(index)
            switch condition {
            case .field(let field): checkFieldCondition(field, place, conditionPointer)
            case .event(let event): checkEventCondition(event, place, conditionPointer)
            }
        }
        for (index, nested) in (group.groups ?? []).enumerated() {
            checkRuleGroup(nested, place, pointer.appending("groups").appending(index))
        }
    }

    private mutating func checkFieldCondition(_ condition: FieldCondition, _ place: Place, _ pointer: JSONPointer) {
        let fieldPointer = pointer.appending("field")
        guard let field = FieldPath(parsing: condition.field) else {
            report(place, fieldPointer, "unknown field \"\(condition.field)\"", hint: FieldPath.suggestion(for: condition.field).map { "did you mean \"\($0)\"?" })
            return
        }
        var kind: ValueKind
        switch field {
        case .lifecycleStage: kind = .enumeration(FieldPath.lifecycleStages)
        case .externalID: kind = .string
        case .firstSeenAt, .lastSeenAt: kind = .date
        case .totalEvents, .totalSessions, .totalPurchases, .totalRevenue: kind = .number
        case .profileData: kind = .any
        case .computedTrait(let name):
            if let trait = named(definitions.traits, name, tenant: place.tenant) {
                kind = valueKind(of: trait.definition)
            } else {
                reportUnknown("trait", name, among: definitions.traits, place, fieldPointer)
                return
            }
        case .rfm(let model, let part):
            guard let rfm = named(definitions.rfmModels, model, tenant: place.tenant) else {
                reportUnknown("RFM model", model, among: definitions.rfmModels, place, fieldPointer)
                return
            }
            // Scores no rule covers are named "Other": a rule may select them too.
            kind = part == .segment ? .enumeration((rfm.definition.segments ?? RFMDefinition.defaultSegments).map(\.name) + [RFMDefinition.unclassifiedSegment]) : .number
        case .identifier(let type):
            let known = identifierTypes(tenant: place.tenant)
            guard known.contains(type) else {
                let hint = Suggestion.closest(to: type, in: known).map { "did you mean \"\($0)\"?" } ?? "known: \(known.joined(separator: ", "))"
                report(place, fieldPointer, "unknown identifier type \"\(type)\"", hint: hint)
                return
            }
            kind = .identifierValue
        case .consent(let type):
            let before = diagnostics.count
            checkConsentType(type, place, fieldPointer)
            if diagnostics.count > before { return }
            kind = .boolean
        case .segment: kind = .segmentName
        }
        checkComparison(condition.operator, value: condition.value, unit: condition.unit, kind: kind, subject: condition.field, place, pointer)
    }

    /// The longest relative window of a field condition, in any unit (100 years
    /// in minutes, as the schemas' windows), and the largest event count: past
    /// them instants and counts would overflow.
    static let longestWindow: Double = 52_560_000
    static let largestCount: Double = 1_000_000_000_000

    private mutating func checkEventCondition(_ condition: EventCondition, _ place: Place, _ pointer: JSONPointer) {
        checkPropertyConditions(condition.where, event: condition.eventName, place, pointer.appending("where"))
        if let source = condition.source, named(definitions.sources, source, tenant: place.tenant) == nil {
            reportUnknown("source", source, among: definitions.sources, place, pointer.appending("source"))
        }
        if let count = condition.count {
            let valuePointer = pointer.appending("count").appending("value")
            if count.operator == .between {
                let bounds = count.value.arrayValue?.compactMap(\.numberValue) ?? []
                if bounds.count != 2 || bounds.contains(where: { $0 < 0 || $0.rounded() != $0 || $0 > Self.largestCount }) || count.value.arrayValue?.count != 2 {
                    report(place, valuePointer, "a count between needs two whole numbers [low, high] from 0 to \(Int(Self.largestCount)), found \(count.value.briefDescription)")
                } else if bounds[0] > bounds[1] {
                    report(place, valuePointer, "\"between\" bounds are reversed", hint: "write [\(JSONValue.number(bounds[1]).jsonText()), \(JSONValue.number(bounds[0]).jsonText())]")
                }
            } else if let number = count.value.numberValue, number >= 0, number.rounded() == number, number <= Self.largestCount {
                if condition.operator == .notWithinLast {
                    report(place, pointer.appending("count"), "count applies only to within_last", hint: "remove count, or use within_last")
                }
            } else {
                report(place, valuePointer, "an event count is a whole number from 0 to \(Int(Self.largestCount)), found \(count.value.briefDescription)")
            }
        }
    }

    /// What a computed trait holds, for type checks of conditions on it.
    private func valueKind(of trait: TraitDefinition) -> ValueKind {
        switch trait.type {
        case .count, .uniqueCount, .sum, .average: .number
        case .exists: .boolean
        case .first, .last: trait.property == nil ? .date : .any
        case .min, .max: .any
        }
    }

    // MARK: - Schedules and secrets

    /// 100 years, the longest `every:` (longer ones overflowed dates).
    static let longestInterval = 36_500 * 86_400_000
    /// 2026-01-01T00:00:00Z.
    static let cronReference: Int64 = 1_767_225_600_000

    private mutating func checkSchedule(_ schedule: Schedule?, _ place: Place, _ pointer: JSONPointer) {
        guard let schedule else { return }
        if let every = schedule.every {
            let span = TimeSpan(parsing: every)
            if let span, span.milliseconds < 1_000 {
                report(place, pointer.appending("every"), "schedules run at most once a second, found \(every)", hint: "use 1s or more")
            } else if (span?.milliseconds ?? .max) > Self.longestInterval {
                report(place, pointer.appending("every"), "\(every) is longer than 100 years", hint: "use at most 36500d")
            }
        }
        if let cron = schedule.cron {
            do {
                // From a fixed instant, so the answer does not depend on when validation runs.
                if try CronExpression(parsing: cron).next(after: Self.cronReference) == nil {
                    report(place, pointer.appending("cron"), "\"\(cron)\" never fires: no such day exists", hint: "check the day of month against the month (February has 28 or 29 days)")
                }
            } catch {
                report(place, pointer.appending("cron"), "invalid cron expression: \(error.message)")
            }
        }
    }

    /// `${env:NAME}` references whose variable is unset: a warning here, an error at daemon start.
    private mutating func checkSecret(_ value: String?, _ place: Place, _ pointer: JSONPointer) {
        guard let value, let name = Self.environmentReference(value) else { return }
        if environment[name]?.isEmpty ?? true {
            report(place, pointer, "environment variable \(name) is not set (or empty); the daemon will refuse to start without it", hint: "export \(name)=...", severity: .warning)
        }
    }

    /// `NAME` from `${env:NAME}`, or nil for anything else.
    static func environmentReference(_ value: String) -> String? {
        guard value.hasPrefix("${env:"), value.hasSuffix("}") else { return nil }
        return String(value.dropFirst(6).dropLast())
    }

    // MARK: - Kinds

    private mutating func checkSettings(_ loaded: Loaded<SettingsDefinition>) {
        let place = Place(loaded)
        let settings = loaded.definition
        if settings.tenantID != Tenant.defaultID {
            for (value, key) in [(settings.store != nil, "store"), (settings.listen != nil, "listen")] where value {
                report(place, JSONPointer([key]), "\(key) is daemon-wide; only the default tenant's Settings may set it", hint: "move it to the Settings without tenant:", atKey: true)
            }
        }
        if let listen = settings.listen, let port = listen.split(separator: ":").last.flatMap({ Int($0) }), !(1...65535).contains(port) {
            report(place, JSONPointer(["listen"]), "port \(port) is out of range (1-65535)")
        }
        var tokenNames: Set<String> = []
        for (index, token) in (settings.adminTokens ?? []).enumerated() {
            let pointer = JSONPointer(["admin_tokens", String(index)])
            if !tokenNames.insert(token.name).inserted {
                report(place, pointer.appending("name"), "duplicate admin token name \"\(token.name)\"", hint: "rename one of them")
            }
            checkSecret(token.token, place, pointer.appending("token"))
        }
        for (index, type) in (settings.consentTypes ?? []).enumerated() where ConsentTypes.builtIn.contains(type) {
            report(place, JSONPointer(["consent_types", String(index)]), "\"\(type)\" is a built-in consent type", hint: "remove it", severity: .warning)
        }
        checkSchedule(settings.defaultSchedule, place, JSONPointer(["default_schedule"]))
    }

    private mutating func checkSource(_ loaded: Loaded<SourceDefinition>) {
        let place = Place(loaded)
        let source = loaded.definition
        checkSecret(source.writeKey, place, JSONPointer(["write_key"]))
        if let columns = source.csv?.columns {
            let identifying = columns.values.contains { target in
                ["userId", "anonymousId", "traits.email", "traits.phone"].contains(target) || target.hasPrefix("context.externalIds.")
            }
            if !identifying {
                report(place, JSONPointer(["csv", "columns"]), "no column maps to an identifier, so imported rows cannot be matched to profiles", hint: "map a column to userId, anonymousId, traits.email, traits.phone or context.externalIds.<type>")
            }
            var targets: [String: String] = [:]
            for column in columns.keys.sorted() {
                let target = columns[column]!
                if let other = targets[target] {
                    report(place, JSONPointer(["csv", "columns", column]), "columns \"\(other)\" and \"\(column)\" both map to \(target)", hint: "map each target once")
                }
                targets[target] = column
            }
        } else if source.type == .crmImport {
            report(place, .root, "a crm_import source needs a csv column mapping", hint: "add csv: {columns: {...}}")
        }
        for (event, schema) in source.trackingPlan?.events ?? [:] {
            let pointer = JSONPointer(["tracking_plan", "events", event])
            for problem in TrackingPlanSchemaCheck.problems(in: schema) {
                report(place, JSONPointer(pointer.tokens + problem.pointer.tokens), "the tracking plan of \(event): \(problem.message)", hint: problem.hint, severity: problem.isWarning ? .warning : .error)
            }
        }
    }

    private mutating func checkIdentity(_ loaded: Loaded<IdentityDefinition>) {
        let place = Place(loaded)
        var seen: Set<String> = []
        for (index, type) in (loaded.definition.identifierTypes ?? []).enumerated() where !seen.insert(type.type).inserted {
            report(place, JSONPointer(["identifier_types", String(index), "type"]), "identifier type \"\(type.type)\" is listed twice", hint: "keep one entry")
        }
        for (index, pattern) in (loaded.definition.blockedPatterns ?? []).enumerated() {
            do {
                _ = try NSRegularExpression(pattern: pattern)
            } catch {
                report(place, JSONPointer(["blocked_patterns", String(index)]), "\"\(pattern)\" is not a valid regular expression")
                continue
            }
            if let group = PatternSafety.nestedRepetition(in: pattern) {
                report(place, JSONPointer(["blocked_patterns", String(index)]),
                       "\"\(pattern)\" repeats a group that itself repeats or alternates (\(group)): matching it can take exponential time on some values, and it runs on every identifier",
                       hint: "repeat only single characters or classes, e.g. ^(a+)+$ as ^a+$ and ^(a|aa)+$ as ^a+$")
            }
        }
    }

    private mutating func checkTrait(_ loaded: Loaded<TraitDefinition>) {
        let place = Place(loaded)
        let trait = loaded.definition
        if let property = trait.property {
            let kind = checkPlannedProperty(property, event: trait.event, place, JSONPointer(["property"]))
            if [.sum, .average].contains(trait.type), kind != .any, kind != .number {
                report(place, JSONPointer(["property"]), "\(trait.type.rawValue) needs a numeric property; \"\(property)\" holds \(kind.phrase) in the tracking plan")
            }
            if [.count, .exists].contains(trait.type) {
                report(place, JSONPointer(["property"]), "\(trait.type.rawValue) ignores property", hint: "remove it, or filter with where: [{property: \(property), operator: exists}]", severity: .warning)
            }
        }
        checkPropertyConditions(trait.where, event: trait.event, place, JSONPointer(["where"]))
        for (index, source) in (trait.sources ?? []).enumerated() where named(definitions.sources, source, tenant: place.tenant) == nil {
            reportUnknown("source", source, among: definitions.sources, place, JSONPointer(["sources", String(index)]))
        }
        checkSchedule(trait.schedule, place, JSONPointer(["schedule"]))
    }

    private mutating func checkRFM(_ loaded: Loaded<RFMDefinition>) {
        let place = Place(loaded)
        let rfm = loaded.definition
        var names: Set<String> = []
        for (index, segment) in (rfm.segments ?? []).enumerated() {
            let pointer = JSONPointer(["segments", String(index)])
            if !names.insert(segment.name).inserted {
                report(place, pointer.appending("name"), "RFM segment \"\(segment.name)\" is listed twice; the first match wins, so this one never applies", hint: "remove or rename it")
            }
            for (range, key) in [(segment.r, "r"), (segment.f, "f"), (segment.m, "m")] where range.low > range.high {
                report(place, pointer.appending(key), "the range \(range.low)-\(range.high) is reversed", hint: "write \(range.high)-\(range.low)")
            }
        }
        if let thresholds = rfm.thresholds {
            if rfm.quintileScoring ?? true {
                report(place, JSONPointer(["thresholds"]), "thresholds are ignored while quintile_scoring is true", hint: "set quintile_scoring: false or remove thresholds", severity: .warning, atKey: true)
            }
            let series: [(String, [Double])] = [
                ("recency_days", thresholds.recencyDays.map(Double.init)),
                ("frequency", thresholds.frequency.map(Double.init)),
                ("monetary", thresholds.monetary),
            ]
            for (key, values) in series where zip(values, values.dropFirst()).contains(where: { $0 >= $1 }) {
                report(place, JSONPointer(["thresholds", key]), "\(key) cut points must be strictly ascending, found \(values.map { JSONValue.number($0).jsonText() }.joined(separator: ", "))")
            }
        }
        if let property = rfm.monetaryProperty {
            _ = checkPlannedProperty(property, event: rfm.frequencyEvent ?? "Purchase", place, JSONPointer(["monetary_property"]))
        }
        checkSchedule(rfm.schedule, place, JSONPointer(["schedule"]))
    }

    private mutating func checkSegment(_ loaded: Loaded<SegmentDefinition>) {
        let place = Place(loaded)
        let segment = loaded.definition
        if segment.effectiveType == .static {
            if segment.rules != nil {
                report(place, JSONPointer(["rules"]), "a static segment has no rules: its members are managed by API and import", hint: "remove rules, or use segment_type: dynamic", atKey: true)
            }
            if segment.schedule != nil || segment.refreshIntervalHours != nil {
                report(place, JSONPointer([segment.schedule != nil ? "schedule" : "refresh_interval_hours"]), "a static segment is never evaluated on a schedule", hint: "remove it", severity: .warning, atKey: true)
            }
        }
        if segment.schedule != nil && segment.refreshIntervalHours != nil {
            report(place, JSONPointer(["refresh_interval_hours"]), "give either schedule or refresh_interval_hours, not both", hint: "keep schedule", atKey: true)
        }
        if let rules = segment.rules { checkRuleGroup(rules, place, JSONPointer(["rules"])) }
        checkSchedule(segment.schedule, place, JSONPointer(["schedule"]))
    }

    private mutating func checkFunnel(_ loaded: Loaded<FunnelDefinition>) {
        let place = Place(loaded)
        let funnel = loaded.definition
        var stepIndex: [String: Int] = [:]
        for (index, step) in funnel.steps.enumerated() {
            let pointer = JSONPointer(["steps", String(index)])
            if stepIndex[step.stepName] != nil {
                report(place, pointer.appending("step_name"), "step name \"\(step.stepName)\" is used twice", hint: "give each step its own name")
            } else {
                stepIndex[step.stepName] = index
            }
            checkPropertyConditions(step.conditions, event: step.eventName, place, pointer.appending("conditions"))
        }
        for (index, exclusion) in (funnel.exclusions ?? []).enumerated() {
            let pointer = JSONPointer(["exclusions", String(index)])
            var positions: [Int] = []
            for (step, key) in [(exclusion.afterStep, "after_step"), (exclusion.beforeStep, "before_step")] {
                guard let step else { continue }
                if let position = stepIndex[step] {
                    positions.append(position)
                } else {
                    let hint = Suggestion.closest(to: step, in: stepIndex.keys).map { "did you mean \"\($0)\"?" }
                        ?? "steps: " + funnel.steps.map(\.stepName).joined(separator: ", ")
                    report(place, pointer.appending(key), "no step is named \"\(step)\"", hint: hint)
                }
            }
            if positions.count == 2, positions[0] >= positions[1] {
                report(place, pointer, "after_step must come before before_step in the funnel", hint: "swap them")
            }
            checkPropertyConditions(exclusion.conditions, event: exclusion.eventName, place, pointer.appending("conditions"))
        }
        if let property = funnel.breakdownProperty, let first = funnel.steps.first {
            _ = checkPlannedProperty(property, event: first.eventName, place, JSONPointer(["breakdown_property"]))
        }
        if let segment = funnel.segment, named(definitions.segments, segment, tenant: place.tenant) == nil {
            reportUnknown("segment", segment, among: definitions.segments, place, JSONPointer(["segment"]))
        }
        checkSchedule(funnel.schedule, place, JSONPointer(["schedule"]))
    }

    private mutating func checkWebhook(_ loaded: Loaded<WebhookDefinition>) {
        let place = Place(loaded)
        let webhook = loaded.definition
        checkSecret(webhook.secret, place, JSONPointer(["secret"]))
        for (header, value) in (webhook.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            if WebhookDefinition.protocolHeaders.contains(header.lowercased()) {
                report(place, JSONPointer(["headers", header]), "header \(header) is set by the sender itself (Standard Webhooks signing and the JSON body)", hint: "remove it from headers", atKey: true)
                continue
            }
            for name in WebhookDefinition.environmentNames(in: value) where environment[name]?.isEmpty ?? true {
                report(place, JSONPointer(["headers", header]), "environment variable \(name) is not set (or empty); the daemon will refuse to start without it", hint: "export \(name)=...", severity: .warning)
            }
        }
        for (index, segment) in (webhook.segments ?? []).enumerated() where named(definitions.segments, segment, tenant: place.tenant) == nil {
            reportUnknown("segment", segment, among: definitions.segments, place, JSONPointer(["segments", String(index)]))
        }
        if let consent = webhook.requiresConsent {
            checkConsentType(consent, place, JSONPointer(["requires_consent"]))
        }
        if let url = URL(string: webhook.url), url.scheme == "http", let host = url.host, !Self.isLoopback(host) {
            report(place, JSONPointer(["url"]), "deliveries to \(host) over http:// are not encrypted", hint: "use https://", severity: .warning)
        }
        if let connect = webhook.timeout?.connect.flatMap(TimeSpan.init(parsing:)),
            let total = webhook.timeout?.total.flatMap(TimeSpan.init(parsing:)), connect.milliseconds > total.milliseconds
        {
            report(place, JSONPointer(["timeout", "connect"]), "the connect timeout is longer than the total timeout", hint: "make connect at most total")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "[::1]" || host == "::1"
    }

    // MARK: - Cycles

    private mutating func checkSegmentCycles() {
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var reported: Set<Set<String>> = []
        var stack: [String] = []

        func visit(_ node: String, _ checker: inout SemanticChecker) {
            marks[node] = .visiting
            stack.append(node)
            for edge in checker.segmentEdges[node] ?? [] {
                switch marks[edge.target] {
                case .visiting:
                    let start = stack.firstIndex(of: edge.target) ?? 0
                    let cycle = Array(stack[start...])
                    if reported.insert(Set(cycle)).inserted {
                        let names = (cycle + [edge.target]).map { String($0.split(separator: "/", maxSplits: 1).last ?? "") }
                        checker.diagnostics.append(Diagnostic(
                            file: edge.file, location: edge.location,
                            message: "segment reference cycle: " + names.joined(separator: " → "),
                            pointer: edge.pointer, hint: "a segment cannot depend on itself; remove one of the references"))
                    }
                case .done:
                    break
                case nil:
                    visit(edge.target, &checker)
                }
            }
            stack.removeLast()
            marks[node] = .done
        }

        for node in segmentEdges.keys.sorted() where marks[node] == nil {
            visit(node, &self)
        }
    }
}
