import Testing

@testable import KnockConfig

/// The parser's bounds (issue #11 item 9): a hostile file gets a file:line error, never a crash.
@Suite struct TOMLLimitTests {
    static let depth = TOMLParser.maximumDepth
    static let deepMessage = "nested too deeply: tables, arrays and inline tables may nest at most 64 levels"

    private static func arrays(_ count: Int) -> String {
        "v = " + String(repeating: "[", count: count) + String(repeating: "]", count: count)
    }
    private static func inlineTables(_ count: Int) -> String {
        "v = " + String(repeating: "{ a = ", count: count) + "1" + String(repeating: " }", count: count)
    }
    private static func mixed(_ count: Int) -> String {
        "v = " + String(repeating: "[{ a = ", count: count / 2) + "1" + String(repeating: " }]", count: count / 2)
    }
    private static func dottedKey(_ parts: Int) -> String { Array(repeating: "a", count: parts).joined(separator: ".") + " = 1" }
    private static func header(_ parts: Int) -> String { "[" + Array(repeating: "a", count: parts).joined(separator: ".") + "]" }

    /// Pairs of documents: one at the limit, one just past it.
    @Test(arguments: [
        (arrays(depth), arrays(depth + 1)),
        (inlineTables(depth), inlineTables(depth + 1)),
        (mixed(depth), mixed(depth + 2)),
        (dottedKey(depth + 1), dottedKey(depth + 2)),
        (header(depth + 1), header(depth + 2)),
        (header(32) + "\n" + dottedKey(33), header(32) + "\n" + dottedKey(34)),
        (
            header(32) + "\nv = " + String(repeating: "[", count: 32) + String(repeating: "]", count: 32),
            header(32) + "\nv = " + String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        ),
        ("v = { " + dottedKey(depth) + " }", "v = { " + dottedKey(depth + 1) + " }"),
    ])
    func nestingAtTheLimitParsesAndOnePastIsRefused(atLimit: String, pastLimit: String) throws {
        _ = try TOMLFixture.parse(atLimit)
        let diagnostic = try #require(TOMLFixture.failure(pastLimit))
        #expect(diagnostic.file == "t.toml")
        #expect(diagnostic.line == pastLimit.filter { $0 == "\n" }.count + 1)
        #expect(diagnostic.message == Self.deepMessage)
    }

    /// The document of the report: 100,000 nested arrays (200 KB), which used to overflow the stack.
    @Test(arguments: [
        "\n\nx = " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000),
        "\n\nx = " + String(repeating: "{a=", count: 100_000),
        "\n\n" + dottedKey(100_000),
        "\n\n" + header(100_000),
    ])
    func hundredThousandLevelsAreRefusedOnTheirLine(text: String) throws {
        let diagnostic = try #require(TOMLFixture.failure(text))
        #expect(diagnostic.description == "t.toml:3: " + Self.deepMessage)
    }

    @Test func theLimitReachesThroughTheLoader() {
        let text = "[daemon]\ntable = " + String(repeating: "[", count: 5000)
        #expect(throws: ConfigError(ConfigDiagnostic(file: "x.toml", line: 2, Self.deepMessage))) {
            try ConfigLoader.parseTOML(text, file: "x.toml", secrets: InMemorySecretSource())
        }
    }

    @Test func aFileOfExactlyTheLimitParses() throws {
        let text = "a = 1\n# " + String(repeating: "x", count: TOMLParser.maximumSize - 9) + "\n"
        #expect(text.utf8.count == TOMLParser.maximumSize)
        #expect(try TOMLFixture.parse(text)["a"]?.value.kind == .integer(1))
    }

    @Test func aFileOneBytePastTheLimitIsRefusedOnTheLineThatCrossesIt() throws {
        // 2^20 + 5 bytes: 16 comment lines of 65,536 bytes each, then "v = 1" on line 17.
        let line = String(repeating: "#", count: 65_535) + "\n"
        let text = String(repeating: line, count: 16) + "v = 1"
        #expect(text.utf8.count == TOMLParser.maximumSize + 5)
        let diagnostic = try #require(TOMLFixture.failure(text))
        #expect(diagnostic.line == 17)
        #expect(
            diagnostic.message
                == "the file is larger than the limit of 1 MiB (1048576 bytes; it has 1048581); the limit is crossed on this line")
    }

    /// Large but legal files stay linear: a table of 50,000 keys, 50,000 `[[a]]` tables and 50,000
    /// dotted keys into one table (each used to cost a copy of everything before it).
    @Test func largeTablesBuildInLinearTime() throws {
        let count = 50_000
        var keys = "[t]\n"
        var arrays = ""
        var dotted = "[t]\n"
        for index in 0..<count {
            keys += "k\(index) = \(index)\n"
            arrays += "[[a]]\nx = \(index)\n"
            dotted += "a.b.k\(index) = 1\n"
        }
        guard case .table(let table)? = try TOMLFixture.parse(keys)["t"]?.value.kind else {
            Issue.record("no table t")
            return
        }
        #expect(table.entries.count == count)
        #expect(table["k49999"]?.line == count + 1)
        guard case .tableArray(let tables)? = try TOMLFixture.parse(arrays)["a"]?.value.kind else {
            Issue.record("no array of tables")
            return
        }
        #expect(tables.count == count)
        #expect(tables.last?["x"]?.value.kind == .integer(Int64(count - 1)))
        guard case .table(let b)? = try TOMLFixture.value("t.a.b", in: dotted)?.kind else {
            Issue.record("no table t.a.b")
            return
        }
        #expect(b.entries.count == count)
    }
}
