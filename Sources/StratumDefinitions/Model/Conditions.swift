import StratumJSON

/// Comparison operators of the rule language (DESIGN.md, Rule semantics).
public enum RuleOperator: String, Sendable, Codable, CaseIterable {
    case equals, notEquals = "not_equals", contains
    case greaterThan = "greater_than", lessThan = "less_than"
    case greaterOrEqual = "greater_or_equal", lessOrEqual = "less_or_equal"
    case between
    case `in`, notIn = "not_in"
    case exists, notExists = "not_exists"
    case withinLast = "within_last", notWithinLast = "not_within_last"
    case before, after

    /// Operators that take no value.
    public var takesNoValue: Bool { self == .exists || self == .notExists }
    /// Operators comparing numbers by order.
    public var isOrdering: Bool { [.greaterThan, .lessThan, .greaterOrEqual, .lessOrEqual].contains(self) }
    /// Operators on instants relative to the evaluation time.
    public var isRelativeTime: Bool { self == .withinLast || self == .notWithinLast }
    /// Operators comparing against an absolute date.
    public var isAbsoluteTime: Bool { self == .before || self == .after }
}

/// A condition on one event property: `{property, operator, value, unit}`.
public struct PropertyCondition: Sendable, Codable, Hashable {
    public var property: String
    public var `operator`: RuleOperator
    public var value: JSONValue?
    public var unit: TimeUnit?

    public init(property: String, operator: RuleOperator, value: JSONValue? = nil, unit: TimeUnit? = nil) {
        self.property = property
        self.operator = `operator`
        self.value = value
        self.unit = unit
    }
}

/// `and` or `or`.
public enum RuleLogic: String, Sendable, Codable {
    case and, or
}

/// A group of conditions and nested groups combined with one logic.
public struct RuleGroup: Sendable, Codable, Hashable {
    public var logic: RuleLogic?
    public var conditions: [Condition]?
    public var groups: [RuleGroup]?

    public init(logic: RuleLogic? = nil, conditions: [Condition]? = nil, groups: [RuleGroup]? = nil) {
        self.logic = logic
        self.conditions = conditions
        self.groups = groups
    }

    public var effectiveLogic: RuleLogic { logic ?? .and }
}

/// A segment condition: on a profile field, or on the profile's events.
public enum Condition: Sendable, Codable, Hashable {
    case field(FieldCondition)
    case event(EventCondition)

    private enum CodingKeys: String, CodingKey { case field }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if try container.decode(String.self, forKey: .field) == "event" {
            self = .event(try EventCondition(from: decoder))
        } else {
            self = .field(try FieldCondition(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .field(let condition): try condition.encode(to: encoder)
        case .event(let condition): try condition.encode(to: encoder)
        }
    }
}

/// `{field, operator, value, unit}` on a profile field.
public struct FieldCondition: Sendable, Codable, Hashable {
    public var field: String
    public var `operator`: RuleOperator
    public var value: JSONValue?
    public var unit: TimeUnit?

    public init(field: String, operator: RuleOperator, value: JSONValue? = nil, unit: TimeUnit? = nil) {
        self.field = field
        self.operator = `operator`
        self.value = value
        self.unit = unit
    }
}

/// "performed EVENT [where ...] [count ...] within the last N units".
public struct EventCondition: Sendable, Codable, Hashable {
    public var eventName: String
    public var `operator`: RuleOperator
    public var value: Int
    public var unit: TimeUnit
    public var `where`: [PropertyCondition]?
    public var count: CountCondition?
    public var source: String?

    public init(eventName: String, operator: RuleOperator, value: Int, unit: TimeUnit, where: [PropertyCondition]? = nil, count: CountCondition? = nil, source: String? = nil) {
        self.eventName = eventName
        self.operator = `operator`
        self.value = value
        self.unit = unit
        self.where = `where`
        self.count = count
        self.source = source
    }
}

/// How many matching events an event condition needs.
public struct CountCondition: Sendable, Codable, Hashable {
    public var `operator`: RuleOperator
    public var value: JSONValue

    public init(operator: RuleOperator, value: JSONValue) {
        self.operator = `operator`
        self.value = value
    }
}
