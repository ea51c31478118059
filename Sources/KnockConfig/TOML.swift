/// A TOML value with the line it starts on.
///
/// Every TOML 1.0 value parses. The configuration uses strings, integers, booleans, arrays and
/// tables; floats and dates parse into their own kinds so the config layer can refuse them by key.
public struct TOMLValue: Equatable, Sendable {
    /// The value itself.
    public indirect enum Kind: Equatable, Sendable {
        case string(String)
        case integer(Int64)
        case boolean(Bool)
        /// A binary64 float, including infinities and NaN.
        case float(Double)
        /// An offset date-time, a local date-time, a local date or a local time.
        case dateTime(TOMLDateTime)
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
        case .float: "a float"
        case .dateTime(let value): value.typeName
        case .array: "an array"
        case .table: "a table"
        case .tableArray: "an array of tables"
        }
    }
}

extension TOMLValue.Kind {
    /// Moves out the table this holds, leaving a placeholder, so the caller holds the only
    /// reference and changes it in place instead of copying it; nil (and no change) for other kinds.
    fileprivate mutating func takeTable() -> TOMLTable? {
        guard case .table(let table) = self else { return nil }
        self = .boolean(false)
        return table
    }

    /// Whether this is an array of tables (a test that keeps no copy of the tables).
    fileprivate var isTableArray: Bool {
        if case .tableArray = self { return true }
        return false
    }

    /// Moves out the tables of an array of tables, as ``takeTable()`` does.
    fileprivate mutating func takeTables() -> [TOMLTable]? {
        guard case .tableArray(let tables) = self else { return nil }
        self = .boolean(false)
        return tables
    }
}

/// A calendar date as written: `1979-05-27`.
public struct TOMLDate: Equatable, Sendable {
    /// 0 to 9999.
    public var year: Int
    /// 1 to 12.
    public var month: Int
    /// 1 to the month's last day.
    public var day: Int
}

/// A time of day as written: `07:32:00.999`; digits past nanoseconds are truncated.
public struct TOMLTime: Equatable, Sendable {
    /// 0 to 23.
    public var hour: Int
    /// 0 to 59.
    public var minute: Int
    /// 0 to 60 (60 for a leap second).
    public var second: Int
    /// 0 to 999,999,999.
    public var nanosecond: Int
}

/// One of TOML's four date and time forms, as written (no time-zone arithmetic).
public struct TOMLDateTime: Equatable, Sendable {
    /// The date; nil for a local time.
    public var date: TOMLDate?
    /// The time; nil for a local date.
    public var time: TOMLTime?
    /// Minutes east of UTC (0 for `Z`); nil unless this is an offset date-time.
    public var offsetMinutes: Int?

    /// "an offset date-time", "a local date-time", "a local date" or "a local time".
    public var typeName: String {
        switch (date, time, offsetMinutes) {
        case (.some, .some, .some): "an offset date-time"
        case (.some, .some, nil): "a local date-time"
        case (.some, nil, _): "a local date"
        default: "a local time"
        }
    }
}

/// One `key = value` (or sub-table) of a table, with the line of its key.
public struct TOMLEntry: Equatable, Sendable {
    /// The key.
    public var key: String
    /// The value.
    public var value: TOMLValue
    /// The line of the key (of the header, for a table a header defines).
    public var line: Int
}

/// A TOML table: its entries in file order and the line of its header (0 for the root table).
public struct TOMLTable: Equatable, Sendable {
    /// How a table came to be, which decides what may add to it later (TOML 1.0's redefinition rules).
    enum Origin: Equatable, Sendable {
        /// Made as the parent of a header (`[a.b]` makes `a`): a later `[a]` may still define it.
        case implied
        /// Defined by a `[header]` or as one table of `[[header]]`.
        case header
        /// Made by dotted keys in one section (statements after one header): only that section's
        /// dotted keys may add to it; sub-table headers below it are allowed.
        case dotted(section: Int)
        /// An inline table or a table inside one: nothing may add to it.
        case inline
    }

    /// The entries, in file order.
    public internal(set) var entries: [TOMLEntry] = []
    /// The line of the table's header (0 for the root table).
    public var line: Int
    var origin: Origin
    /// The index in `entries` of each key, so a large table stays linear to build.
    private var positions: [String: Int] = [:]

    init(line: Int, origin: Origin) {
        self.line = line
        self.origin = origin
    }

    /// The entry named `key`, if any.
    public subscript(key: String) -> TOMLEntry? { positions[key].map { entries[$0] } }

    /// Equal entries and line; how the table was written does not matter.
    public static func == (lhs: TOMLTable, rhs: TOMLTable) -> Bool { lhs.line == rhs.line && lhs.entries == rhs.entries }

    fileprivate func index(of key: String) -> Int? { positions[key] }

    fileprivate mutating func append(_ entry: TOMLEntry) {
        positions[entry.key] = entries.count
        entries.append(entry)
    }

    /// Marks this table and the tables in it immutable, as an inline table is.
    fileprivate mutating func freeze() {
        origin = .inline
        for index in entries.indices {
            guard var child = entries[index].value.kind.takeTable() else { continue }
            child.freeze()
            entries[index].value.kind = .table(child)
        }
    }
}

/// A hand-written TOML 1.0 parser that tracks the line of everything.
///
/// It stops at the first syntax error: later lines cannot be read reliably after one. Input is
/// bounded (``maximumSize`` bytes, ``maximumDepth`` levels of nesting), so a hostile file costs
/// linear time and a bounded stack, on `pknock check` and on every daemon reload alike.
public struct TOMLParser {
    /// The largest file accepted, in bytes: 1 MiB, hundreds of times a real configuration.
    public static let maximumSize = 1 << 20
    /// The deepest nesting accepted: 64 levels.
    ///
    /// Table header parts, dotted key parts, arrays and inline tables around a value count
    /// together; a configuration needs three or four.
    public static let maximumDepth = 64

    private let bytes: [UInt8]
    private let file: String
    private var position = 0
    private var line = 1
    private var root = TOMLTable(line: 0, origin: .header)
    private var currentPath: [String] = []
    /// Counts headers; dotted-key tables remember the section that made them.
    private var section = 0
    /// The nesting of what is being parsed, in the sense of ``maximumDepth``.
    private var depth = 0

    private init(_ text: String, file: String) {
        self.bytes = Array(text.utf8)
        self.file = file
    }

    /// Parses `text`; errors name `file` and the line.
    public static func parse(_ text: String, file: String) throws(ConfigDiagnostic) -> TOMLTable {
        let size = text.utf8.count
        if size > maximumSize {
            // Name the line where the limit is crossed: there is no better place, and it keeps
            // the message in the usual file:line form.
            let line = 1 + text.utf8.prefix(maximumSize).reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            throw ConfigDiagnostic(
                file: file, line: line,
                "the file is larger than the limit of 1 MiB (\(maximumSize) bytes; it has \(size)); the limit is crossed on this line")
        }
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
        skipSpaces()
        depth = 0
        let path = try parseKeyPath()
        skipSpaces()
        guard peek() == UInt8(ascii: "]") else { throw error("expected ']' to close the table header") }
        position += 1
        if isArray {
            guard peek() == UInt8(ascii: "]") else { throw error("expected ']]' to close the array-of-tables header") }
            position += 1
        }
        try openTable(path, line: headerLine, isArray: isArray)
        currentPath = path
        section += 1
    }

    private mutating func parseKeyValue() throws(ConfigDiagnostic) {
        let keyLine = line
        depth = currentPath.count
        let keys = try parseKeyPath()
        skipSpaces()
        guard peek() == UInt8(ascii: "=") else { throw error("expected '=' after the key \"\(Self.display(keys))\"") }
        position += 1
        skipSpaces()
        let value = try parseValue()
        let (file, path, section) = (file, currentPath, section)
        try Self.descend(&root, path[...], path: path, into: .header, file: file, line: keyLine) { (table) throws(ConfigDiagnostic) in
            try Self.insert(value, at: keys, into: &table, section: section, prefix: path, file: file, line: keyLine)
        }
    }

    // MARK: Tables

    /// How a path is being walked: to a header's table, or along a dotted key.
    private enum Walk {
        case header
        case dottedKey(section: Int)
    }

    /// Runs `body` on the table at `keys` below `table`, making missing tables and entering the
    /// last table of an array of tables on the way, as TOML does; refuses what TOML forbids.
    ///
    /// `path` is the full path `keys` is a suffix of, for messages. Made tables get `line`, the line
    /// that brought them into being (a `[a.b]` header makes `a` there), so messages about them point
    /// somewhere real. Each child is taken out of its parent while `body` runs, so it is uniquely
    /// referenced and changes in place instead of being copied.
    private static func descend(
        _ table: inout TOMLTable, _ keys: ArraySlice<String>, path: [String], into walk: Walk, file: String, line: Int,
        _ body: (inout TOMLTable) throws(ConfigDiagnostic) -> Void
    ) throws(ConfigDiagnostic) {
        guard let key = keys.first else {
            try body(&table)
            return
        }
        let rest = keys.dropFirst()
        let name = display(path[..<keys.startIndex] + [key])
        func fail(_ message: String) -> ConfigDiagnostic { ConfigDiagnostic(file: file, line: line, message) }
        guard let index = table.index(of: key) else {
            let origin: TOMLTable.Origin
            switch walk {
            case .header: origin = .implied
            case .dottedKey(let section): origin = .dotted(section: section)
            }
            var child = TOMLTable(line: line, origin: origin)
            try descend(&child, rest, path: path, into: walk, file: file, line: line, body)
            table.append(TOMLEntry(key: key, value: TOMLValue(kind: .table(child), line: line), line: line))
            return
        }
        let entryLine = table.entries[index].line
        if var child = table.entries[index].value.kind.takeTable() {
            switch (child.origin, walk) {
            case (.inline, _):
                throw fail("\"\(name)\" is an inline table (line \(entryLine)); nothing can be added to it")
            case (.header, .dottedKey):
                throw fail("table [\(name)] is defined by its header on line \(child.line); dotted keys cannot add to it")
            case (.dotted(let made), .dottedKey(let section)) where made != section:
                throw fail("table \"\(name)\" is defined by dotted keys on line \(child.line); it cannot be extended here")
            case (.implied, .dottedKey(let section)):
                child.origin = .dotted(section: section)
            default:
                break
            }
            try descend(&child, rest, path: path, into: walk, file: file, line: line, body)
            table.entries[index].value.kind = .table(child)
        } else if table.entries[index].value.kind.isTableArray {
            guard case .header = walk else {
                throw fail("\"\(name)\" is an array of tables (line \(entryLine)); dotted keys cannot add to it")
            }
            guard var children = table.entries[index].value.kind.takeTables(), var last = children.popLast() else { return }
            try descend(&last, rest, path: path, into: walk, file: file, line: line, body)
            children.append(last)
            table.entries[index].value.kind = .tableArray(children)
        } else {
            throw fail("\"\(name)\" is \(table.entries[index].value.typeName) (line \(entryLine)), not a table")
        }
    }

    /// Adds `value` at the dotted key `keys` (relative to `table`, the table at `prefix`).
    private static func insert(
        _ value: TOMLValue, at keys: [String], into table: inout TOMLTable, section: Int, prefix: [String], file: String,
        line: Int
    ) throws(ConfigDiagnostic) {
        let path = prefix + keys
        try descend(&table, path[prefix.count..<path.count - 1], path: path, into: .dottedKey(section: section), file: file, line: line) {
            (parent) throws(ConfigDiagnostic) in
            guard let key = keys.last else { return }
            if let existing = parent[key] {
                throw ConfigDiagnostic(
                    file: file, line: line, "duplicate key \"\(display(keys))\" (first defined on line \(existing.line))")
            }
            parent.append(TOMLEntry(key: key, value: value, line: line))
        }
    }

    private mutating func openTable(_ path: [String], line headerLine: Int, isArray: Bool) throws(ConfigDiagnostic) {
        let file = file
        let name = Self.display(path)
        guard let last = path.last else { return }
        let header = isArray ? "[[\(name)]]" : "[\(name)]"
        try Self.descend(&root, path.dropLast(), path: path, into: .header, file: file, line: headerLine) {
            (parent) throws(ConfigDiagnostic) in
            func fail(_ message: String) -> ConfigDiagnostic { ConfigDiagnostic(file: file, line: headerLine, message) }
            guard let index = parent.index(of: last) else {
                let table = TOMLTable(line: headerLine, origin: .header)
                let kind: TOMLValue.Kind = isArray ? .tableArray([table]) : .table(table)
                parent.append(TOMLEntry(key: last, value: TOMLValue(kind: kind, line: headerLine), line: headerLine))
                return
            }
            let (entryLine, typeName) = (parent.entries[index].line, parent.entries[index].value.typeName)
            if isArray, parent.entries[index].value.kind.isTableArray, var tables = parent.entries[index].value.kind.takeTables() {
                tables.append(TOMLTable(line: headerLine, origin: .header))
                parent.entries[index].value.kind = .tableArray(tables)
                return
            }
            switch (parent.entries[index].value.kind, isArray) {
            case (.table(let implied), false) where implied.origin == .implied:
                guard var table = parent.entries[index].value.kind.takeTable() else { return }
                table.origin = .header
                table.line = headerLine
                // From now on the table is where its header is, not where it was implied.
                parent.entries[index] = TOMLEntry(key: last, value: TOMLValue(kind: .table(table), line: headerLine), line: headerLine)
            case (.table(let table), false) where table.origin == .header:
                throw fail("table [\(name)] is defined twice (first on line \(table.line))")
            case (.table(let table), false) where table.origin != .inline:
                throw fail("table [\(name)] is already defined by dotted keys on line \(table.line)")
            case (.table(let table), _) where table.origin == .inline:
                throw fail("\(header) conflicts with \"\(last)\", an inline table defined on line \(entryLine)")
            default:
                throw fail("\(header) conflicts with \"\(last)\", \(typeName) defined on line \(entryLine)")
            }
        }
    }

    // MARK: Keys

    /// `key`, `a.b.c`, `"quoted".'literal'`, with spaces allowed around the dots.
    private mutating func parseKeyPath() throws(ConfigDiagnostic) -> [String] {
        var keys = [try parseKey()]
        while true {
            skipSpaces()
            guard peek() == UInt8(ascii: ".") else { return keys }
            position += 1
            skipSpaces()
            keys.append(try parseKey())
            depth += 1
            try checkDepth()
        }
    }

    private mutating func parseKey() throws(ConfigDiagnostic) -> String {
        guard let byte = peek() else { throw error("expected a key") }
        switch byte {
        case UInt8(ascii: "\""):
            if startsWith("\"\"\"") { throw error("a key cannot be a multi-line string") }
            return try parseBasicString()
        case UInt8(ascii: "'"):
            if startsWith("'''") { throw error("a key cannot be a multi-line string") }
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

    /// A key path for messages: dotted, control characters escaped (a quoted key may hold any).
    private static func display(_ keys: some Collection<String>) -> String {
        keys.map { key in
            key.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? $0.escaped(asASCII: true) : String($0) }.joined()
        }.joined(separator: ".")
    }

    // MARK: Values

    private mutating func parseValue() throws(ConfigDiagnostic) -> TOMLValue {
        let valueLine = line
        guard let byte = peek() else { throw error("expected a value") }
        switch byte {
        case UInt8(ascii: "\""):
            let text = startsWith("\"\"\"") ? try parseMultiLineBasicString() : try parseBasicString()
            return TOMLValue(kind: .string(text), line: valueLine)
        case UInt8(ascii: "'"):
            let text = startsWith("'''") ? try parseMultiLineLiteralString() : try parseLiteralString()
            return TOMLValue(kind: .string(text), line: valueLine)
        case UInt8(ascii: "["):
            depth += 1
            defer { depth -= 1 }
            try checkDepth()
            return TOMLValue(kind: .array(try parseArray()), line: valueLine)
        case UInt8(ascii: "{"):
            depth += 1
            defer { depth -= 1 }
            try checkDepth()
            return TOMLValue(kind: .table(try parseInlineTable()), line: valueLine)
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"):
            throw error("expected a value")
        default:
            let start = position
            while let next = peek(), !Self.endsBareValue(next) { position += 1 }
            var token = Array(bytes[start..<position])
            // `1979-05-27 07:32:00`: a space may separate a date from its time.
            guard !token.isEmpty else { throw error("expected a value, found \(describe(byte))") }
            if token.count == 10, Self.isDate(token[...]), peek() == UInt8(ascii: " "), position + 3 < bytes.count,
                Self.isDigit(bytes[position + 1]), Self.isDigit(bytes[position + 2]), bytes[position + 3] == UInt8(ascii: ":")
            {
                position += 1
                let timeStart = position
                while let next = peek(), !Self.endsBareValue(next) { position += 1 }
                token += [UInt8(ascii: "T")] + bytes[timeStart..<position]
            }
            return TOMLValue(kind: try classify(token), line: valueLine)
        }
    }

    private func checkDepth() throws(ConfigDiagnostic) {
        if depth > Self.maximumDepth {
            throw error("nested too deeply: tables, arrays and inline tables may nest at most \(Self.maximumDepth) levels")
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

    /// Decides what an unquoted value is: a boolean, a number, a date or time, or nothing valid.
    ///
    /// Messages never quote the value: it may be a secret someone forgot to put in quotes.
    private func classify(_ token: [UInt8]) throws(ConfigDiagnostic) -> TOMLValue.Kind {
        switch String(decoding: token, as: UTF8.self) {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan": return .float(.nan)
        case "-nan": return .float(-.nan)
        default: break
        }
        if Self.isDate(token[...])
            || (token.count >= 3 && Self.isDigit(token[0]) && Self.isDigit(token[1]) && token[2] == UInt8(ascii: ":"))
        {
            return .dateTime(try parseDateTime(token))
        }
        if let value = try parseInteger(token) { return .integer(value) }
        if let value = try parseFloat(token) { return .float(value) }
        throw error("invalid value (a string needs quotes)")
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// Whether `token` starts like a date: four digits and a dash.
    private static func isDate(_ token: ArraySlice<UInt8>) -> Bool {
        let start = token.startIndex
        return token.count >= 5 && token[start..<start + 4].allSatisfy(isDigit) && token[start + 4] == UInt8(ascii: "-")
    }

    /// The end of a run of digits in `radix` with single underscores between digits, starting at
    /// `start`; nil when there is no digit there or an underscore is misplaced.
    private static func digitRun(_ token: [UInt8], from start: Int, radix: Int = 10) -> Int? {
        func isDigit(_ byte: UInt8) -> Bool {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
            default: return false
            }
            return value < radix
        }
        guard start < token.count, isDigit(token[start]) else { return nil }
        var index = start + 1
        while index < token.count {
            if isDigit(token[index]) {
                index += 1
            } else if token[index] == UInt8(ascii: "_") {
                guard index + 1 < token.count, isDigit(token[index + 1]) else { return nil }
                index += 2
            } else {
                break
            }
        }
        return index
    }

    /// An integer in TOML syntax, nil when `token` is not one, an error when it is out of range.
    private func parseInteger(_ token: [UInt8]) throws(ConfigDiagnostic) -> Int64? {
        var start = 0
        var negative = false
        var radix = 10
        if token.first == UInt8(ascii: "+") || token.first == UInt8(ascii: "-") {
            negative = token.first == UInt8(ascii: "-")
            start = 1
        } else if token.count > 2 && token[0] == UInt8(ascii: "0") {
            switch token[1] {
            case UInt8(ascii: "x"): radix = 16
            case UInt8(ascii: "o"): radix = 8
            case UInt8(ascii: "b"): radix = 2
            default: break
            }
            if radix != 10 { start = 2 }
        }
        guard Self.digitRun(token, from: start, radix: radix) == token.count else { return nil }
        let digits = String(decoding: token[start...].filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
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

    /// A float in TOML syntax (a fraction, an exponent or both), nil when `token` is not one.
    private func parseFloat(_ token: [UInt8]) throws(ConfigDiagnostic) -> Double? {
        var index = token.first == UInt8(ascii: "+") || token.first == UInt8(ascii: "-") ? 1 : 0
        let integerStart = index
        guard let integerEnd = Self.digitRun(token, from: index) else { return nil }
        index = integerEnd
        var isFloat = false
        if index < token.count && token[index] == UInt8(ascii: ".") {
            guard let end = Self.digitRun(token, from: index + 1) else { return nil }
            index = end
            isFloat = true
        }
        if index < token.count && (token[index] == UInt8(ascii: "e") || token[index] == UInt8(ascii: "E")) {
            index += 1
            if index < token.count && (token[index] == UInt8(ascii: "+") || token[index] == UInt8(ascii: "-")) { index += 1 }
            guard let end = Self.digitRun(token, from: index) else { return nil }
            index = end
            isFloat = true
        }
        guard isFloat && index == token.count else { return nil }
        if integerEnd - integerStart > 1 && token[integerStart] == UInt8(ascii: "0") {
            throw error("leading zeros are not allowed in a float")
        }
        guard let value = Double(String(decoding: token.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)) else { return nil }
        guard value.isFinite else { throw error("the float is out of range") }
        return value
    }

    /// `1979-05-27T07:32:00Z`, `1979-05-27T07:32:00.5`, `1979-05-27` or `07:32:00` (`t` or a space
    /// may stand for `T`, `z` for `Z`).
    private func parseDateTime(_ token: [UInt8]) throws(ConfigDiagnostic) -> TOMLDateTime {
        let bad = error("invalid date or time: expected YYYY-MM-DD, HH:MM:SS[.fraction] or YYYY-MM-DDTHH:MM:SS[.fraction][Z or ±HH:MM]")
        var index = 0
        func number(_ count: Int) -> Int? {
            guard index + count <= token.count, token[index..<index + count].allSatisfy(Self.isDigit) else { return nil }
            defer { index += count }
            return token[index..<index + count].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        }
        func expect(_ byte: Character) -> Bool {
            guard index < token.count, token[index] == byte.asciiValue else { return false }
            index += 1
            return true
        }
        var result = TOMLDateTime()
        if token.count > 4 && token[4] == UInt8(ascii: "-") {
            guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2) else { throw bad }
            guard (1...12).contains(month), (1...Self.days(inMonth: month, year: year)).contains(day) else {
                throw error("invalid date: no such day in the calendar")
            }
            result.date = TOMLDate(year: year, month: month, day: day)
            if index == token.count { return result }
            guard expect("T") || expect("t") else { throw bad }
        }
        guard let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2) else { throw bad }
        guard hour < 24, minute < 60, second <= 60 else { throw error("invalid time: hours 00-23, minutes 00-59, seconds 00-60") }
        var nanosecond = 0
        if expect(".") {
            let start = index
            while index < token.count && Self.isDigit(token[index]) { index += 1 }
            guard index > start else { throw bad }
            // Digits past nanoseconds are truncated, as TOML allows.
            for digit in start..<start + 9 {
                nanosecond = nanosecond * 10 + (digit < index ? Int(token[digit] - UInt8(ascii: "0")) : 0)
            }
        }
        result.time = TOMLTime(hour: hour, minute: minute, second: second, nanosecond: nanosecond)
        if index == token.count { return result }
        guard result.date != nil else { throw bad }
        if expect("Z") || expect("z") {
            result.offsetMinutes = 0
        } else if index < token.count, token[index] == UInt8(ascii: "+") || token[index] == UInt8(ascii: "-") {
            let sign = token[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(2), expect(":"), let minutes = number(2) else { throw bad }
            guard hours < 24, minutes < 60 else { throw error("invalid time offset: hours 00-23, minutes 00-59") }
            result.offsetMinutes = sign * (hours * 60 + minutes)
        }
        guard index == token.count else { throw bad }
        return result
    }

    private static func days(inMonth month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private mutating func parseArray() throws(ConfigDiagnostic) -> [TOMLValue] {
        let openLine = line
        position += 1
        var values: [TOMLValue] = []
        while true {
            try skipArraySpace()
            guard let byte = peek() else { throw ConfigDiagnostic(file: file, line: openLine, "unterminated array: expected ']'") }
            if byte == UInt8(ascii: "]") {
                position += 1
                return values
            }
            values.append(try parseValue())
            try skipArraySpace()
            guard let next = peek() else { throw ConfigDiagnostic(file: file, line: openLine, "unterminated array: expected ']'") }
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

    /// `{ key = value, a.b = value }` on one line, no trailing comma (TOML 1.0); immutable once closed.
    private mutating func parseInlineTable() throws(ConfigDiagnostic) -> TOMLTable {
        let tableLine = line
        position += 1
        var table = TOMLTable(line: tableLine, origin: .dotted(section: -1))
        let outerDepth = depth
        skipSpaces()
        if peek() == UInt8(ascii: "}") {
            position += 1
            table.freeze()
            return table
        }
        while true {
            skipSpaces()
            try expectInlineContent()
            if peek() == UInt8(ascii: "}") { throw error("a trailing comma is not allowed in an inline table (TOML 1.0)") }
            let keyLine = line
            depth = outerDepth
            let keys = try parseKeyPath()
            skipSpaces()
            guard peek() == UInt8(ascii: "=") else { throw error("expected '=' after the key \"\(Self.display(keys))\"") }
            position += 1
            skipSpaces()
            try expectInlineContent()
            let value = try parseValue()
            depth = outerDepth
            try Self.insert(value, at: keys, into: &table, section: -1, prefix: [], file: file, line: keyLine)
            skipSpaces()
            try expectInlineContent()
            guard let next = peek() else { throw error("unterminated inline table: expected '}'") }
            position += 1
            if next == UInt8(ascii: "}") {
                table.freeze()
                return table
            }
            guard next == UInt8(ascii: ",") else {
                position -= 1
                throw error("expected ',' or '}' in the inline table, found \(describe(next))")
            }
        }
    }

    /// Inside an inline table: neither a line end (TOML 1.0 keeps inline tables on one line) nor
    /// the end of the file.
    private func expectInlineContent() throws(ConfigDiagnostic) {
        guard let byte = peek() else { throw error("unterminated inline table: expected '}'") }
        if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "#") {
            throw error("an inline table must be on one line (TOML 1.0); use a [table] header for more")
        }
    }

    // MARK: Strings

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
                try parseEscape(into: &result, multiLine: false)
            default:
                try checkStringByte(byte)
                result.append(byte)
            }
        }
    }

    /// `"""…"""`: a newline right after the opening quotes is dropped; a backslash at the end of a
    /// line drops it and the whitespace after it; up to two quotes may precede the closing three.
    private mutating func parseMultiLineBasicString() throws(ConfigDiagnostic) -> String {
        let openLine = line
        position += 3
        _ = try consumeNewline()
        var result: [UInt8] = []
        while true {
            guard let byte = peek() else {
                throw ConfigDiagnostic(file: file, line: openLine, "unterminated multi-line string: expected '\"\"\"'")
            }
            if byte == UInt8(ascii: "\"") {
                if let quotes = try closingQuotes(UInt8(ascii: "\"")) {
                    result += repeatElement(UInt8(ascii: "\""), count: quotes)
                    return String(decoding: result, as: UTF8.self)
                }
                result.append(byte)
                continue
            }
            if let newline = try consumeNewlineBytes() {
                result += newline
                continue
            }
            position += 1
            if byte == UInt8(ascii: "\\") {
                try parseEscape(into: &result, multiLine: true)
            } else {
                try checkStringByte(byte)
                result.append(byte)
            }
        }
    }

    /// At a quote inside a multi-line string, whether the run of quotes there closes the string.
    ///
    /// A run of 3 to 5 closes it: consumes the run and returns how many quotes belong to the
    /// string (0 to 2). A shorter run does not: consumes one quote, for the caller to keep, and
    /// returns nil.
    private mutating func closingQuotes(_ quote: UInt8) throws(ConfigDiagnostic) -> Int? {
        var count = 0
        while peek() == quote {
            position += 1
            count += 1
        }
        if count < 3 {
            position -= count
            position += 1
            return nil
        }
        guard count <= 5 else { throw error("too many quotes: at most two may stand before the closing three") }
        return count - 3
    }

    private mutating func parseEscape(into result: inout [UInt8], multiLine: Bool) throws(ConfigDiagnostic) {
        guard let escape = peek() else { throw error("unterminated string") }
        switch escape {
        case UInt8(ascii: "\""): result.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): result.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "n"): result.append(UInt8(ascii: "\n"))
        case UInt8(ascii: "t"): result.append(UInt8(ascii: "\t"))
        case UInt8(ascii: "r"): result.append(UInt8(ascii: "\r"))
        case UInt8(ascii: "b"): result.append(0x08)
        case UInt8(ascii: "f"): result.append(0x0C)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            position += 1
            let count = escape == UInt8(ascii: "u") ? 4 : 8
            let letter = escape == UInt8(ascii: "u") ? "u" : "U"
            guard position + count <= bytes.count,
                bytes[position..<position + count].allSatisfy({ Self.isDigit($0) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102) }),
                let code = UInt32(String(decoding: bytes[position..<position + count], as: UTF8.self), radix: 16),
                let scalar = Unicode.Scalar(code)
            else {
                throw error("invalid \\\(letter) escape: expected \(count) hex digits of a Unicode scalar")
            }
            position += count
            result += Array(String(Character(scalar)).utf8)
            return
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
            // A line-ending backslash: only in a multi-line string, and only spaces may follow it
            // on its line.
            var probe = position
            while probe < bytes.count && (bytes[probe] == UInt8(ascii: " ") || bytes[probe] == UInt8(ascii: "\t")) { probe += 1 }
            let atLineEnd =
                probe < bytes.count
                && (bytes[probe] == UInt8(ascii: "\n")
                    || (bytes[probe] == UInt8(ascii: "\r") && probe + 1 < bytes.count && bytes[probe + 1] == UInt8(ascii: "\n")))
            guard atLineEnd else {
                if escape == UInt8(ascii: "\n") || escape == UInt8(ascii: "\r") || probe == bytes.count {
                    throw error("a backslash at the end of a line continues only a multi-line string (\"\"\"…\"\"\")")
                }
                throw error("invalid escape: a backslash followed by \(describe(escape)) in a string")
            }
            guard multiLine else {
                throw error("a backslash at the end of a line continues only a multi-line string (\"\"\"…\"\"\")")
            }
            position = probe
            while true {
                skipSpaces()
                guard try consumeNewline() else { break }
            }
            return
        default:
            if escape >= 0x21 && escape < 0x7F {
                throw error("invalid escape \\\(Character(Unicode.Scalar(escape))) in a string")
            }
            throw error("invalid escape: a backslash followed by \(describe(escape)) in a string")
        }
        position += 1
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

    /// `'''…'''`: as written, except a newline right after the opening quotes; no escapes.
    private mutating func parseMultiLineLiteralString() throws(ConfigDiagnostic) -> String {
        let openLine = line
        position += 3
        _ = try consumeNewline()
        var result: [UInt8] = []
        while true {
            guard let byte = peek() else {
                throw ConfigDiagnostic(file: file, line: openLine, "unterminated multi-line string: expected \"'''\"")
            }
            if byte == UInt8(ascii: "'") {
                if let quotes = try closingQuotes(UInt8(ascii: "'")) {
                    result += repeatElement(UInt8(ascii: "'"), count: quotes)
                    return String(decoding: result, as: UTF8.self)
                }
                result.append(byte)
                continue
            }
            if let newline = try consumeNewlineBytes() {
                result += newline
                continue
            }
            if byte < 0x20 && byte != UInt8(ascii: "\t") || byte == 0x7F {
                throw error("control characters are not allowed in a literal string")
            }
            result.append(byte)
            position += 1
        }
    }

    /// Control characters other than tab must be escaped in a basic string.
    private func checkStringByte(_ byte: UInt8) throws(ConfigDiagnostic) {
        if byte < 0x20 && byte != UInt8(ascii: "\t") || byte == 0x7F {
            throw error("control characters must be escaped in a string")
        }
    }

    // MARK: Low level

    private func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    private func startsWith(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        return text.withUTF8Buffer { bytes[position..<position + count].elementsEqual($0) }
    }

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
        try consumeNewlineBytes() != nil
    }

    /// Consumes `\n` or `\r\n` and counts the line, returning what it consumed; nil when there is none here.
    private mutating func consumeNewlineBytes() throws(ConfigDiagnostic) -> ArraySlice<UInt8>? {
        guard let byte = peek() else { return nil }
        if byte == UInt8(ascii: "\n") {
            position += 1
            line += 1
            return bytes[position - 1..<position]
        }
        if byte == UInt8(ascii: "\r") {
            guard position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "\n") else {
                throw error("a carriage return must be followed by a newline")
            }
            position += 2
            line += 1
            return bytes[position - 2..<position]
        }
        return nil
    }

    private func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { return "a space" }
        if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { return "the end of the line" }
        return "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    private func error(_ message: String) -> ConfigDiagnostic {
        ConfigDiagnostic(file: file, line: line, message)
    }
}
