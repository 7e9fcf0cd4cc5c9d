/// A JSON object's top-level members, each value kept as the bytes it was
/// written with, so that some members can be replaced or removed without
/// decoding and re-encoding the others (an exact decimal stays exact, and
/// nothing is re-rounded through a Double).
///
/// `bytes` writes the object minified, in member order; an object that was
/// minified already comes back byte for byte when nothing changed.
public struct RawJSONObject: Sendable, Equatable {
    public private(set) var members: [(key: String, value: [UInt8])]

    public init() { members = [] }

    /// The members of `text`, which must be a JSON object; nil if it is not
    /// one (only the structure is checked: values are kept, not validated).
    public init?(_ text: String) {
        var members: [(key: String, value: [UInt8])] = []
        var text = text
        text.makeContiguousUTF8()
        guard text.utf8.withContiguousStorageIfAvailable({ Self.scan($0, into: &members) }) == true else { return nil }
        self.members = members
    }

    /// Sets `key` to `value` (JSON text, written as is), replacing the member
    /// in place or appending it; a nil value removes the member. Keys match
    /// byte for byte (as JSON compares them), not as Unicode-equivalent text.
    public mutating func set(_ key: String, _ value: [UInt8]?) {
        if let index = members.firstIndex(where: { $0.key.utf8.elementsEqual(key.utf8) }) {
            if let value { members[index].value = value } else { members.remove(at: index) }
        } else if let value {
            members.append((key, value))
        }
    }

    public subscript(key: String) -> [UInt8]? {
        members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value
    }

    /// The object as minified JSON text.
    public var bytes: [UInt8] {
        var output: [UInt8] = [UInt8(ascii: "{")]
        for (index, member) in members.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONValue.writeString(member.key, to: &output)
            output.append(UInt8(ascii: ":"))
            output.append(contentsOf: member.value)
        }
        output.append(UInt8(ascii: "}"))
        return output
    }

    public static func == (lhs: RawJSONObject, rhs: RawJSONObject) -> Bool {
        lhs.members.count == rhs.members.count && zip(lhs.members, rhs.members).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && $0.value == $1.value }
    }

    // MARK: Scanning

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    private static func skipSpace(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) {
        while index < bytes.count, isSpace(bytes[index]) { index += 1 }
    }

    /// From an opening quote to just past the closing one; false if unterminated.
    private static func skipString(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> Bool {
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""): index += 1; return true
            case UInt8(ascii: "\\"): index += 2
            default: index += 1
            }
        }
        return false
    }

    /// Past one value: a string, an object or array (each bracket closed by its
    /// own kind, outside strings), or a number or literal (its characters only).
    private static func skipValue(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> Bool {
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return skipString(bytes, &index)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var open: [UInt8] = []
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard skipString(bytes, &index) else { return false }
                    continue
                case UInt8(ascii: "{"): open.append(UInt8(ascii: "}"))
                case UInt8(ascii: "["): open.append(UInt8(ascii: "]"))
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    guard open.popLast() == bytes[index] else { return false }
                    if open.isEmpty { index += 1; return true }
                default: break
                }
                index += 1
            }
            return false
        default:
            let start = index
            while index < bytes.count, Self.isLiteral(bytes[index]) { index += 1 }
            return index > start
        }
    }

    /// Characters of numbers and of true, false and null.
    private static func isLiteral(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "E"),
             UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."): true
        default: false
        }
    }

    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>, into members: inout [(key: String, value: [UInt8])]) -> Bool {
        var index = 0
        skipSpace(bytes, &index)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return false }
        index += 1
        skipSpace(bytes, &index)
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            skipSpace(bytes, &index)
            return index == bytes.count
        }
        while true {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
            let keyStart = index
            guard skipString(bytes, &index) else { return false }
            let keyBytes = UnsafeBufferPointer(rebasing: bytes[keyStart..<index])
            let key: String
            if keyBytes.contains(UInt8(ascii: "\\")) {
                guard case .string(let decoded)? = try? JSONParser.parse(Array(keyBytes)) else { return false }
                key = decoded
            } else {
                key = String(decoding: UnsafeBufferPointer(rebasing: keyBytes.dropFirst().dropLast()), as: UTF8.self)
            }
            skipSpace(bytes, &index)
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
            index += 1
            skipSpace(bytes, &index)
            let valueStart = index
            guard skipValue(bytes, &index) else { return false }
            members.append((key, Array(bytes[valueStart..<index])))
            skipSpace(bytes, &index)
            guard index < bytes.count else { return false }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                skipSpace(bytes, &index)
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { return false }
            index += 1
            skipSpace(bytes, &index)
            return index == bytes.count
        }
    }
}
