import CYAML
import StratumJSON

/// A YAML file read into JSON values, remembering where every value and key was.
public struct YAMLDocument: Sendable {
    public var root: JSONValue
    /// Position of each value, by its JSON pointer.
    public var valueLocations: [JSONPointer: SourceLocation]
    /// Position of each mapping key, by the pointer of the value it names.
    public var keyLocations: [JSONPointer: SourceLocation]

    /// Where to point a person for a problem at `pointer`: the key when asked
    /// (or when the value is missing), else the value, else the nearest ancestor.
    public func location(of pointer: JSONPointer, preferKey: Bool = false) -> SourceLocation {
        if preferKey, let key = keyLocations[pointer] { return key }
        var current: JSONPointer? = pointer
        while let candidate = current {
            if let value = valueLocations[candidate] { return value }
            current = candidate.parent
        }
        return .start
    }
}

/// Reads definition files with libyaml, strictly.
///
/// YAML 1.2 core schema: only `true`/`false` are booleans (so `country: NO`
/// stays a string), `~`/`null`/empty are null. Refused with an error: duplicate
/// keys, anchors and aliases (a hostile file cannot expand), custom tags,
/// complex keys, more than one document, nesting deeper than
/// `maximumDepth` and files larger than `maximumFileSize`.
public enum YAMLLoader {
    public static let maximumFileSize = 1 << 20
    public static let maximumDepth = 64

    /// The diagnostic for a file over `maximumFileSize`.
    public static func tooLarge(size: Int, file: String) -> Diagnostic {
        let message = "file is \(size) bytes; definition files are limited to 1 MiB (1,048,576 bytes) (split it into several definitions)"
        return Diagnostic(file: file, location: .start, message: message)
    }

    /// Parses `bytes`; on any problem returns nil and the problems.
    public static func load(_ bytes: [UInt8], file: String) -> (YAMLDocument?, [Diagnostic]) {
        guard bytes.count <= maximumFileSize else { return (nil, [tooLarge(size: bytes.count, file: file)]) }
        let breaks = yaml11LineBreaks(in: bytes, file: file)
        guard breaks.isEmpty else { return (nil, breaks) }
        var builder = TreeBuilder(file: file)
        bytes.withUnsafeBufferPointer { buffer in builder.run(buffer) }
        if builder.diagnostics.isEmpty, let root = builder.root {
            return (YAMLDocument(root: root, valueLocations: builder.valueLocations, keyLocations: builder.keyLocations), [])
        }
        return (nil, builder.diagnostics)
    }
}

/// libyaml reads YAML 1.1, where U+0085, U+2028 and U+2029 break lines: text
/// pasted with one of them (a document editor's line separator) would not
/// parse, or every location after it would be off by a line. Each is reported
/// where it stands.
func yaml11LineBreaks(in bytes: [UInt8], file: String) -> [Diagnostic] {
    var diagnostics: [Diagnostic] = []
    var line = 1
    var column = 1
    var index = 0
    while index < bytes.count {
        let byte = bytes[index]
        let name: String? = switch (byte, index + 1 < bytes.count ? bytes[index + 1] : 0, index + 2 < bytes.count ? bytes[index + 2] : 0) {
        case (0xC2, 0x85, _): "U+0085 (next line)"
        case (0xE2, 0x80, 0xA8): "U+2028 (line separator)"
        case (0xE2, 0x80, 0xA9): "U+2029 (paragraph separator)"
        default: nil
        }
        if let name {
            diagnostics.append(Diagnostic(file: file, location: SourceLocation(line: line, column: column),
                                          message: "\(name) is a line break to the YAML parser", hint: "remove it, or write it as an escape (\\u2028) in a double-quoted string"))
        }
        if byte == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if byte & 0xC0 != 0x80 {
            column += 1
        }
        index += 1
    }
    return diagnostics
}


private struct TreeBuilder {
    /// A mapping or sequence being built. It is changed in place on the stack
    /// (`stack[stack.count - 1]`): taken off and put back, its members were
    /// copied for every item, and a long list took quadratic time.
    struct Frame {
        var isMapping: Bool
        var pointer: JSONPointer
        var object = JSONObject()
        var elements: [JSONValue] = []
        var pendingKey: (String, SourceLocation)?
        var firstSeen: [String: SourceLocation] = [:]

        var value: JSONValue { isMapping ? .object(object) : .array(elements) }
    }

    let file: String
    var stack: [Frame] = []
    var root: JSONValue?
    var documents = 0
    var valueLocations: [JSONPointer: SourceLocation] = [:]
    var keyLocations: [JSONPointer: SourceLocation] = [:]
    var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    mutating func error(_ location: SourceLocation, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(file: file, location: location, message: message, hint: hint))
    }

    mutating func run(_ buffer: UnsafeBufferPointer<UInt8>) {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            error(.start, "could not initialise the YAML parser")
            return
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(&parser, &event) == 1 else {
                reportSyntaxError(parser, buffer)
                return
            }
            defer { yaml_event_delete(&event) }
            let location = SourceLocation(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
            switch event.type {
            case YAML_STREAM_END_EVENT:
                if root == nil && diagnostics.isEmpty {
                    error(.start, "file is empty", hint: "a definition starts with kind: and name:")
                }
                return
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    error(location, "a second YAML document; a file holds one definition", hint: "move it to its own file")
                    return
                }
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                if let anchor = scalar.anchor { refuseAnchor(anchor, at: location) }
                let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: Int(scalar.length)), as: UTF8.self)
                let tag = scalar.tag.map { String(cString: $0) }
                let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE
                let value = resolveScalar(text, tag: tag, plain: plain, at: location)
                addNode(value, text: text, at: location)
            case YAML_SEQUENCE_START_EVENT:
                if let anchor = event.data.sequence_start.anchor { refuseAnchor(anchor, at: location) }
                checkCollectionTag(event.data.sequence_start.tag, expected: "tag:yaml.org,2002:seq", at: location)
                guard let pointer = beginNode(at: location) else { return }
                stack.append(Frame(isMapping: false, pointer: pointer))
            case YAML_MAPPING_START_EVENT:
                if let anchor = event.data.mapping_start.anchor { refuseAnchor(anchor, at: location) }
                checkCollectionTag(event.data.mapping_start.tag, expected: "tag:yaml.org,2002:map", at: location)
                guard let pointer = beginNode(at: location) else { return }
                stack.append(Frame(isMapping: true, pointer: pointer))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let frame = stack.popLast() else { return }
                finishNode(frame.value)
            case YAML_ALIAS_EVENT:
                let name = event.data.alias.anchor.map { String(cString: $0) } ?? ""
                error(location, "aliases (*\(name)) are not supported in definitions", hint: "repeat the value instead")
                addNode(.null, text: nil, at: location)
            default:
                break
            }
        }
    }

    mutating func reportSyntaxError(_ parser: yaml_parser_t, _ buffer: UnsafeBufferPointer<UInt8>) {
        let mark = parser.problem_mark
        var message = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        if let context = parser.context.map({ String(cString: $0) }) {
            message += " " + context
            let contextMark = parser.context_mark
            message += " (started at \(contextMark.line + 1):\(contextMark.column + 1))"
        }
        var location = SourceLocation(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
        if parser.error == YAML_READER_ERROR {
            // Reader errors (bad encoding) carry a byte offset, not a mark.
            location = Self.location(ofByte: Int(parser.problem_offset), in: buffer)
            message += " at byte \(parser.problem_offset)"
        }
        // The mark's index counts characters, not bytes: look for a tab in the
        // indentation of the mark's line instead.
        let hint = parser.error != YAML_READER_ERROR && Self.indentationHasTab(line: Int(mark.line), in: buffer)
            ? "indent with spaces; YAML does not allow tabs for indentation" : nil
        error(location, "YAML syntax: " + message, hint: hint)
    }

    /// Whether the indentation of line `line` (from 0) holds a tab.
    static func indentationHasTab(line: Int, in buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        var current = 0
        while current < line, index < buffer.count {
            if buffer[index] == UInt8(ascii: "\n") { current += 1 }
            index += 1
        }
        while index < buffer.count, buffer[index] == UInt8(ascii: " ") || buffer[index] == UInt8(ascii: "\t") {
            if buffer[index] == UInt8(ascii: "\t") { return true }
            index += 1
        }
        return false
    }

    static func location(ofByte offset: Int, in buffer: UnsafeBufferPointer<UInt8>) -> SourceLocation {
        var line = 1
        var column = 1
        for byte in buffer.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return SourceLocation(line: line, column: column)
    }

    mutating func refuseAnchor(_ anchor: UnsafeMutablePointer<yaml_char_t>, at location: SourceLocation) {
        let name = String(cString: anchor)
        error(location, "anchors (&\(name)) are not supported in definitions", hint: "repeat the value instead")
    }

    mutating func checkCollectionTag(_ tag: UnsafeMutablePointer<yaml_char_t>?, expected: String, at location: SourceLocation) {
        guard let tag else { return }
        let text = String(cString: tag)
        if text != expected && text != "!" {
            error(location, "the YAML tag \(text.replacingPrefix("tag:yaml.org,2002:", with: "!!")) is not supported", hint: "remove the tag")
        }
    }

    /// Records the location of a node about to start; returns its pointer, or
    /// nil (with an error) when a key is not a scalar or nesting is too deep.
    mutating func beginNode(at location: SourceLocation) -> JSONPointer? {
        guard stack.count < YAMLLoader.maximumDepth else {
            error(location, "nesting deeper than \(YAMLLoader.maximumDepth) levels")
            return nil
        }
        guard let last = stack.last else {
            valueLocations[.root] = location
            return .root
        }
        let child: JSONPointer
        if last.isMapping {
            guard let (key, _) = last.pendingKey else {
                error(location, "a mapping key must be a plain value, not a list or mapping")
                return nil
            }
            child = last.pointer.appending(key)
        } else {
            child = last.pointer.appending(last.elements.count)
        }
        valueLocations[child] = location
        return child
    }

    /// A scalar: either a mapping key, or a complete value.
    mutating func addNode(_ value: JSONValue, text: String?, at location: SourceLocation) {
        if let last = stack.indices.last, stack[last].isMapping, stack[last].pendingKey == nil {
            let key = text ?? ""
            if let first = stack[last].firstSeen[key] {
                error(location, "duplicate key \"\(key)\" (first at \(first.line):\(first.column))", hint: "keep one of them")
            } else {
                stack[last].firstSeen[key] = location
            }
            keyLocations[stack[last].pointer.appending(key)] = location
            stack[last].pendingKey = (key, location)
            return
        }
        guard beginNode(at: location) != nil else { return }
        finishNode(value)
    }

    mutating func finishNode(_ value: JSONValue) {
        guard let last = stack.indices.last else {
            root = value
            return
        }
        if stack[last].isMapping {
            if let (key, _) = stack[last].pendingKey, stack[last].object[key] == nil { stack[last].object[key] = value }
            stack[last].pendingKey = nil
        } else {
            stack[last].elements.append(value)
        }
    }

    /// A scalar's value. JSON, and so a definition, holds only finite numbers,
    /// and integers only up to 2^53 exactly: `.nan`, `.inf` and a longer
    /// integer (`12345678901234567890`, read as a double, rounds) are errors.
    mutating func resolveScalar(_ text: String, tag: String?, plain: Bool, at location: SourceLocation) -> JSONValue {
        let value = resolveTaggedScalar(text, tag: tag, plain: plain, at: location)
        // A mapping key is text whatever it looks like (`.inf:`, a long number).
        if let last = stack.last, last.isMapping, last.pendingKey == nil { return value }
        guard case .number(let number) = value else { return value }
        if !number.isFinite {
            error(location, "\(text) is not a finite number; definitions hold finite numbers only (JSON has no NaN or infinity)", hint: "write a finite number, or quote it for text")
            return .string(text)
        }
        if number.magnitude >= 9_007_199_254_740_992, text.drop(while: { $0 == "-" || $0 == "+" }).allSatisfy({ $0.isASCII && $0.isNumber }) {
            error(location, "\(text) is too large to keep exactly (2^53 or more)", hint: "quote it if it is an id or other text")
            return .string(text)
        }
        return value
    }

    mutating func resolveTaggedScalar(_ text: String, tag: String?, plain: Bool, at location: SourceLocation) -> JSONValue {
        switch tag {
        case nil:
            return plain ? Self.coreSchemaValue(text) : .string(text)
        case "!", "tag:yaml.org,2002:str":
            return .string(text)
        case "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null":
            let value = Self.coreSchemaValue(text)
            let expected = [
                "tag:yaml.org,2002:int": "integer", "tag:yaml.org,2002:float": "number",
                "tag:yaml.org,2002:bool": "boolean", "tag:yaml.org,2002:null": "null",
            ][tag!]!
            let actual = value.typeName
            if actual == expected || (expected == "number" && actual == "integer") { return value }
            error(location, "\"\(text)\" is not a valid \(tag!.replacingPrefix("tag:yaml.org,2002:", with: "!!"))")
            return .string(text)
        default:
            error(location, "the YAML tag \(tag!.replacingPrefix("tag:yaml.org,2002:", with: "!!")) is not supported", hint: "remove the tag")
            return .string(text)
        }
    }

    /// The YAML 1.2 core schema's resolution of a plain scalar.
    static func coreSchemaValue(_ text: String) -> JSONValue {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .number(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .number(-.infinity)
        case ".nan", ".NaN", ".NAN": return .number(.nan)
        default: break
        }
        guard let first = text.utf8.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: ".")
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first)
        else { return .string(text) }
        // The core schema's 0x and 0o take digits only: Int64(radix:) would also take a sign (0x-1).
        let digits = text.dropFirst(2)
        if text.hasPrefix("0x"), digits.first?.isHexDigit == true, let value = Int64(digits, radix: 16) { return .number(Double(value)) }
        if text.hasPrefix("0o"), digits.first?.isHexDigit == true, let value = Int64(digits, radix: 8) { return .number(Double(value)) }
        if isCoreNumber(text), let value = Double(text) { return .number(value) }
        return .string(text)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    static func isCoreNumber(_ text: String) -> Bool {
        var bytes = Substring(text).utf8[...]
        func digits() -> Int {
            var count = 0
            while let byte = bytes.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                bytes = bytes.dropFirst()
                count += 1
            }
            return count
        }
        if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        let integerDigits = digits()
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            let fraction = digits()
            if integerDigits == 0 && fraction == 0 { return false }
        } else if integerDigits == 0 {
            return false
        }
        if let e = bytes.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
            if digits() == 0 { return false }
        }
        return bytes.isEmpty
    }
}

extension String {
    func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
