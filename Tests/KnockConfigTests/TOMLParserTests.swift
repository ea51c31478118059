import Testing

@testable import KnockConfig

/// Shared helpers for the TOML parser's tests: documents are named `t.toml`.
enum TOMLFixture {
    static func parse(_ text: String) throws(ConfigDiagnostic) -> TOMLTable {
        try TOMLParser.parse(text, file: "t.toml")
    }

    /// The diagnostic a document fails with; records an issue when it parses.
    static func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigDiagnostic? {
        do {
            _ = try parse(text)
            Issue.record("expected a syntax error", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    /// The value of `key` (dotted: `a.b.c`, through tables) in `text`; records an issue when missing.
    static func value(_ key: String, in text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> TOMLValue? {
        var table = try parse(text)
        let parts = key.split(separator: ".").map(String.init)
        for (index, part) in parts.enumerated() {
            guard let entry = table[part] else {
                Issue.record("no key \(part) in \(key)", sourceLocation: sourceLocation)
                return nil
            }
            if index == parts.count - 1 { return entry.value }
            guard case .table(let next) = entry.value.kind else {
                Issue.record("\(part) is not a table", sourceLocation: sourceLocation)
                return nil
            }
            table = next
        }
        return nil
    }
}

@Suite struct TOMLParserTests {
    private func parse(_ text: String) throws(ConfigDiagnostic) -> TOMLTable { try TOMLFixture.parse(text) }

    private func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigDiagnostic? {
        TOMLFixture.failure(text, sourceLocation: sourceLocation)
    }

    @Test func parsesTablesArraysOfTablesAndLines() throws {
        let root = try parse(
            """
            # leading comment
            top = 1

            [daemon]   # trailing comment
            table = "pknock"
            "quoted key" = 'literal \\n stays'

            [[rule]]
            name = "A"
            [[rule]]
            name = "B"
            """)
        #expect(root["top"]?.value.kind == .integer(1))
        #expect(root["top"]?.line == 2)
        guard case .table(let daemon)? = root["daemon"]?.value.kind else {
            Issue.record("no daemon table")
            return
        }
        #expect(daemon.line == 4)
        #expect(daemon["table"]?.value == TOMLValue(kind: .string("pknock"), line: 5))
        #expect(daemon["quoted key"]?.value.kind == .string("literal \\n stays"))
        guard case .tableArray(let rules)? = root["rule"]?.value.kind else {
            Issue.record("no rule array")
            return
        }
        #expect(rules.map(\.line) == [8, 10])
        #expect(rules.map { $0["name"]?.value.kind } == [.string("A"), .string("B")])
        #expect(rules[1]["name"]?.line == 11)
    }

    @Test func dottedHeadersMakeNestedTables() throws {
        let root = try parse("[a.b]\nx = 1\n[[a.c]]\ny = 2\n[[a.c]]\ny = 3\n[a]\nz = true\n")
        guard case .table(let a)? = root["a"]?.value.kind else {
            Issue.record("no table a")
            return
        }
        guard case .table(let b)? = a["b"]?.value.kind, case .tableArray(let c)? = a["c"]?.value.kind else {
            Issue.record("no a.b or a.c")
            return
        }
        #expect(b["x"]?.value.kind == .integer(1))
        #expect(c.map { $0["y"]?.value.kind } == [.integer(2), .integer(3)])
        #expect(a["z"]?.value.kind == .boolean(true))
    }

    @Test func basicStringEscapes() throws {
        let root = try parse(#"s = "q\" b\\ n\n t\t u\u00e9 U\U0001F600""#)
        #expect(root["s"]?.value.kind == .string("q\" b\\ n\n t\t u\u{e9} U\u{1F600}"))
    }

    @Test(arguments: [
        ("n = 0", Int64(0)), ("n = 42", 42), ("n = +7", 7), ("n = -7", -7), ("n = 65_536", 65536),
        ("n = 1_000_000", 1_000_000), ("n = 0x1F", 31), ("n = 0o17", 15), ("n = 0b101", 5),
        ("n = 9223372036854775807", Int64.max), ("n = -9223372036854775808", Int64.min),
    ])
    func integers(text: String, expected: Int64) throws {
        #expect(try parse(text)["n"]?.value.kind == .integer(expected))
    }

    @Test func booleans() throws {
        let root = try parse("a = true\nb = false")
        #expect(root["a"]?.value.kind == .boolean(true))
        #expect(root["b"]?.value.kind == .boolean(false))
    }

    @Test func multiLineArraysWithCommentsAndTrailingComma() throws {
        let root = try parse(
            """
            knock = [
              2002,   # first
              "2001:udp",
              # a comment line
              2004,
            ]
            empty = []
            nested = [[1], [2, 3]]
            after = 1
            """)
        guard case .array(let values)? = root["knock"]?.value.kind else {
            Issue.record("no array")
            return
        }
        #expect(values.map(\.kind) == [.integer(2002), .string("2001:udp"), .integer(2004)])
        #expect(values.map(\.line) == [2, 3, 5])
        #expect(root["empty"]?.value.kind == .array([]))
        #expect(root["after"]?.line == 9)
    }

    @Test func windowsLineEndingsAndByteOrderMark() throws {
        let root = try parse("\u{FEFF}a = 1\r\n[t]\r\nb = 'x'\r\n")
        #expect(root["a"]?.value.kind == .integer(1))
        guard case .table(let t)? = root["t"]?.value.kind else {
            Issue.record("no table")
            return
        }
        #expect(t["b"]?.line == 3)
    }

    @Test(arguments: [
        ("a = 1\na = 2", 2, "duplicate key \"a\" (first defined on line 1)"),
        ("[t]\nx = 1\n\n[t]", 4, "table [t] is defined twice (first on line 1)"),
        ("[[r]]\n[r]", 2, "[r] conflicts with \"r\", an array of tables defined on line 1"),
        ("r = 1\n[[r]]", 2, "[[r]] conflicts with \"r\", an integer defined on line 1"),
        ("a = \"open", 1, "unterminated string"),
        ("a = 'open\nb = 1", 1, "unterminated string"),
        ("a = \"\\x\"", 1, "invalid escape \\x in a string"),
        ("a = \"\\u12\"", 1, "invalid \\u escape: expected 4 hex digits of a Unicode scalar"),
        ("a 1", 1, "expected '=' after the key \"a\""),
        ("a = 1 2", 1, "expected the end of the line, found '2'"),
        ("a =", 1, "expected a value"),
        ("a = yes", 1, "invalid value (a string needs quotes)"),
        ("a = 007", 1, "leading zeros are not allowed in an integer"),
        ("a = 1__0", 1, "invalid value (a string needs quotes)"),
        ("a = 9223372036854775808", 1, "the integer is out of range"),
        ("a = [1, 2", 1, "unterminated array: expected ']'"),
        ("a = [1 2]", 1, "expected ',' or ']' in the array, found '2'"),
        ("[t", 1, "expected ']' to close the table header"),
        ("[[t]", 1, "expected ']]' to close the array-of-tables header"),
        ("= 1", 1, "expected a key, found '='"),
        ("a = 1\rb = 2", 1, "a carriage return must be followed by a newline"),
    ])
    func syntaxErrorsNameFileAndLine(text: String, line: Int, message: String) throws {
        let diagnostic = try #require(failure(text))
        #expect(diagnostic.file == "t.toml")
        #expect(diagnostic.line == line)
        #expect(diagnostic.message == message)
    }

    @Test func parseErrorsComeThroughTheLoader() {
        #expect(throws: ConfigError(ConfigDiagnostic(file: "x.toml", line: 2, "duplicate key \"name\" (first defined on line 1)"))) {
            try ConfigLoader.parseTOML("name = 1\nname = 2", file: "x.toml", secrets: InMemorySecretSource())
        }
    }
}
