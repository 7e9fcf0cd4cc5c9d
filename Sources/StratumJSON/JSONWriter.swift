extension JSONValue {
    /// The value as JSON text: compact by default, or indented by two spaces.
    ///
    /// Integral numbers within ±2^53 are written without a fraction.
    public func jsonText(pretty: Bool = false) -> String {
        String(decoding: jsonBytes(pretty: pretty), as: UTF8.self)
    }

    /// The value as UTF-8 JSON text, as `jsonText(pretty:)` writes it.
    public func jsonBytes(pretty: Bool = false) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(128)
        write(to: &output, pretty: pretty, indent: 0)
        return output
    }

    /// The size in bytes of the compact text, without writing it.
    public var compactByteCount: Int {
        switch self {
        case .null: 4
        case .bool(let value): value ? 4 : 5
        case .number(let value): Self.numberText(value).utf8.count
        case .string(let value): Self.encodedCount(value)
        case .array(let elements):
            elements.reduce(max(elements.count - 1, 0) + 2) { $0 + $1.compactByteCount }
        case .object(let object):
            object.reduce(max(object.count - 1, 0) + 2) { $0 + Self.encodedCount($1.key) + 1 + $1.value.compactByteCount }
        }
    }

    private func write(to output: inout [UInt8], pretty: Bool, indent: Int) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let value): output.append(contentsOf: Self.numberText(value).utf8)
        case .string(let value): Self.writeString(value, to: &output)
        case .array(let elements):
            guard !elements.isEmpty else { output.append(contentsOf: "[]".utf8); return }
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { Self.newline(&output, indent + 1) }
                element.write(to: &output, pretty: pretty, indent: indent + 1)
            }
            if pretty { Self.newline(&output, indent) }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            guard !object.isEmpty else { output.append(contentsOf: "{}".utf8); return }
            output.append(UInt8(ascii: "{"))
            for (position, member) in object.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { Self.newline(&output, indent + 1) }
                Self.writeString(member.key, to: &output)
                output.append(contentsOf: (pretty ? ": " : ":").utf8)
                member.value.write(to: &output, pretty: pretty, indent: indent + 1)
            }
            if pretty { Self.newline(&output, indent) }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(_ output: inout [UInt8], _ indent: Int) {
        output.append(UInt8(ascii: "\n"))
        output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * indent))
    }

    static func numberText(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value.rounded() == value && abs(value) <= 9_007_199_254_740_992 {
            return String(Int64(value))
        }
        return String(value)
    }

    /// The escape for `byte`, or nil when it is written as is: `"`, `\` and
    /// the control characters are escaped, everything else (all of UTF-8
    /// above U+001F) is copied.
    private static func escape(_ byte: UInt8) -> String? {
        switch byte {
        case UInt8(ascii: "\""): "\\\""
        case UInt8(ascii: "\\"): "\\\\"
        case 0x0A: "\\n"
        case 0x0D: "\\r"
        case 0x09: "\\t"
        case 0x08: "\\b"
        case 0x0C: "\\f"
        case 0x00..<0x20:
            "\\u00" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16)
        default: nil
        }
    }

    static func writeString(_ value: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            var start = 0
            for position in 0..<bytes.count {
                guard let escaped = escape(bytes[position]) else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<position]))
                output.append(contentsOf: escaped.utf8)
                start = position + 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]))
        }
        output.append(UInt8(ascii: "\""))
    }

    private static func encodedCount(_ value: String) -> Int {
        var count = 2
        for byte in value.utf8 { count += escape(byte)?.utf8.count ?? 1 }
        return count
    }
}
