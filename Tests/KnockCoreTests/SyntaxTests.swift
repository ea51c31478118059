import KnockCore
import Testing

/// The one parser per small syntax, shared by the configuration, the client and the daemon.
@Suite struct SyntaxTests {
    // MARK: Durations

    @Test(
        arguments: [
            ("90s", nil, Int64(90)), ("10m", nil, 600), ("2h", nil, 7200), ("1d", nil, 86_400), ("0s", nil, 0),
            ("3660d", nil, 3660 * 86_400), ("90", 1, 90), ("5", 60, 300), ("2h", 60, 7200), ("0", 1, 0),
        ] as [(String, Int64?, Int64)])
    func durationsParse(text: String, bareUnit: Int64?, seconds: Int64) throws {
        #expect(try Syntax.duration(text, bareUnitSeconds: bareUnit).get() == .seconds(seconds))
    }

    static let unitAdvice = "use a whole number with s, m, h or d, such as \"90s\" or \"2h\""
    static let bareAdvice = "use a whole number, optionally with s, m, h or d, such as \"90s\" or \"2h\""

    @Test(
        arguments: [
            ("90", nil, "invalid duration \"90\": \(unitAdvice)"),
            ("", nil, "invalid duration \"\": \(unitAdvice)"),
            ("s", nil, "invalid duration \"s\": \(unitAdvice)"),
            ("1.5h", nil, "invalid duration \"1.5h\": \(unitAdvice)"),
            ("-5s", nil, "invalid duration \"-5s\": \(unitAdvice)"),
            ("+5s", nil, "invalid duration \"+5s\": \(unitAdvice)"),
            (" 5s", nil, "invalid duration \" 5s\": \(unitAdvice)"),
            ("5 s", nil, "invalid duration \"5 s\": \(unitAdvice)"),
            ("5S", nil, "invalid duration \"5S\": \(unitAdvice)"),
            ("٣s", nil, "invalid duration \"٣s\": \(unitAdvice)"),
            ("99999d", nil, "the duration 99999d is longer than ten years"),
            ("99999999999999999999s", nil, "invalid duration \"99999999999999999999s\": \(unitAdvice)"),
            ("+5", 1, "invalid duration \"+5\": \(bareAdvice)"),
            ("5x", 1, "invalid duration \"5x\": \(bareAdvice)"),
            ("m", 1, "invalid duration \"m\": \(bareAdvice)"),
            ("9999999999", 60, "the duration 9999999999 is longer than ten years"),
        ] as [(String, Int64?, String)])
    func badDurationsSayWhy(text: String, bareUnit: Int64?, message: String) {
        #expect(throws: Syntax.Problem(message)) { try Syntax.duration(text, bareUnitSeconds: bareUnit).get() }
    }

    @Test func countedDurationsRefuseNegativeAndHugeValues() throws {
        #expect(try Syntax.duration(count: 5, unitSeconds: 60, written: "5").get() == .seconds(300))
        #expect(throws: Syntax.Problem("the duration -5 is negative")) {
            try Syntax.duration(count: -5, unitSeconds: 1, written: "-5").get()
        }
        #expect(throws: Syntax.Problem("the duration X is longer than ten years")) {
            try Syntax.duration(count: .max, unitSeconds: 60, written: "X").get()
        }
    }

    // MARK: Ports

    @Test(
        arguments: [
            ("2002", UInt16(2002), nil), ("1", 1, nil), ("65535", 65535, nil), ("2002:tcp", 2002, TransportProtocol.tcp),
            ("7000:udp", 7000, .udp), ("7000:UDP", 7000, .udp), ("00022", 22, nil),
        ] as [(String, UInt16, TransportProtocol?)])
    func knockPortsParse(text: String, port: UInt16, transport: TransportProtocol?) throws {
        let parsed = try Syntax.knockPort(text).get()
        #expect(parsed.port.rawValue == port && parsed.transport == transport)
    }

    @Test(arguments: [
        ("0", "port 0 is out of range (1 to 65535)"),
        ("65536", "port 65536 is out of range (1 to 65535)"),
        ("000022", "port 000022 is out of range (1 to 65535)"),
        ("ssh", "\"ssh\" is not a port number (1 to 65535)"),
        ("", "\"\" is not a port number (1 to 65535)"),
        ("-1", "\"-1\" is not a port number (1 to 65535)"),
        (" 22", "\" 22\" is not a port number (1 to 65535)"),
        ("22:sctp", "unknown protocol \"sctp\" in \"22:sctp\" (tcp or udp)"),
        ("22:", "unknown protocol \"\" in \"22:\" (tcp or udp)"),
        ("22:tcp:x", "unknown protocol \"tcp:x\" in \"22:tcp:x\" (tcp or udp)"),
        (":tcp", "\"\" is not a port number (1 to 65535)"),
    ])
    func badKnockPortsSayWhy(text: String, message: String) {
        #expect(throws: Syntax.Problem(message)) { try Syntax.knockPort(text).get() }
    }

    // MARK: Table names

    @Test(
        arguments: [
            ("pknock", nil), ("_t", nil), ("pk_test2", nil), (String(repeating: "t", count: 32), nil),
            ("", "the table name is empty"),
            ("0t", "the table name must start with a letter or '_'"),
            ("my-table", "the table name may only contain letters, digits and '_'"),
            ("-t", "the table name may only contain letters, digits and '_'"),
            ("a b", "the table name may only contain letters, digits and '_'"),
            ("a;flush ruleset", "the table name may only contain letters, digits and '_'"),
            ("tablé", "the table name may only contain letters, digits and '_'"),
            (String(repeating: "t", count: 33), "the table name is longer than 32 characters"),
        ] as [(String, String?)])
    func tableNames(name: String, problem: String?) {
        #expect(Syntax.tableNameProblem(name) == problem)
    }

    // MARK: Secret and key files

    @Test(arguments: [
        ("secret\n", "secret"), ("secret\r\n", "secret"), ("secret", "secret"), ("secret\n\n", "secret\n"),
        (" spaced secret \n", " spaced secret "), ("\n", ""), ("", ""), ("a\rb\r", "a\rb\r"),
    ])
    func secretFilesLoseOneLineEnd(contents: String, secret: String) {
        #expect(Syntax.secret(fileContents: Array(contents.utf8)) == Array(secret.utf8))
        #expect(Secret(fileContents: Array(contents.utf8)) == Secret(bytes: Array(secret.utf8)))
    }

    @Test(arguments: [("QUJD\n", "QUJD"), ("  QUJD \r\n\n", "QUJD"), ("\tQU JD\n", "QU JD"), ("\n \n", ""), ("", "")])
    func keyFilesLoseSurroundingWhiteSpace(contents: String, text: String) {
        #expect(Syntax.keyText(fileContents: Array(contents.utf8)) == text[...])
    }
}
