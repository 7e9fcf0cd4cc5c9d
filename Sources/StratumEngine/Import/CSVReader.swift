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
        /// The line the record began on (a quoted field may run across lines).
        public var recordLine = 0
        public var description: String { "\(line):\(column): \(message)" }
    }

    private let bytes: [UInt8]
    private let delimiter: UInt8
    private let utf16: Bool
    private var index = 0
    /// The line reading is at (after `skipLine`, the next line to read).
    public private(set) var line = 1
    private var column = 1

    public init(_ bytes: [UInt8], delimiter: UInt8 = UInt8(ascii: ",")) {
        // A UTF-8 byte order mark is not part of the first header.
        self.bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        self.delimiter = delimiter
        utf16 = bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF])
    }

    /// How far reading has got, in bytes.
    public var offset: Int { index }

    /// The line of the last byte read (`line` is already the next one after a line break).
    public var lastLine: Int { index > 0 && bytes[index - 1] == UInt8(ascii: "\n") ? line - 1 : line }

    /// The next record, or nil at the end. Empty lines are skipped.
    public mutating func next() throws(SyntaxError) -> [Field]? {
        // Spreadsheets often save "Unicode text" as UTF-16: every field would be garbled.
        guard !utf16 else { throw SyntaxError(message: "the file is UTF-16 text; save it as CSV in UTF-8", line: 1, column: 1) }
        while index < bytes.count, bytes[index] == UInt8(ascii: "\n") || bytes[index] == UInt8(ascii: "\r") { advanceNewline() }
        guard index < bytes.count else { return nil }
        var fields: [Field] = []
        let recordLine = line
        while true {
            do {
                fields.append(try field())
            } catch {
                var located = error
                located.recordLine = recordLine
                throw located
            }
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
                guard index < bytes.count else {
                    let lines = lastLine - startLine + 1
                    throw SyntaxError(message: "unterminated quoted field: the quote opened here runs to the end of the file\(lines > 1 ? " (\(lines) lines)" : ""); close it, or double a quote meant as text (\"\")", line: startLine, column: startColumn)
                }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    advance()
                    if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                        text.append(byte)
                        advance()
                        continue
                    }
                    guard index >= bytes.count || bytes[index] == delimiter || bytes[index] == UInt8(ascii: "\n") || bytes[index] == UInt8(ascii: "\r") else {
                        // A quoted field that ran across lines here most likely began with a stray quote.
                        let stray = line > startLine ? "; the quoted field began at \(startLine):\(startColumn), \(line - startLine) lines up: a stray quote there?" : ""
                        throw SyntaxError(message: "unexpected character after a closing quote; double a quote inside a quoted field (\"\")" + stray, line: line, column: column)
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
        // Refused, never replaced: a Latin-1 export would be stored garbled.
        guard let string = String(validating: text, as: UTF8.self) else {
            throw SyntaxError(message: "not UTF-8 text (a Latin-1 or Windows export?); save the file as CSV in UTF-8", line: startLine, column: startColumn)
        }
        return Field(text: string, line: startLine, column: startColumn)
    }
}
