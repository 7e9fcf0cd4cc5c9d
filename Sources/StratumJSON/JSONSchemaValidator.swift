import Foundation

/// A JSON Schema draft 2020-12 validator over `JSONValue`.
///
/// Supports every assertion and applicator of the core and validation
/// vocabularies, `$id`/`$anchor`/`$ref` across the registered documents, and
/// `unevaluatedProperties`/`unevaluatedItems`. `format` and the content
/// keywords are annotations only, as the specification's default says.
/// `$dynamicRef` resolves like `$ref`. The validator is immutable and safe to
/// share between tasks.
public struct JSONSchemaValidator: Sendable {
    /// A problem with the schemas themselves (not with an instance).
    public struct SchemaError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    fileprivate struct Located: Sendable {
        var schema: JSONValue
        var base: String
    }

    private var resources: [String: Located] = [:]
    private var anchors: [String: Located] = [:]
    private let regexes = RegexCache()

    /// Nested schema applications deeper than this report an error instead of
    /// recursing further (a `$ref` loop that consumes no input).
    public static let maximumDepth = 200

    public init() {}

    /// Registers a schema document under `uri` (its `$id`, if any, is also
    /// registered), indexing every embedded `$id` and `$anchor`.
    public mutating func register(_ schema: JSONValue, uri: String) {
        let base = URIReference.stripFragment(uri)
        let ownBase = schema["$id"]?.stringValue.map { URIReference.stripFragment(URIReference.resolve($0, against: base)) } ?? base
        resources[base] = Located(schema: schema, base: ownBase)
        index(schema, base: base)
    }

    private mutating func index(_ schema: JSONValue, base: String) {
        guard case .object(let object) = schema else { return }
        var base = base
        if let id = object["$id"]?.stringValue {
            base = URIReference.stripFragment(URIReference.resolve(id, against: base))
            resources[base] = Located(schema: schema, base: base)
        }
        for keyword in ["$anchor", "$dynamicAnchor"] {
            if let anchor = object[keyword]?.stringValue {
                anchors[base + "#" + anchor] = Located(schema: schema, base: base)
            }
        }
        for (keyword, value) in object {
            switch keyword {
            case "$defs", "properties", "patternProperties", "dependentSchemas":
                for member in value.objectValue ?? JSONObject() { index(member.value, base: base) }
            case "allOf", "anyOf", "oneOf", "prefixItems":
                for element in value.arrayValue ?? [] { index(element, base: base) }
            case "items", "contains", "additionalProperties", "propertyNames", "not", "if", "then", "else",
                "unevaluatedItems", "unevaluatedProperties", "contentSchema":
                index(value, base: base)
            default:
                break
            }
        }
    }

    /// Validates `instance` against the schema registered as (or reachable by) `uri`.
    public func validate(_ instance: JSONValue, against uri: String) -> [SchemaViolation] {
        guard let located = resolve(uri, from: "") else {
            return [SchemaViolation(instancePath: .root, keyword: "$ref", message: "schema \(uri) is not registered")]
        }
        var run = Run(validator: self)
        _ = run.apply(located.schema, to: instance, at: .root, base: located.base, depth: 0, resolvedBase: true)
        return run.violations
    }

    /// Validates `instance` against a schema value directly (its base is `uri`).
    public func validate(_ instance: JSONValue, schema: JSONValue, uri: String = "urn:stratum:inline") -> [SchemaViolation] {
        var copy = self
        copy.register(schema, uri: uri)
        var run = Run(validator: copy)
        _ = run.apply(schema, to: instance, at: .root, base: uri, depth: 0)
        return run.violations
    }

    fileprivate func resolve(_ reference: String, from base: String) -> Located? {
        let target = URIReference.resolve(reference, against: base)
        let document = URIReference.stripFragment(target)
        let fragment = target.count > document.count ? String(target.dropFirst(document.count + 1)) : ""
        if fragment.isEmpty || fragment.hasPrefix("/") {
            guard let resource = resources[document] else { return nil }
            let decoded = fragment.removingPercentEncoding ?? fragment
            guard let pointer = JSONPointer(parsing: decoded) else { return nil }
            var current = resource.schema
            var currentBase = resource.base
            for token in pointer.tokens {
                guard let next = current.child(token) else { return nil }
                current = next
                if let id = current["$id"]?.stringValue {
                    currentBase = URIReference.stripFragment(URIReference.resolve(id, against: currentBase))
                }
            }
            return Located(schema: current, base: currentBase)
        }
        return anchors[target]
    }

    fileprivate func regex(_ pattern: String) -> NSRegularExpression? { regexes.regex(pattern) }

    /// Whether `pattern` (ECMA-262, as JSON Schema's `pattern`) compiles.
    public static func compiles(pattern: String) -> Bool {
        (try? NSRegularExpression(pattern: RegexCache.icuPattern(ecma: pattern))) != nil
    }
}

/// What a successful schema application evaluated, for `unevaluated*`.
private struct Evaluated {
    var properties: Set<String> = []
    var allItems = false
    var items: Set<Int> = []

    mutating func merge(_ other: Evaluated) {
        properties.formUnion(other.properties)
        allItems = allItems || other.allItems
        items.formUnion(other.items)
    }
}

private struct Run {
    let validator: JSONSchemaValidator
    var violations: [SchemaViolation] = []

    init(validator: JSONSchemaValidator) { self.validator = validator }

    /// Applies `schema` to `instance`, appending violations. Returns what was
    /// evaluated when the application succeeded, nil when it failed.
    /// `resolvedBase` says `base` already accounts for this schema's own `$id`
    /// (true for schemas reached through a reference).
    mutating func apply(_ schema: JSONValue, to instance: JSONValue, at path: JSONPointer, base: String, depth: Int, resolvedBase: Bool = false) -> Evaluated? {
        let before = violations.count
        switch schema {
        case .bool(true): return Evaluated()
        case .bool(false):
            violations.append(SchemaViolation(instancePath: path, keyword: "false", message: "no value is allowed here"))
            return nil
        case .object(let object):
            guard depth < JSONSchemaValidator.maximumDepth else {
                violations.append(SchemaViolation(instancePath: path, keyword: "$ref", message: "schema nesting is too deep (a $ref loop?)"))
                return nil
            }
            var base = base
            if !resolvedBase, let id = object["$id"]?.stringValue {
                base = URIReference.stripFragment(URIReference.resolve(id, against: base))
            }
            var evaluated = Evaluated()
            applyKeywords(object, to: instance, at: path, base: base, depth: depth, evaluated: &evaluated)
            return violations.count == before ? evaluated : nil
        default:
            return Evaluated()
        }
    }

    /// Applies a subschema in isolation: its violations are returned, not recorded.
    mutating func trial(_ schema: JSONValue, to instance: JSONValue, at path: JSONPointer, base: String, depth: Int) -> (Evaluated?, [SchemaViolation]) {
        var nested = Run(validator: validator)
        let result = nested.apply(schema, to: instance, at: path, base: base, depth: depth)
        return (result, nested.violations)
    }

    private mutating func fail(_ path: JSONPointer, _ keyword: String, _ message: String, hint: String? = nil, aboutKey: Bool = false) {
        violations.append(SchemaViolation(instancePath: path, isAboutKey: aboutKey, keyword: keyword, message: message, hint: hint))
    }

    // swiftlint:disable:next function_body_length cyclomatic_complexity
    private mutating func applyKeywords(_ schema: JSONObject, to instance: JSONValue, at path: JSONPointer, base: String, depth: Int, evaluated: inout Evaluated) {
        let next = depth + 1
        for keyword in ["$ref", "$dynamicRef"] {
            guard let reference = schema[keyword]?.stringValue else { continue }
            if let target = validator.resolve(reference, from: base) {
                if let result = apply(target.schema, to: instance, at: path, base: target.base, depth: next, resolvedBase: true) {
                    evaluated.merge(result)
                }
            } else {
                fail(path, keyword, "schema error: cannot resolve \(keyword) \"\(reference)\"")
            }
        }

        if let type = schema["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            if !allowed.contains(where: { Self.matches(type: $0, instance) }) {
                fail(path, "type", "expected \(allowed.map(Self.typePhrase).joined(separator: " or ")), found \(Self.found(instance))")
            }
        }
        if let options = schema["enum"]?.arrayValue, !options.contains(instance) {
            let listed = options.prefix(20).map(\.briefDescription).joined(separator: ", ") + (options.count > 20 ? ", ..." : "")
            var hint: String?
            if let word = instance.stringValue,
                let guess = Suggestion.closest(to: word, in: options.compactMap(\.stringValue))
            {
                hint = "did you mean \"\(guess)\"?"
            }
            fail(path, "enum", "\(instance.briefDescription) is not allowed here; expected one of: \(listed)", hint: hint)
        }
        if let constant = schema["const"], constant != instance {
            fail(path, "const", "expected \(constant.briefDescription), found \(instance.briefDescription)")
        }

        switch instance {
        case .number(let value): applyNumeric(schema, value, at: path)
        case .string(let value): applyString(schema, value, at: path)
        case .array(let elements): applyArray(schema, elements, at: path, base: base, depth: next, evaluated: &evaluated)
        case .object(let object): applyObject(schema, object, at: path, base: base, depth: next, evaluated: &evaluated)
        default: break
        }

        if let all = schema["allOf"]?.arrayValue {
            for subschema in all {
                if let result = apply(subschema, to: instance, at: path, base: base, depth: next) { evaluated.merge(result) }
            }
        }
        if let any = schema["anyOf"]?.arrayValue {
            var failures: [[SchemaViolation]] = []
            var matched = false
            for subschema in any {
                let (result, branchViolations) = trial(subschema, to: instance, at: path, base: base, depth: next)
                if let result {
                    matched = true
                    evaluated.merge(result)
                } else {
                    failures.append(branchViolations)
                }
            }
            if !matched { reportAlternatives(any, failures, instance, at: path, keyword: "anyOf") }
        }
        if let one = schema["oneOf"]?.arrayValue {
            var failures: [[SchemaViolation]] = []
            var matches: [Evaluated] = []
            for subschema in one {
                let (result, branchViolations) = trial(subschema, to: instance, at: path, base: base, depth: next)
                if let result { matches.append(result) } else { failures.append(branchViolations) }
            }
            if matches.isEmpty {
                reportAlternatives(one, failures, instance, at: path, keyword: "oneOf")
            } else if matches.count > 1 {
                fail(path, "oneOf", "matches \(matches.count) of the allowed forms; it must match exactly one")
            } else {
                evaluated.merge(matches[0])
            }
        }
        if let negated = schema["not"] {
            if trial(negated, to: instance, at: path, base: base, depth: next).0 != nil {
                let what = negated["description"]?.stringValue.map { " (\($0))" } ?? ""
                fail(path, "not", "\(instance.briefDescription) is not allowed here\(what)")
            }
        }
        if let condition = schema["if"] {
            let (result, _) = trial(condition, to: instance, at: path, base: base, depth: next)
            if let result {
                evaluated.merge(result)
                if let then = schema["then"], let thenResult = apply(then, to: instance, at: path, base: base, depth: next) {
                    evaluated.merge(thenResult)
                }
            } else if let otherwise = schema["else"],
                let elseResult = apply(otherwise, to: instance, at: path, base: base, depth: next)
            {
                evaluated.merge(elseResult)
            }
        }

        if case .object(let object) = instance, let unevaluated = schema["unevaluatedProperties"] {
            for (key, value) in object where !evaluated.properties.contains(key) {
                if apply(unevaluated, to: value, at: path.appending(key), base: base, depth: next) != nil {
                    evaluated.properties.insert(key)
                } else if unevaluated == .bool(false) {
                    violations.removeLast()
                    fail(path.appending(key), "unevaluatedProperties", "unknown key \"\(key)\"", aboutKey: true)
                }
            }
        }
        if case .array(let elements) = instance, let unevaluated = schema["unevaluatedItems"], !evaluated.allItems {
            for (position, element) in elements.enumerated() where !evaluated.items.contains(position) {
                if apply(unevaluated, to: element, at: path.appending(position), base: base, depth: next) != nil {
                    evaluated.items.insert(position)
                }
            }
        }
    }

    /// Reports a failed anyOf/oneOf. When exactly one alternative accepts the
    /// instance's type, its own violations are the useful ones.
    private mutating func reportAlternatives(_ alternatives: [JSONValue], _ failures: [[SchemaViolation]], _ instance: JSONValue, at path: JSONPointer, keyword: String) {
        let plausible = failures.filter { branch in !branch.contains { $0.instancePath == path && ($0.keyword == "type" || $0.keyword == "const") } }
        if plausible.count == 1 {
            violations.append(contentsOf: plausible[0])
            return
        }
        let forms = alternatives.compactMap { $0["description"]?.stringValue }
        if forms.count == alternatives.count && !forms.isEmpty {
            fail(path, keyword, "does not match any allowed form; expected " + forms.joined(separator: ", or "))
        } else {
            fail(path, keyword, "\(instance.briefDescription) does not match any of the allowed forms")
        }
    }

    private mutating func applyNumeric(_ schema: JSONObject, _ value: Double, at path: JSONPointer) {
        if let limit = schema["minimum"]?.numberValue, value < limit {
            fail(path, "minimum", "\(JSONValue.numberText(value)) is less than the minimum \(JSONValue.numberText(limit))")
        }
        if let limit = schema["maximum"]?.numberValue, value > limit {
            fail(path, "maximum", "\(JSONValue.numberText(value)) is greater than the maximum \(JSONValue.numberText(limit))")
        }
        if let limit = schema["exclusiveMinimum"]?.numberValue, value <= limit {
            fail(path, "exclusiveMinimum", "\(JSONValue.numberText(value)) must be greater than \(JSONValue.numberText(limit))")
        }
        if let limit = schema["exclusiveMaximum"]?.numberValue, value >= limit {
            fail(path, "exclusiveMaximum", "\(JSONValue.numberText(value)) must be less than \(JSONValue.numberText(limit))")
        }
        if let divisor = schema["multipleOf"]?.numberValue, divisor > 0 {
            let quotient = value / divisor
            let isMultiple = quotient.isFinite && abs(quotient - quotient.rounded()) <= 1e-9 * max(1, abs(quotient))
            if !isMultiple {
                fail(path, "multipleOf", "\(JSONValue.numberText(value)) is not a multiple of \(JSONValue.numberText(divisor))")
            }
        }
    }

    private mutating func applyString(_ schema: JSONObject, _ value: String, at path: JSONPointer) {
        let length = value.unicodeScalars.count
        if let limit = schema["minLength"]?.numberValue, Double(length) < limit {
            fail(path, "minLength", limit == 1 ? "must not be empty" : "must be at least \(Int(limit)) characters long, found \(length)")
        }
        if let limit = schema["maxLength"]?.numberValue, Double(length) > limit {
            fail(path, "maxLength", "must be at most \(Int(limit)) characters long, found \(length)")
        }
        if let pattern = schema["pattern"]?.stringValue {
            if let regex = validator.regex(pattern) {
                let range = NSRange(value.startIndex..., in: value)
                if regex.firstMatch(in: value, range: range) == nil {
                    let expectation = schema["description"]?.stringValue ?? "the pattern \(pattern)"
                    fail(path, "pattern", "\(JSONValue.string(value).briefDescription) is not valid: expected \(expectation)")
                }
            } else {
                fail(path, "pattern", "schema error: invalid regular expression \(pattern)")
            }
        }
    }

    private mutating func applyArray(_ schema: JSONObject, _ elements: [JSONValue], at path: JSONPointer, base: String, depth: Int, evaluated: inout Evaluated) {
        if let limit = schema["minItems"]?.numberValue, Double(elements.count) < limit {
            fail(path, "minItems", "needs at least \(Int(limit)) item\(limit == 1 ? "" : "s"), found \(elements.count)", hint: schema["description"]?.stringValue)
        }
        if let limit = schema["maxItems"]?.numberValue, Double(elements.count) > limit {
            fail(path, "maxItems", "allows at most \(Int(limit)) item\(limit == 1 ? "" : "s"), found \(elements.count)", hint: schema["description"]?.stringValue)
        }
        if schema["uniqueItems"]?.boolValue == true {
            var seen: [JSONValue: Int] = [:]
            for (position, element) in elements.enumerated() {
                if let first = seen[element] {
                    fail(path.appending(position), "uniqueItems", "\(element.briefDescription) is listed twice (first at item \(first + 1))")
                } else {
                    seen[element] = position
                }
            }
        }
        var prefixCount = 0
        if let prefix = schema["prefixItems"]?.arrayValue {
            prefixCount = min(prefix.count, elements.count)
            for position in 0..<prefixCount {
                _ = apply(prefix[position], to: elements[position], at: path.appending(position), base: base, depth: depth)
            }
            evaluated.items.formUnion(0..<prefixCount)
        }
        if let items = schema["items"] {
            for position in prefixCount..<max(prefixCount, elements.count) {
                _ = apply(items, to: elements[position], at: path.appending(position), base: base, depth: depth)
            }
            evaluated.allItems = true
        }
        if let contains = schema["contains"] {
            var matching: [Int] = []
            for (position, element) in elements.enumerated() {
                if trial(contains, to: element, at: path.appending(position), base: base, depth: depth).0 != nil {
                    matching.append(position)
                }
            }
            evaluated.items.formUnion(matching)
            let minimum = schema["minContains"]?.numberValue ?? 1
            if Double(matching.count) < minimum {
                let what = contains["description"]?.stringValue ?? "matching item"
                fail(path, "contains", minimum <= 1 ? "needs at least one \(what)" : "needs at least \(Int(minimum)) of: \(what), found \(matching.count)")
            }
            if let maximum = schema["maxContains"]?.numberValue, Double(matching.count) > maximum {
                fail(path, "maxContains", "allows at most \(Int(maximum)) matching items, found \(matching.count)")
            }
        }
    }

    private mutating func applyObject(_ schema: JSONObject, _ object: JSONObject, at path: JSONPointer, base: String, depth: Int, evaluated: inout Evaluated) {
        if let required = schema["required"]?.arrayValue {
            for case .string(let key) in required where object[key] == nil {
                // A conditional fragment (no properties of its own) explains itself in its description.
                let reason = schema["properties"] == nil ? schema["description"]?.stringValue : nil
                fail(path, "required", "missing required key \"\(key)\"", hint: reason)
            }
        }
        if let dependencies = schema["dependentRequired"]?.objectValue {
            for (trigger, needed) in dependencies where object[trigger] != nil {
                for case .string(let key) in needed.arrayValue ?? [] where object[key] == nil {
                    fail(path, "dependentRequired", "missing key \"\(key)\", required when \"\(trigger)\" is present")
                }
            }
        }
        if let limit = schema["minProperties"]?.numberValue, Double(object.count) < limit {
            fail(path, "minProperties", "needs at least \(Int(limit)) key\(limit == 1 ? "" : "s"), found \(object.count)", hint: schema["description"]?.stringValue)
        }
        if let limit = schema["maxProperties"]?.numberValue, Double(object.count) > limit {
            fail(path, "maxProperties", "allows at most \(Int(limit)) key\(limit == 1 ? "" : "s"), found \(object.count)", hint: schema["description"]?.stringValue)
        }
        let properties = schema["properties"]?.objectValue
        let patterns = schema["patternProperties"]?.objectValue
        let additional = schema["additionalProperties"]
        let propertyNames = schema["propertyNames"]
        for (key, value) in object {
            let memberPath = path.appending(key)
            var matched = false
            if let subschema = properties?[key] {
                matched = true
                _ = apply(subschema, to: value, at: memberPath, base: base, depth: depth)
            }
            for (pattern, subschema) in patterns ?? JSONObject() {
                guard let regex = validator.regex(pattern) else { continue }
                if regex.firstMatch(in: key, range: NSRange(key.startIndex..., in: key)) != nil {
                    matched = true
                    _ = apply(subschema, to: value, at: memberPath, base: base, depth: depth)
                }
            }
            if matched {
                evaluated.properties.insert(key)
            } else if let additional {
                if additional == .bool(false) {
                    let known = properties?.keys ?? []
                    let hint = Suggestion.closest(to: key, in: known).map { "did you mean \"\($0)\"?" }
                        ?? (known.isEmpty ? nil : "allowed keys: " + known.joined(separator: ", "))
                    fail(memberPath, "additionalProperties", "unknown key \"\(key)\"", hint: hint, aboutKey: true)
                } else {
                    _ = apply(additional, to: value, at: memberPath, base: base, depth: depth)
                }
                evaluated.properties.insert(key)
            }
            if let propertyNames {
                let (result, nameViolations) = trial(propertyNames, to: .string(key), at: memberPath, base: base, depth: depth)
                if result == nil {
                    for violation in nameViolations {
                        fail(memberPath, "propertyNames", "key \"\(key)\": \(violation.message)", aboutKey: true)
                    }
                }
            }
        }
        if let dependentSchemas = schema["dependentSchemas"]?.objectValue {
            for (trigger, subschema) in dependentSchemas where object[trigger] != nil {
                if let result = apply(subschema, to: .object(object), at: path, base: base, depth: depth) {
                    evaluated.merge(result)
                }
            }
        }
    }

    static func matches(type: String, _ value: JSONValue) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("number", .number), ("string", .string), ("array", .array), ("object", .object):
            return true
        case ("integer", .number(let number)):
            return number.isFinite && number.rounded() == number
        default:
            return false
        }
    }

    static func typePhrase(_ type: String) -> String {
        switch type {
        case "null": "null"
        case "boolean": "true or false"
        case "integer": "a whole number"
        case "number": "a number"
        case "string": "a string"
        case "array": "a list"
        case "object": "a mapping"
        default: type
        }
    }

    static func found(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .number, .string, .bool: "\(typePhrase(value.typeName == "integer" ? "number" : value.typeName)) \(value.briefDescription)"
        default: value.briefDescription
        }
    }
}

/// Compiled regular expressions, shared by every copy of a validator.
private final class RegexCache: @unchecked Sendable {
    private let lock = NSLock()
    private var compiled: [String: NSRegularExpression?] = [:]

    func regex(_ pattern: String) -> NSRegularExpression? {
        lock.lock()
        defer { lock.unlock() }
        if let cached = compiled[pattern] { return cached }
        let regex = try? NSRegularExpression(pattern: Self.icuPattern(ecma: pattern))
        compiled[pattern] = regex
        return regex
    }

    /// An ECMA-262 pattern (what JSON Schema specifies) in ICU's dialect. They
    /// differ where it matters most for a pattern like `^[a-z]+$`: ICU's `$`
    /// also matches before a final line break, so `"vip\n"` would pass. ECMA's
    /// `$` (no multiline flag) is the end of the input, ICU's `\z`.
    static func icuPattern(ecma pattern: String) -> String {
        var result = ""
        var escaped = false
        var inClass = false
        for character in pattern {
            if escaped {
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if inClass {
                if character == "]" { inClass = false }
            } else if character == "[" {
                inClass = true
            } else if character == "$" {
                result += "\\z"
                continue
            }
            result.append(character)
        }
        return result
    }
}
