import Foundation
import StratumJSON

/// Checks a tracking plan's event schema as a JSON Schema (draft 2020-12)
/// before any event meets it. The validator ignores what it does not know, so
/// `type: float` or `minimun: 0` would be accepted here and then refuse, or
/// silently pass, every event: each keyword is checked for its shape, every
/// pattern compiles, every `$ref` is local and resolves.
struct TrackingPlanSchemaCheck {
    struct Problem {
        var pointer: JSONPointer
        var message: String
        var hint: String?
        /// A keyword the validator does not know: JSON Schema allows them (annotations
        /// like `x-owner`), but a typo of a known one would be silently ignored.
        var isWarning = false
    }

    static let types = ["null", "boolean", "object", "array", "number", "string", "integer"]
    /// Other languages' names for JSON Schema's types.
    static let typeAliases = [
        "float": "number", "double": "number", "decimal": "number", "int": "integer", "long": "integer",
        "bool": "boolean", "str": "string", "text": "string", "dict": "object", "map": "object", "list": "array",
    ]
    /// (`definitions` is draft-07's `$defs`; a `$ref` into it resolves as any pointer does.)
    static let schemaMaps: Set<String> = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]
    static let schemas: Set<String> = [
        "items", "additionalProperties", "propertyNames", "contains", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema",
    ]
    static let schemaLists: Set<String> = ["allOf", "anyOf", "oneOf", "prefixItems"]
    static let numbers: Set<String> = ["maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"]
    static let counts: Set<String> = [
        "maxLength", "minLength", "maxItems", "minItems", "maxContains", "minContains", "maxProperties", "minProperties",
    ]
    static let booleans: Set<String> = ["uniqueItems", "deprecated", "readOnly", "writeOnly"]
    static let strings: Set<String> = ["$schema", "$id", "$comment", "$anchor", "$dynamicRef", "$dynamicAnchor", "format", "title", "description", "contentEncoding", "contentMediaType"]
    static let anything: Set<String> = ["enum", "const", "default", "examples", "$vocabulary", "dependentRequired"]
    static var keywords: Set<String> {
        schemaMaps.union(schemas).union(schemaLists).union(numbers).union(counts).union(booleans).union(strings).union(anything)
            .union(["type", "pattern", "required", "multipleOf", "$ref"])
    }

    let root: JSONValue
    var problems: [Problem] = []

    static func problems(in schema: JSONValue) -> [Problem] {
        var check = TrackingPlanSchemaCheck(root: schema)
        check.schema(schema, at: .root)
        return check.problems
    }

    mutating func fail(_ pointer: JSONPointer, _ message: String, hint: String? = nil, isWarning: Bool = false) {
        problems.append(Problem(pointer: pointer, message: message, hint: hint, isWarning: isWarning))
    }

    mutating func schema(_ value: JSONValue, at pointer: JSONPointer) {
        if case .bool = value { return }
        guard case .object(let object) = value else {
            return fail(pointer, "a schema is an object or true/false, found \(value.briefDescription)")
        }
        for key in object.keys.sorted() {
            let member = object[key]!
            let at = pointer.appending(key)
            switch key {
            case "type":
                let names = member.arrayValue ?? [member]
                for name in names where !Self.types.contains(name.stringValue ?? "") {
                    let hint = name.stringValue.flatMap { Self.typeAliases[$0.lowercased()] ?? Suggestion.closest(to: $0, in: Self.types) }.map { "did you mean \"\($0)\"?" }
                        ?? "use one of: " + Self.types.joined(separator: ", ")
                    fail(at, "type \(name.briefDescription) is not a JSON Schema type", hint: hint)
                }
            case "pattern":
                guard let text = member.stringValue else { fail(at, "pattern must be a string"); continue }
                if !JSONSchemaValidator.compiles(pattern: text) { fail(at, "\"\(text)\" is not a valid regular expression") }
            case "required":
                if member.arrayValue?.allSatisfy({ $0.stringValue != nil }) != true { fail(at, "required must be a list of property names") }
            case "multipleOf":
                if !((member.numberValue ?? 0) > 0) { fail(at, "multipleOf must be a number greater than 0") }
            case "$ref":
                reference(member, at: at)
            case _ where Self.schemaMaps.contains(key):
                guard case .object(let members) = member else { fail(at, "\(key) must map names to schemas"); continue }
                for name in members.keys.sorted() {
                    if key == "patternProperties", !JSONSchemaValidator.compiles(pattern: name) { fail(at.appending(name), "\"\(name)\" is not a valid regular expression") }
                    schema(members[name]!, at: at.appending(name))
                }
            case _ where Self.schemas.contains(key):
                schema(member, at: at)
            case _ where Self.schemaLists.contains(key):
                guard let items = member.arrayValue, !items.isEmpty else { fail(at, "\(key) must be a non-empty list of schemas"); continue }
                for (index, item) in items.enumerated() { schema(item, at: at.appending(index)) }
            case _ where Self.numbers.contains(key):
                if member.numberValue?.isFinite != true { fail(at, "\(key) must be a number") }
            case _ where Self.counts.contains(key):
                if !(member.numberValue.map { $0 >= 0 && $0 == $0.rounded() } ?? false) { fail(at, "\(key) must be a whole number, 0 or more") }
            case _ where Self.booleans.contains(key):
                if member.boolValue == nil { fail(at, "\(key) must be true or false") }
            case _ where Self.strings.contains(key):
                if member.stringValue == nil { fail(at, "\(key) must be a string") }
            case _ where Self.anything.contains(key):
                if key == "enum", member.arrayValue == nil { fail(at, "enum must be a list of values") }
            default:
                let hint = Suggestion.closest(to: key, in: Self.keywords.sorted()).map { "did you mean \"\($0)\"?" } ?? "an annotation is fine; a misspelt keyword is ignored"
                fail(at, "unknown JSON Schema keyword \"\(key)\": the validator ignores it", hint: hint, isWarning: true)
            }
        }
    }

    /// Only references inside the event's schema that resolve: a JSON pointer
    /// (`#/$defs/item`, percent-encoded as in a URI) or an `$anchor` (`#money`).
    mutating func reference(_ value: JSONValue, at pointer: JSONPointer) {
        guard let text = value.stringValue, text.hasPrefix("#") else {
            return fail(pointer, "$ref must point inside this schema, like \"#/$defs/item\"")
        }
        let fragment = String(text.dropFirst()).removingPercentEncoding ?? String(text.dropFirst())
        let resolves = if fragment.isEmpty || fragment.hasPrefix("/") {
            JSONPointer(parsing: fragment).map { root.value(at: $0) != nil } ?? false
        } else {
            Self.anchors(in: root).contains(fragment)
        }
        if !resolves {
            fail(pointer, "$ref \"\(text)\" does not resolve inside this schema", hint: "add the schema it names under $defs, or point at one that exists")
        }
    }

    /// Every `$anchor` in `schema`.
    static func anchors(in schema: JSONValue) -> Set<String> {
        switch schema {
        case .object(let object):
            var found = Set(object["$anchor"]?.stringValue.map { [$0] } ?? [])
            for key in object.keys { found.formUnion(anchors(in: object[key]!)) }
            return found
        case .array(let items): return items.reduce(into: Set<String>()) { $0.formUnion(anchors(in: $1)) }
        default: return []
        }
    }
}
