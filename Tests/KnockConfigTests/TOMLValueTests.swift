import Testing

@testable import KnockConfig

/// TOML 1.0 values: every string form, numbers, dates and times, arrays and inline tables.
@Suite struct TOMLValueTests {
    private func kind(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> TOMLValue.Kind? {
        try TOMLFixture.value("v", in: text, sourceLocation: sourceLocation)?.kind
    }

    private func expectFailure(_ text: String, line: Int, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let diagnostic = try #require(TOMLFixture.failure(text, sourceLocation: sourceLocation), sourceLocation: sourceLocation)
        #expect(diagnostic.file == "t.toml", sourceLocation: sourceLocation)
        #expect(diagnostic.line == line, sourceLocation: sourceLocation)
        #expect(diagnostic.message == message, sourceLocation: sourceLocation)
    }

    // MARK: Strings

    @Test(arguments: [
        (#"v = "a\"b\\c""#, nil as String?),
        (#"v = "\b\t\n\f\r\"\\""#, "\u{8}\t\n\u{c}\r\"\\"),
        (#"v = "\u00E9\u20AC\U0001F600\U00000041""#, "é€😀A"),
        ("v = \"tab\tinside\"", "tab\tinside"),
        (#"v = 'C:\Users\nodejs'"#, #"C:\Users\nodejs"#),
        (#"v = '<\i\c*\s*>'"#, #"<\i\c*\s*>"#),
        (#"v = """#, ""),
        (#"v = ''"#, ""),
        ("v = \"\"\"\nRoses\nViolets\"\"\"", "Roses\nViolets"),
        ("v = \"\"\"\r\nRoses\r\nViolets\"\"\"", "Roses\r\nViolets"),
        ("v = \"\"\"one \\\n    two \\   \n\n  three\"\"\"", "one two three"),
        ("v = \"\"\"\\\n  \"\"\"", ""),
        ("v = \"\"\"a \\\\\nb\"\"\"", "a \\\nb"),
        ("v = \"\"\"Here are two quotation marks: \"\". Simple.\"\"\"", "Here are two quotation marks: \"\". Simple."),
        (
            "v = \"\"\"\"This,\" she said, \"is just a pointless statement.\"\"\"\"",
            "\"This,\" she said, \"is just a pointless statement.\""
        ),
        ("v = \"\"\"\"\"\"\"\"", "\"\""),
        ("v = \"\"\"\"\"\"", ""),
        ("v = \"\"\"\\u00e9 \\\"\"\" \\U0001F600\"\"\"", "é \"\"\" 😀"),
        (
            "v = '''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n'''",
            "The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n"
        ),
        ("v = '''I [dw]on't need \\d{2} apples'''", "I [dw]on't need \\d{2} apples"),
        ("v = ''''That,' she said, 'is still pointless.''''", "'That,' she said, 'is still pointless.'"),
        ("v = '''a\\\nb'''", "a\\\nb"),
        ("v = ''''''''", "''"),
    ])
    func strings(text: String, expected: String?) throws {
        #expect(try kind(text) == .string(expected ?? "a\"b\\c"))
    }

    @Test func multiLineStringsKeepLinesCounted() throws {
        let root = try TOMLFixture.parse("a = \"\"\"\none\ntwo\n\"\"\"\nb = '''x\ny'''\nc = 1\n")
        #expect(root["a"]?.line == 1)
        #expect(root["b"]?.line == 5)
        #expect(root["c"]?.line == 7)
    }

    @Test(arguments: [
        (#"v = "\x""#, 1, #"invalid escape \x in a string"#),
        (#"v = "\/""#, 1, #"invalid escape \/ in a string"#),
        (#"v = "\e""#, 1, #"invalid escape \e in a string"#),
        ("v = \"\\é\"", 1, "invalid escape: a backslash followed by byte 0xC3 in a string"),
        (#"v = "\u12""#, 1, #"invalid \u escape: expected 4 hex digits of a Unicode scalar"#),
        (#"v = "\uD800""#, 1, #"invalid \u escape: expected 4 hex digits of a Unicode scalar"#),
        (#"v = "\U00110000""#, 1, #"invalid \U escape: expected 8 hex digits of a Unicode scalar"#),
        (#"v = "\u+123""#, 1, #"invalid \u escape: expected 4 hex digits of a Unicode scalar"#),
        (#"v = "a\ b""#, 1, "invalid escape: a backslash followed by a space in a string"),
        ("v = \"a\\\nb\"", 1, "a backslash at the end of a line continues only a multi-line string (\"\"\"…\"\"\")"),
        ("v = \"a\\   \nb\"", 1, "a backslash at the end of a line continues only a multi-line string (\"\"\"…\"\"\")"),
        ("v = \"\"\"a\\ b\"\"\"", 1, "invalid escape: a backslash followed by a space in a string"),
        ("v = \"\u{1}\"", 1, "control characters must be escaped in a string"),
        ("v = \"\"\"\n\u{7F}\"\"\"", 2, "control characters must be escaped in a string"),
        ("v = '''\u{0}'''", 1, "control characters are not allowed in a literal string"),
        ("v = \"\"\"a\rb\"\"\"", 1, "a carriage return must be followed by a newline"),
        ("v = \"\"\"\"\"\"\"\"\"", 1, "too many quotes: at most two may stand before the closing three"),
        ("v = '''a''''''", 1, "too many quotes: at most two may stand before the closing three"),
        ("v = \"\"\"\n\nunclosed\n", 1, "unterminated multi-line string: expected '\"\"\"'"),
        ("x = 1\nv = '''\nunclosed", 2, "unterminated multi-line string: expected \"'''\""),
        ("v = \"open", 1, "unterminated string"),
        ("v = 'open\nb = 1", 1, "unterminated string"),
        ("v = \"\"\"a\"\"\"b", 1, "expected the end of the line, found 'b'"),
    ])
    func badStrings(text: String, line: Int, message: String) throws {
        try expectFailure(text, line: line, message)
    }

    /// The message about a line-ending backslash holds no line break (it used to hold the raw newline).
    @Test func aLineEndingBackslashMessageIsOneLine() throws {
        let diagnostic = try #require(TOMLFixture.failure("v = \"secret\\\n\""))
        #expect(!diagnostic.description.contains("\n"))
        #expect(!diagnostic.description.contains("secret"))
    }

    // MARK: Numbers and booleans

    @Test(arguments: [
        ("v = +99", Int64(99)), ("v = -17", -17), ("v = 0", 0), ("v = +0", 0), ("v = -0", 0),
        ("v = 5_349_221", 5_349_221), ("v = 1_2_3_4_5", 12345), ("v = 0xDEADBEEF", 0xDEAD_BEEF),
        ("v = 0xdead_beef", 0xDEAD_BEEF), ("v = 0o01234567", 0o1234567), ("v = 0o755", 0o755),
        ("v = 0b11010110", 0b1101_0110), ("v = 0b1_0", 2), ("v = 0x7FFFFFFFFFFFFFFF", Int64.max),
    ])
    func integers(text: String, expected: Int64) throws {
        #expect(try kind(text) == .integer(expected))
    }

    @Test(arguments: [
        ("v = +0x1", "invalid value (a string needs quotes)"),
        ("v = 0X1", "invalid value (a string needs quotes)"),
        ("v = 0x", "invalid value (a string needs quotes)"),
        ("v = 0x_1", "invalid value (a string needs quotes)"),
        ("v = 1_", "invalid value (a string needs quotes)"),
        ("v = _1", "invalid value (a string needs quotes)"),
        ("v = 0b2", "invalid value (a string needs quotes)"),
        ("v = 0o8", "invalid value (a string needs quotes)"),
        ("v = 00", "leading zeros are not allowed in an integer"),
        ("v = -01", "leading zeros are not allowed in an integer"),
        ("v = 0x8000000000000000", "the integer is out of range"),
        ("v = -9223372036854775809", "the integer is out of range"),
    ])
    func badIntegers(text: String, message: String) throws {
        try expectFailure(text, line: 1, message)
    }

    @Test(arguments: [
        ("v = +1.0", 1.0), ("v = 3.1415", 3.1415), ("v = -0.01", -0.01), ("v = 5e+22", 5e+22), ("v = 1e06", 1e6),
        ("v = -2E-2", -2e-2), ("v = 6.626e-34", 6.626e-34), ("v = 224_617.445_991_228", 224_617.445_991_228),
        ("v = 0.0", 0), ("v = 1e1_0", 1e10), ("v = 0e0", 0), ("v = inf", .infinity), ("v = +inf", .infinity),
        ("v = -inf", -.infinity), ("v = 1.7976931348623157e308", .greatestFiniteMagnitude),
    ])
    func floats(text: String, expected: Double) throws {
        #expect(try kind(text) == .float(expected))
    }

    @Test func signedZeroAndNaN() throws {
        guard case .float(let negativeZero)? = try kind("v = -0.0"), case .float(let nan)? = try kind("v = nan"),
            case .float(let negativeNaN)? = try kind("v = -nan"), case .float(let positiveNaN)? = try kind("v = +nan")
        else {
            Issue.record("not floats")
            return
        }
        #expect(negativeZero == 0 && negativeZero.sign == .minus)
        #expect(nan.isNaN && negativeNaN.isNaN && positiveNaN.isNaN)
    }

    @Test(arguments: [
        ("v = .5", "invalid value (a string needs quotes)"),
        ("v = 5.", "invalid value (a string needs quotes)"),
        ("v = 1.e5", "invalid value (a string needs quotes)"),
        ("v = 1e", "invalid value (a string needs quotes)"),
        ("v = 1.5_", "invalid value (a string needs quotes)"),
        ("v = 1._5", "invalid value (a string needs quotes)"),
        ("v = 1e_5", "invalid value (a string needs quotes)"),
        ("v = infinity", "invalid value (a string needs quotes)"),
        ("v = NaN", "invalid value (a string needs quotes)"),
        ("v = 01.5", "leading zeros are not allowed in a float"),
        ("v = 1e400", "the float is out of range"),
        ("v = yes", "invalid value (a string needs quotes)"),
        ("v = True", "invalid value (a string needs quotes)"),
    ])
    func badFloatsAndWords(text: String, message: String) throws {
        try expectFailure(text, line: 1, message)
    }

    // MARK: Dates and times

    private static func date(_ year: Int, _ month: Int, _ day: Int) -> TOMLDate { TOMLDate(year: year, month: month, day: day) }
    private static func time(_ hour: Int, _ minute: Int, _ second: Int, _ nanosecond: Int = 0) -> TOMLTime {
        TOMLTime(hour: hour, minute: minute, second: second, nanosecond: nanosecond)
    }

    @Test(arguments: [
        ("v = 1979-05-27T07:32:00Z", TOMLDateTime(date: date(1979, 5, 27), time: time(7, 32, 0), offsetMinutes: 0), "an offset date-time"),
        ("v = 1979-05-27t07:32:00z", TOMLDateTime(date: date(1979, 5, 27), time: time(7, 32, 0), offsetMinutes: 0), "an offset date-time"),
        (
            "v = 1979-05-27T00:32:00-07:00", TOMLDateTime(date: date(1979, 5, 27), time: time(0, 32, 0), offsetMinutes: -420),
            "an offset date-time"
        ),
        (
            "v = 1979-05-27T00:32:00.999999+05:30",
            TOMLDateTime(date: date(1979, 5, 27), time: time(0, 32, 0, 999_999_000), offsetMinutes: 330), "an offset date-time"
        ),
        ("v = 1979-05-27 07:32:00Z", TOMLDateTime(date: date(1979, 5, 27), time: time(7, 32, 0), offsetMinutes: 0), "an offset date-time"),
        ("v = 1979-05-27T07:32:00", TOMLDateTime(date: date(1979, 5, 27), time: time(7, 32, 0), offsetMinutes: nil), "a local date-time"),
        (
            "v = 1979-05-27 07:32:00.5 # comment",
            TOMLDateTime(date: date(1979, 5, 27), time: time(7, 32, 0, 500_000_000), offsetMinutes: nil), "a local date-time"
        ),
        ("v = 1979-05-27", TOMLDateTime(date: date(1979, 5, 27), time: nil, offsetMinutes: nil), "a local date"),
        ("v = 1979-05-27 # a date, then a comment", TOMLDateTime(date: date(1979, 5, 27), time: nil, offsetMinutes: nil), "a local date"),
        ("v = 2024-02-29", TOMLDateTime(date: date(2024, 2, 29), time: nil, offsetMinutes: nil), "a local date"),
        ("v = 2000-02-29", TOMLDateTime(date: date(2000, 2, 29), time: nil, offsetMinutes: nil), "a local date"),
        ("v = 07:32:00", TOMLDateTime(date: nil, time: time(7, 32, 0), offsetMinutes: nil), "a local time"),
        ("v = 23:59:60.1234567891", TOMLDateTime(date: nil, time: time(23, 59, 60, 123_456_789), offsetMinutes: nil), "a local time"),
    ])
    func dateTimes(text: String, expected: TOMLDateTime, typeName: String) throws {
        let value = try #require(try TOMLFixture.value("v", in: text))
        #expect(value.kind == .dateTime(expected))
        #expect(value.typeName == typeName)
    }

    @Test(arguments: [
        ("v = 2023-02-29", "invalid date: no such day in the calendar"),
        ("v = 1900-02-29", "invalid date: no such day in the calendar"),
        ("v = 1979-13-01", "invalid date: no such day in the calendar"),
        ("v = 1979-04-31", "invalid date: no such day in the calendar"),
        ("v = 1979-00-10", "invalid date: no such day in the calendar"),
        ("v = 24:00:00", "invalid time: hours 00-23, minutes 00-59, seconds 00-60"),
        ("v = 07:60:00", "invalid time: hours 00-23, minutes 00-59, seconds 00-60"),
        ("v = 1979-05-27T07:32:00+24:00", "invalid time offset: hours 00-23, minutes 00-59"),
    ])
    func impossibleDatesAndTimes(text: String, message: String) throws {
        try expectFailure(text, line: 1, message)
    }

    @Test(arguments: [
        "v = 07:32", "v = 07:32:00Z", "v = 07:32:00+01:00", "v = 1979-05-27T", "v = 1979-05-27 07:32",
        "v = 1979-5-27", "v = 1979-05-27T07:32:00.", "v = 1979-05-27T07:32:00+0100", "v = 1979-05-27X07:32:00",
        "v = 1979-05-27T07:32:00ZZ", "v = 1979-05-27_",
    ])
    func malformedDatesAndTimes(text: String) throws {
        let diagnostic = try #require(TOMLFixture.failure(text))
        #expect(diagnostic.line == 1)
        #expect(diagnostic.message.hasPrefix("invalid date or time: expected YYYY-MM-DD"))
    }

    // MARK: Arrays and inline tables

    @Test func arraysMayMixTypes() throws {
        let value = try #require(try TOMLFixture.value("v", in: "v = [1, 'a', 1.5, [true], { x = 2 }, 1979-05-27,\n]"))
        guard case .array(let items) = value.kind else {
            Issue.record("not an array")
            return
        }
        #expect(items.map(\.typeName) == ["an integer", "a string", "a float", "an array", "a table", "a local date"])
    }

    @Test func inlineTablesHoldAnyValueAndDottedKeys() throws {
        let text = "v = { a = 1, b.c = \"x\", b.d = [1,\n 2], e = { f = true }, \"g h\" = {} }\nafter = 1"
        #expect(try TOMLFixture.value("v.a", in: text)?.kind == .integer(1))
        #expect(try TOMLFixture.value("v.b.c", in: text)?.kind == .string("x"))
        #expect(try TOMLFixture.value("v.e.f", in: text)?.kind == .boolean(true))
        #expect(try TOMLFixture.value("v.g h", in: text)?.typeName == "a table")
        #expect(try TOMLFixture.value("after", in: text)?.line == 3)
        let root = try TOMLFixture.parse(text)
        #expect(root["v"]?.value.typeName == "a table")
        #expect(try kind("v = {}") == .table(TOMLTable(line: 1, origin: .inline)))
    }

    @Test(arguments: [
        ("v = [,]", 1, "expected a value, found ','"),
        ("v = [1,,2]", 1, "expected a value, found ','"),
        ("v = [1 2]", 1, "expected ',' or ']' in the array, found '2'"),
        ("v = [1, 2", 1, "unterminated array: expected ']'"),
        ("v = [\n  1,\n  2,\n", 1, "unterminated array: expected ']'"),
        ("a = 1\nv = [\n  [1,\n  2]", 2, "unterminated array: expected ']'"),
        ("v = { a = 1,\n b = 2 }", 1, "an inline table must be on one line (TOML 1.0); use a [table] header for more"),
        ("v = {\n}", 1, "an inline table must be on one line (TOML 1.0); use a [table] header for more"),
        ("v = { a = 1 # c\n}", 1, "an inline table must be on one line (TOML 1.0); use a [table] header for more"),
        ("v = { a = 1, }", 1, "a trailing comma is not allowed in an inline table (TOML 1.0)"),
        ("v = { a = 1 b = 2 }", 1, "expected ',' or '}' in the inline table, found 'b'"),
        ("v = { a = 1", 1, "unterminated inline table: expected '}'"),
        ("v = { a }", 1, "expected '=' after the key \"a\""),
        ("v = { , }", 1, "expected a key, found ','"),
        ("v = }", 1, "expected a value, found '}'"),
    ])
    func badArraysAndInlineTables(text: String, line: Int, message: String) throws {
        try expectFailure(text, line: line, message)
    }
}
