/// An RFC 4180 CSV reader that knows where every field starts, so a bad row
/// is reported by line and column.
public struct CSVReader {
    public struct Field: Sendable, Hashable {
        public var text: String
        public var line: Int
        public var column: Int
    }

    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var line: Int
        public var column: Int
        public var description: String { "\(line):\(column): \(message)" }
    }

    private let bytes: [UInt8]
    private let delimiter: UInt8
    private var index = 0
    private var line = 1
    private var column = 1

    public init(_ bytes: [UInt8], delimiter: UInt8 = UInt8(ascii: ",")) {
        // A UTF-8 byte order mark is not part of the first header.
        self.bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        self.delimiter = delimiter
    }

    /// The next record, or nil at the end. Empty lines are skipped.
    public mutating func next() throws(SyntaxError) -> [Field]? {
        while index < bytes.count, bytes[index] == UInt8(ascii: "\n") || bytes[index] == UInt8(ascii: "\r") { advanceNewline() }
        guard index < bytes.count else { return nil }
        var fields: [Field] = []
        while true {
            fields.append(try field())
            guard index < bytes.count else { return fields }
            if bytes[index] == delimiter {
                advance()
                continue
            }
            advanceNewline()
            return fields
        }
    }

    /// Skips the rest of the current line, after a syntax error: reading goes
    /// on with the next line, so one bad row does not hide the rows after it.
    public mutating func skipLine() {
        while index < bytes.count, bytes[index] != UInt8(ascii: "\n"), bytes[index] != UInt8(ascii: "\r") { index += 1 }
        if index < bytes.count { advanceNewline() }
    }

    private mutating func advance() {
        if bytes[index] & 0xC0 != 0x80 { column += 1 }
        index += 1
    }

    private mutating func advanceNewline() {
        if bytes[index] == UInt8(ascii: "\r") { index += 1 }
        if index < bytes.count, bytes[index] == UInt8(ascii: "\n") { index += 1 }
        line += 1
        column = 1
    }

    private mutating func field() throws(SyntaxError) -> Field {
        let startLine = line
        let startColumn = column
        var text: [UInt8] = []
        if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
            advance()
            while true {
                guard index < bytes.count else { throw SyntaxError(message: "unterminated quoted field", line: startLine, column: startColumn) }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    advance()
                    if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                        text.append(byte)
                        advance()
                        continue
                    }
                    guard index >= bytes.count || bytes[index] == delimiter || bytes[index] == UInt8(ascii: "\n") || bytes[index] == UInt8(ascii: "\r") else {
                        throw SyntaxError(message: "unexpected character after a closing quote; double a quote inside a quoted field (\"\")", line: line, column: column)
                    }
                    break
                }
                if byte == UInt8(ascii: "\n") {
                    text.append(byte)
                    index += 1
                    line += 1
                    column = 1
                    continue
                }
                text.append(byte)
                advance()
            }
        } else {
            while index < bytes.count {
                let byte = bytes[index]
                if byte == delimiter || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { break }
                if byte == UInt8(ascii: "\"") {
                    throw SyntaxError(message: "a quote inside an unquoted field; quote the whole field and double the quote", line: line, column: column)
                }
                text.append(byte)
                advance()
            }
        }
        return Field(text: String(decoding: text, as: UTF8.self), line: startLine, column: startColumn)
    }
}
