import Testing

@testable import KnockConfig

/// TOML 1.0 keys (bare, quoted, dotted) and the rules about defining tables.
@Suite struct TOMLKeyTableTests {
    @Test(arguments: [
        ("bare_key-1 = 1", "bare_key-1"),
        ("1234 = 1", "1234"),
        (#""quoted key" = 1"#, "quoted key"),
        (#""ʎǝʞ" = 1"#, "ʎǝʞ"),
        (#""a\tb\u00e9" = 1"#, "a\tb\u{e9}"),
        ("'literal \\n' = 1", "literal \\n"),
        (#""" = 1"#, ""),
        ("'' = 1", ""),
        (#""a.b" = 1"#, "a.b"),
    ])
    func singleKeys(text: String, key: String) throws {
        let root = try TOMLFixture.parse(text)
        #expect(root.entries.map(\.key) == [key])
        #expect(root[key]?.value.kind == .integer(1))
    }

    @Test(arguments: [
        "a.b.c = 1",
        "a . b . c = 1",
        "a\t.\tb.c = 1",
        #"a."b".'c' = 1"#,
    ])
    func dottedKeysMakeTables(text: String) throws {
        let value = try TOMLFixture.value("a.b.c", in: text)
        #expect(value == TOMLValue(kind: .integer(1), line: 1))
    }

    @Test func dottedKeysUnderHeadersAndNumbersAsKeys() throws {
        let text = """
            [daemon]
            spa.window = 5
            spa.clock = "x"
            3.14159 = "pi"
            [other]
            """
        #expect(try TOMLFixture.value("daemon.spa.window", in: text)?.kind == .integer(5))
        #expect(try TOMLFixture.value("daemon.spa.clock", in: text)?.line == 3)
        #expect(try TOMLFixture.value("daemon.3.14159", in: text)?.kind == .string("pi"))
        let root = try TOMLFixture.parse(text)
        #expect(root.entries.map(\.key) == ["daemon", "other"])
    }

    @Test func rootDottedKeyIsTheSameAsAHeader() throws {
        let dotted = try TOMLFixture.value("daemon.table", in: "daemon.table = \"pk\"")
        let headed = try TOMLFixture.value("daemon.table", in: "[daemon]\ntable = \"pk\"")
        #expect(dotted?.kind == .string("pk"))
        #expect(dotted?.kind == headed?.kind)
    }

    /// Documents TOML 1.0 allows although they come close to redefining something.
    @Test(arguments: [
        "[a.b]\nx = 1\n[a]\ny = 2",
        "[a]\nb.c = 1\n[a.b.d]\ne = 2",
        "[[a]]\n[a.b]\nx = 1\n[[a]]\n[a.b]\nx = 2",
        "a.b = 1\na.c = 2",
        "[a.b.c]\nz = 1\n[a]\nb.d = 2",
        "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true",
        "a = [{ b = 1 }, { b = 2 }]",
        "[a]\n[b]\n[a.c]",
    ])
    func allowedRedefinitions(text: String) throws {
        _ = try TOMLFixture.parse(text)
    }

    @Test func arraysOfTablesNestAndSubTablesGoToTheLastOne() throws {
        let root = try TOMLFixture.parse("[[a]]\nx = 1\n[a.b]\ny = 2\n[[a]]\nx = 3\n[[a.c]]\nz = 4\n[[a.c]]\nz = 5\n")
        guard case .tableArray(let tables)? = root["a"]?.value.kind else {
            Issue.record("no array of tables")
            return
        }
        #expect(tables.map(\.line) == [1, 5])
        guard case .table(let b)? = tables[0]["b"]?.value.kind, case .tableArray(let c)? = tables[1]["c"]?.value.kind else {
            Issue.record("no a[0].b or a[1].c")
            return
        }
        #expect(b["y"]?.value.kind == .integer(2))
        #expect(c.map { $0["z"]?.value.kind } == [.integer(4), .integer(5)])
        #expect(tables[1]["b"] == nil)
    }

    @Test(arguments: [
        ("a = 1\na = 2", 2, "duplicate key \"a\" (first defined on line 1)"),
        ("a.b = 1\na.b = 2", 2, "duplicate key \"a.b\" (first defined on line 1)"),
        ("a = 1\na.b = 2", 2, "\"a\" is an integer (line 1), not a table"),
        ("a.b = 1\na.b.c = 2", 2, "\"a.b\" is an integer (line 1), not a table"),
        ("a.b = 1\n[a]", 2, "table [a] is already defined by dotted keys on line 1"),
        ("[t]\na.b = 1\n[t.a]", 3, "table [t.a] is already defined by dotted keys on line 2"),
        ("[a.b]\nx = 1\n[a]\nb.y = 2", 4, "table [a.b] is defined by its header on line 1; dotted keys cannot add to it"),
        ("[a.b.c]\n[a]\nb.c.d = 1", 3, "table [a.b.c] is defined by its header on line 1; dotted keys cannot add to it"),
        ("[t]\nx = 1\n\n[t]", 4, "table [t] is defined twice (first on line 1)"),
        ("[a.b]\n[a]\nx = 1\n[a]", 4, "table [a] is defined twice (first on line 2)"),
        ("[a.b]\n[a]\nb = 1", 3, "duplicate key \"b\" (first defined on line 1)"),
        ("[[r]]\n[r]", 2, "[r] conflicts with \"r\", an array of tables defined on line 1"),
        ("[r]\n[[r]]", 2, "[[r]] conflicts with \"r\", a table defined on line 1"),
        ("r = 1\n[[r]]", 2, "[[r]] conflicts with \"r\", an integer defined on line 1"),
        ("r = [1]\n[[r]]", 2, "[[r]] conflicts with \"r\", an array defined on line 1"),
        ("r = []\n[r.x]", 2, "\"r\" is an array (line 1), not a table"),
        ("[[a]]\nb = 1\n[a.b]", 3, "[a.b] conflicts with \"b\", an integer defined on line 2"),
        ("[[a.b]]\n[a]\nb.c = 1", 3, "\"a.b\" is an array of tables (line 1); dotted keys cannot add to it"),
        ("a = { x = 1 }\na.y = 2", 2, "\"a\" is an inline table (line 1); nothing can be added to it"),
        ("a = { x = 1 }\n[a.b]", 2, "\"a\" is an inline table (line 1); nothing can be added to it"),
        ("a = { b = { c = 1 } }\n[a.b.d]", 2, "\"a\" is an inline table (line 1); nothing can be added to it"),
        ("a = {}\n[a]", 2, "[a] conflicts with \"a\", an inline table defined on line 1"),
        ("a = { x.y = 1 }\n[a.x]", 2, "\"a\" is an inline table (line 1); nothing can be added to it"),
        ("a = { b = 1, b = 2 }", 1, "duplicate key \"b\" (first defined on line 1)"),
        ("a = { b.c = 1, b = 2 }", 1, "duplicate key \"b\" (first defined on line 1)"),
        ("a = { b = {}, b.c = 2 }", 1, "\"b\" is an inline table (line 1); nothing can be added to it"),
        ("[a]\n[\"a\"]", 2, "table [a] is defined twice (first on line 1)"),
    ])
    func redefinitionsAreRefused(text: String, line: Int, message: String) throws {
        let diagnostic = try #require(TOMLFixture.failure(text))
        #expect(diagnostic.file == "t.toml")
        #expect(diagnostic.line == line)
        #expect(diagnostic.message == message)
    }

    /// A header that defines a table implied earlier becomes its line, for later messages.
    @Test func aTableIsWhereItsHeaderIsNotWhereItWasImplied() throws {
        let root = try TOMLFixture.parse("[a.b]\nx = 1\n\n[a]\ny = 2\n")
        #expect(root["a"]?.line == 4)
        #expect(root["a"]?.value.line == 4)
        guard case .table(let a)? = root["a"]?.value.kind else {
            Issue.record("no table a")
            return
        }
        #expect(a.line == 4)
        #expect(a["b"]?.line == 1)
    }

    @Test(arguments: [
        ("[a.]", 1, "expected a key, found ']'"),
        ("[.a]", 1, "expected a key, found '.'"),
        ("a. = 1", 1, "expected a key, found '='"),
        ("[a]b = 1", 1, "expected the end of the line, found 'b'"),
        ("[[a] ]", 1, "expected ']]' to close the array-of-tables header"),
        ("[ [a]]", 1, "expected a key, found '['"),
        ("\"\"\"k\"\"\" = 1", 1, "a key cannot be a multi-line string"),
        ("a = 1\n\"k\nb\" = 1", 2, "unterminated string"),
        ("a b = 1", 1, "expected '=' after the key \"a\""),
        ("\"\\u0001\" 1", 1, "expected '=' after the key \"\\u{01}\""),
    ])
    func malformedKeys(text: String, line: Int, message: String) throws {
        let diagnostic = try #require(TOMLFixture.failure(text))
        #expect(diagnostic.line == line)
        #expect(diagnostic.message == message)
    }
}
