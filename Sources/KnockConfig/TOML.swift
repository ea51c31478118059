/// A TOML value with the line it starts on.
///
/// Only what a PortKnockO config needs: strings, integers, booleans, arrays and tables. The parser
/// refuses floats, dates, inline tables, multi-line strings and dotted keys by name.
public struct TOMLValue: Equatable, Sendable {
    /// The value itself.
    public indirect enum Kind: Equatable, Sendable {
        case string(String)
        case integer(Int64)
        case boolean(Bool)
        case array([TOMLValue])
        case table(TOMLTable)
        /// `[[name]]` tables, in file order.
        case tableArray([TOMLTable])
    }

    /// The value.
    public var kind: Kind
    /// The line it starts on.
    public var line: Int

    /// The type's name in messages, such as "a string" or "an integer".
    public var typeName: String {
        switch kind {
        case .string: "a string"
        case .integer: "an integer"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        case .tableArray: "an array of tables"
        }
    }
}

/// One `key = value` (or sub-table) of a table, with the line of its key.
public struct TOMLEntry: Equatable, Sendable {
    /// The key.
    public var key: String
    /// The value.
    public var value: TOMLValue
    /// The line of the key.
    public var line: Int
}

/// A TOML table: its entries in file order and the line of its header (0 for the root table).
public struct TOMLTable: Equatable, Sendable {
    /// The entries, in file order.
    public var entries: [TOMLEntry] = []
    /// The line of the table's header (0 for the root table).
    public var line: Int
    /// Whether a `[header]` (or `[[header]]`) defined it, as opposed to being implied by `[a.b]`.
    var isExplicit = false

    init(line: Int, isExplicit: Bool = false) {
        self.line = line
        self.isExplicit = isExplicit
    }

    /// The entry named `key`, if any.
    public subscript(key: String) -> TOMLEntry? { entries.first { $0.key == key } }

    fileprivate func index(of key: String) -> Int? { entries.firstIndex { $0.key == key } }
}

/// A hand-written parser for the part of TOML 1.0 a config needs, tracking the line of everything.
///
/// It stops at the first syntax error: later lines cannot be read reliably after one.
public struct TOMLParser {
    private let bytes: [UInt8]
    private let file: String
    private var position = 0
    private var line = 1
    private var root = TOMLTable(line: 0, isExplicit: true)
    private var currentPath: [String] = []

    private init(_ text: String, file: String) {
        self.bytes = Array(text.utf8)
        self.file = file
    }

    /// Parses `text`; errors name `file` and the line.
    public static func parse(_ text: String, file: String) throws(ConfigDiagnostic) -> TOMLTable {
        var parser = TOMLParser(text, file: file)
        try parser.parseDocument()
        return parser.root
    }

    // MARK: Statements

    private mutating func parseDocument() throws(ConfigDiagnostic) {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        while true {
            skipSpaces()
            guard let byte = peek() else { return }
            switch byte {
            case UInt8(ascii: "#"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                break
            case UInt8(ascii: "["):
                try parseHeader()
            default:
                try parseKeyValue()
            }
            try expectLineEnd()
        }
    }

    /// After a statement: spaces, an optional comment, then a newline or the end of the file.
    private mutating func expectLineEnd() throws(ConfigDiagnostic) {
        skipSpaces()
        if peek() == UInt8(ascii: "#") { try skipComment() }
        guard let byte = peek() else { return }
        if try consumeNewline() { return }
        throw error("expected the end of the line, found \(describe(byte))")
    }

    private mutating func parseHeader() throws(ConfigDiagnostic) {
        let headerLine = line
        position += 1
        let isArray = peek() == UInt8(ascii: "[")
        if isArray { position += 1 }
        var path: [String] = []
        while true {
            skipSpaces()
            path.append(try parseKey())
            skipSpaces()
            if peek() == UInt8(ascii: ".") {
                position += 1
                continue
            }
            break
        }
        guard peek() == UInt8(ascii: "]") else { throw error("expected ']' to close the table header") }
        position += 1
        if isArray {
            guard peek() == UInt8(ascii: "]") else { throw error("expected ']]' to close the array-of-tables header") }
            position += 1
        }
        try openTable(path, line: headerLine, isArray: isArray)
        currentPath = path
    }

    private mutating func parseKeyValue() throws(ConfigDiagnostic) {
        let keyLine = line
        let key = try parseKey()
        skipSpaces()
        if peek() == UInt8(ascii: ".") { throw error("dotted keys are not supported; use a [table] header") }
        guard peek() == UInt8(ascii: "=") else { throw error("expected '=' after the key \"\(key)\"") }
        position += 1
        skipSpaces()
        let value = try parseValue()
        let path = currentPath
        let file = file
        try Self.modify(&root, path: path[...], file: file, line: keyLine) { (table) throws(ConfigDiagnostic) in
            if let existing = table[key] {
                throw ConfigDiagnostic(
                    file: file, line: keyLine, "duplicate key \"\(key)\" (first defined on line \(existing.line))")
            }
            table.entries.append(TOMLEntry(key: key, value: value, line: keyLine))
        }
    }

    // MARK: Tables

    /// Runs `body` on the table at `path`, creating implicit tables and entering the last table of
    /// an array of tables on the way, as TOML does.
    ///
    /// Implicit tables get `line`, the line that brought them into being (a `[a.b]` header makes
    /// `a` there), so messages about them point somewhere real.
    private static func modify(
        _ table: inout TOMLTable, path: ArraySlice<String>, file: String, line: Int,
        _ body: (inout TOMLTable) throws(ConfigDiagnostic) -> Void
    ) throws(ConfigDiagnostic) {
        guard let key = path.first else {
            try body(&table)
            return
        }
        let rest = path.dropFirst()
        guard let index = table.index(of: key) else {
            var child = TOMLTable(line: line)
            try modify(&child, path: rest, file: file, line: line, body)
            table.entries.append(TOMLEntry(key: key, value: TOMLValue(kind: .table(child), line: line), line: line))
            return
        }
        let entry = table.entries[index]
        switch entry.value.kind {
        case .table(var child):
            try modify(&child, path: rest, file: file, line: line, body)
            table.entries[index].value.kind = .table(child)
        case .tableArray(var children):
            guard var last = children.popLast() else { return }
            try modify(&last, path: rest, file: file, line: line, body)
            children.append(last)
            table.entries[index].value.kind = .tableArray(children)
        default:
            throw ConfigDiagnostic(
                file: file, line: nil,
                "\"\(key)\" is \(entry.value.typeName) (line \(entry.line)), not a table")
        }
    }

    private mutating func openTable(_ path: [String], line headerLine: Int, isArray: Bool) throws(ConfigDiagnostic) {
        let file = file
        let name = path.joined(separator: ".")
        guard let last = path.last else { return }
        do {
            try Self.modify(&root, path: path.dropLast(), file: file, line: headerLine) { (parent) throws(ConfigDiagnostic) in
                guard let index = parent.index(of: last) else {
                    let table = TOMLTable(line: headerLine, isExplicit: true)
                    let kind: TOMLValue.Kind = isArray ? .tableArray([table]) : .table(table)
                    parent.entries.append(TOMLEntry(key: last, value: TOMLValue(kind: kind, line: headerLine), line: headerLine))
                    return
                }
                let entry = parent.entries[index]
                switch (entry.value.kind, isArray) {
                case (.tableArray(var tables), true):
                    tables.append(TOMLTable(line: headerLine, isExplicit: true))
                    parent.entries[index].value.kind = .tableArray(tables)
                case (.table(var table), false) where !table.isExplicit:
                    table.isExplicit = true
                    table.line = headerLine
                    parent.entries[index].value.kind = .table(table)
                case (.table, false):
                    throw ConfigDiagnostic(
                        file: file, line: headerLine, "table [\(name)] is defined twice (first on line \(entry.line))")
                default:
                    throw ConfigDiagnostic(
                        file: file, line: headerLine,
                        "\(isArray ? "[[\(name)]]" : "[\(name)]") conflicts with \"\(last)\", \(entry.value.typeName) defined on line \(entry.line)"
                    )
                }
            }
        } catch {
            // `modify` does not know the line when an intermediate key is not a table.
            var located = error
            if located.line == nil { located.line = headerLine }
            throw located
        }
    }

    // MARK: Keys and values

    private mutating func parseKey() throws(ConfigDiagnostic) -> String {
        guard let byte = peek() else { throw error("expected a key") }
        switch byte {
        case UInt8(ascii: "\""):
            if bytes[position...].starts(with: Array("\"\"\"".utf8)) { throw error("a key cannot be a multi-line string") }
            return try parseBasicString()
        case UInt8(ascii: "'"):
            if bytes[position...].starts(with: Array("'''".utf8)) { throw error("a key cannot be a multi-line string") }
            return try parseLiteralString()
        default:
            let start = position
            while let next = peek(), Self.isBareKeyByte(next) { position += 1 }
            guard position > start else { throw error("expected a key, found \(describe(byte))") }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }
    }

    private static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    private mutating func parseValue() throws(ConfigDiagnostic) -> TOMLValue {
        let valueLine = line
        guard let byte = peek() else { throw error("expected a value") }
        switch byte {
        case UInt8(ascii: "\""):
            if bytes[position...].starts(with: Array("\"\"\"".utf8)) { throw error("multi-line strings are not supported") }
            return TOMLValue(kind: .string(try parseBasicString()), line: valueLine)
        case UInt8(ascii: "'"):
            if bytes[position...].starts(with: Array("'''".utf8)) { throw error("multi-line strings are not supported") }
            return TOMLValue(kind: .string(try parseLiteralString()), line: valueLine)
        case UInt8(ascii: "["):
            return TOMLValue(kind: .array(try parseArray()), line: valueLine)
        case UInt8(ascii: "{"):
            throw error("inline tables are not supported; use a [table] header")
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"):
            throw error("expected a value")
        default:
            let start = position
            while let next = peek(), !Self.endsBareValue(next) { position += 1 }
            let token = String(decoding: bytes[start..<position], as: UTF8.self)
            return TOMLValue(kind: try classify(token), line: valueLine)
        }
    }

    private static func endsBareValue(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ","),
            UInt8(ascii: "]"), UInt8(ascii: "["), UInt8(ascii: "#"), UInt8(ascii: "}"), UInt8(ascii: "{"):
            true
        default:
            false
        }
    }

    /// Decides what an unquoted value is: a boolean, an integer, or something we name and refuse.
    ///
    /// Messages never quote the value: it may be a secret someone forgot to put in quotes.
    private func classify(_ token: String) throws(ConfigDiagnostic) -> TOMLValue.Kind {
        if token == "true" { return .boolean(true) }
        if token == "false" { return .boolean(false) }
        if ["inf", "+inf", "-inf", "nan", "+nan", "-nan"].contains(token) { throw error("floats are not supported") }
        let scalars = Array(token.unicodeScalars)
        func isDigit(_ index: Int) -> Bool { index < scalars.count && ("0"..."9").contains(scalars[index]) }
        if (isDigit(0) && isDigit(1) && isDigit(2) && isDigit(3) && scalars.count > 4 && scalars[4] == "-")
            || (isDigit(0) && isDigit(1) && scalars.count > 2 && scalars[2] == ":")
        {
            throw error("dates and times are not supported")
        }
        if let value = try parseInteger(token) { return .integer(value) }
        let numeric = token.unicodeScalars.allSatisfy { "0123456789_+-.eE".unicodeScalars.contains($0) }
        if numeric && token.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) && token.contains(where: \.isNumber) {
            throw error("floats are not supported")
        }
        throw error("invalid value (a string needs quotes)")
    }

    /// An integer in TOML syntax, nil when `token` is not one, an error when it is out of range.
    private func parseInteger(_ token: String) throws(ConfigDiagnostic) -> Int64? {
        var text = Substring(token)
        var negative = false
        var radix = 10
        if text.first == "+" || text.first == "-" {
            negative = text.first == "-"
            text = text.dropFirst()
        } else if text.count > 2, text.hasPrefix("0x") || text.hasPrefix("0o") || text.hasPrefix("0b") {
            radix = text.hasPrefix("0x") ? 16 : text.hasPrefix("0o") ? 8 : 2
            text = text.dropFirst(2)
        }
        guard let first = text.first, let last = text.last, first != "_", last != "_", !text.contains("__") else {
            return nil
        }
        let digits = text.filter { $0 != "_" }
        guard digits.allSatisfy({ $0.isASCII && $0.hexDigitValue.map { $0 < radix } == true }) else { return nil }
        if radix == 10 && digits.count > 1 && digits.first == "0" {
            throw error("leading zeros are not allowed in an integer")
        }
        guard let magnitude = UInt64(digits, radix: radix) else { throw error("the integer is out of range") }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw error("the integer is out of range") }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw error("the integer is out of range") }
        return Int64(magnitude)
    }

    private mutating func parseArray() throws(ConfigDiagnostic) -> [TOMLValue] {
        position += 1
        var values: [TOMLValue] = []
        while true {
            try skipArraySpace()
            guard let byte = peek() else { throw error("unterminated array: expected ']'") }
            if byte == UInt8(ascii: "]") {
                position += 1
                return values
            }
            values.append(try parseValue())
            try skipArraySpace()
            guard let next = peek() else { throw error("unterminated array: expected ']'") }
            if next == UInt8(ascii: ",") {
                position += 1
            } else if next != UInt8(ascii: "]") {
                throw error("expected ',' or ']' in the array, found \(describe(next))")
            }
        }
    }

    /// Spaces, newlines and comments, as allowed between array elements.
    private mutating func skipArraySpace() throws(ConfigDiagnostic) {
        while true {
            skipSpaces()
            if peek() == UInt8(ascii: "#") { try skipComment() }
            guard try consumeNewline() else { return }
        }
    }

    private mutating func parseBasicString() throws(ConfigDiagnostic) -> String {
        position += 1
        var result: [UInt8] = []
        while true {
            guard let byte = peek(), byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") else {
                throw error("unterminated string")
            }
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: result, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escape = peek() else { throw error("unterminated string") }
                position += 1
                switch escape {
                case UInt8(ascii: "\""): result.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): result.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "n"): result.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "t"): result.append(UInt8(ascii: "\t"))
                case UInt8(ascii: "r"): result.append(UInt8(ascii: "\r"))
                case UInt8(ascii: "b"): result.append(0x08)
                case UInt8(ascii: "f"): result.append(0x0C)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let count = escape == UInt8(ascii: "u") ? 4 : 8
                    guard position + count <= bytes.count,
                        let code = UInt32(String(decoding: bytes[position..<position + count], as: UTF8.self), radix: 16),
                        bytes[position..<position + count].allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102) }),
                        let scalar = Unicode.Scalar(code)
                    else {
                        throw error("invalid \\\(Character(Unicode.Scalar(escape))) escape: expected \(count) hex digits of a Unicode scalar")
                    }
                    position += count
                    result.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw error("invalid escape \\\(Character(Unicode.Scalar(escape))) in a string")
                }
            default:
                if byte < 0x20 && byte != UInt8(ascii: "\t") || byte == 0x7F {
                    throw error("control characters must be escaped in a string")
                }
                result.append(byte)
            }
        }
    }

    private mutating func parseLiteralString() throws(ConfigDiagnostic) -> String {
        position += 1
        let start = position
        while true {
            guard let byte = peek(), byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") else {
                throw error("unterminated string")
            }
            if byte == UInt8(ascii: "'") {
                let text = String(decoding: bytes[start..<position], as: UTF8.self)
                position += 1
                return text
            }
            if byte < 0x20 && byte != UInt8(ascii: "\t") || byte == 0x7F {
                throw error("control characters are not allowed in a literal string")
            }
            position += 1
        }
    }

    // MARK: Low level

    private func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipSpaces() {
        while let byte = peek(), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { position += 1 }
    }

    private mutating func skipComment() throws(ConfigDiagnostic) {
        while let byte = peek(), byte != UInt8(ascii: "\n") {
            if byte == UInt8(ascii: "\r") && position + 1 < bytes.count && bytes[position + 1] == UInt8(ascii: "\n") { return }
            if byte < 0x20 && byte != UInt8(ascii: "\t") || byte == 0x7F {
                throw error("control characters are not allowed in a comment")
            }
            position += 1
        }
    }

    /// Consumes `\n` or `\r\n` and counts the line; false when there is none here.
    private mutating func consumeNewline() throws(ConfigDiagnostic) -> Bool {
        guard let byte = peek() else { return false }
        if byte == UInt8(ascii: "\n") {
            position += 1
            line += 1
            return true
        }
        if byte == UInt8(ascii: "\r") {
            guard position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "\n") else {
                throw error("a carriage return must be followed by a newline")
            }
            position += 2
            line += 1
            return true
        }
        return false
    }

    private func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { return "a space" }
        return "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    private func error(_ message: String) -> ConfigDiagnostic {
        ConfigDiagnostic(file: file, line: line, message)
    }
}
