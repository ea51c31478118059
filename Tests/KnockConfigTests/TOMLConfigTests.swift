import KnockCore
import Testing

@testable import KnockConfig

/// Shared helpers for the configuration tests.
enum Fixture {
    static let file = "/etc/pknock/pknock.toml"
    static let openSecret = "open-secret-XYZZY-1"
    static let closeSecret = "close-secret-PLUGH-2"
    static let secrets = InMemorySecretSource(texts: [
        "/etc/pknock/ftp.open": openSecret + "\n",
        "/etc/pknock/ftp.close": closeSecret + "\r\n",
        "/srv/keys/abs.open": "absolute-open-key",
        "/etc/pknock/short": "short",
    ])

    static func load(_ text: String, secrets: InMemorySecretSource = Fixture.secrets) throws(ConfigError) -> Configuration {
        try ConfigLoader.parseTOML(text, file: file, secrets: secrets)
    }

    /// The errors `text` is refused with; records an issue when it loads.
    static func errors(_ text: String, secrets: InMemorySecretSource = Fixture.secrets, sourceLocation: SourceLocation = #_sourceLocation)
        -> [ConfigDiagnostic]
    {
        do {
            _ = try load(text, secrets: secrets)
            Issue.record("expected the configuration to be refused", sourceLocation: sourceLocation)
            return []
        } catch {
            return error.diagnostics
        }
    }

    static func name(_ text: String) -> RuleName {
        guard let name = RuleName(rawValue: text) else { preconditionFailure("bad test rule name \(text)") }
        return name
    }

    static func port(_ number: UInt16, _ transport: TransportProtocol = .tcp) -> ServicePort {
        guard let port = Port(rawValue: number) else { preconditionFailure("bad test port \(number)") }
        return ServicePort(port, transport)
    }

    /// The SSH rule of DESIGN.md's first iptables line.
    static let sshRule = Rule(
        name: name("SSH"), knockSequence: [port(2002), port(2001), port(2004)], maxKnockGap: .seconds(10), strict: true,
        autoclose: .seconds(3600), protectedPorts: [port(22)])
}

@Suite struct TOMLConfigTests {
    @Test func fullExampleFromTheBrief() throws {
        let configuration = try Fixture.load(
            """
            [daemon]
            table = "pk_test"
            nflog_group = 9
            state_directory = "/var/lib/pk"
            control_socket = "/run/pk.sock"
            max_tracked_peers = 100

            [[rule]]
            name = "SSH"
            knock = [2002, 2001, 2004]
            protocol = "tcp"
            time = 10
            strict = true
            autoclose = 60
            protect = [22]
            max_tracked_peers = 4096
            max_allowed_peers = 4096

            [[rule]]
            name = "FTP"
            knock = ["4000:udp"]
            spa = "sha256"
            open_secret_file = "ftp.open"
            close_secret_file = "/etc/pknock/ftp.close"
            clock_skew = 2
            autoclose = "4h"
            protect = ["21:tcp"]
            """)
        #expect(
            configuration.daemon
                == DaemonSettings(
                    table: "pk_test", nflogGroup: 9, stateDirectory: "/var/lib/pk", controlSocket: "/run/pk.sock",
                    maxTrackedPeers: 100))
        var ssh = Fixture.sshRule
        ssh.maxTrackedPeers = 4096
        ssh.maxAllowedPeers = 4096
        let ftp = Rule(
            name: Fixture.name("FTP"), knockSequence: [Fixture.port(4000, .udp)], autoclose: .seconds(4 * 3600),
            spa: SPASettings(
                format: .sha256, openSecret: Secret(Fixture.openSecret), closeSecret: Secret(Fixture.closeSecret),
                clockSkewMinutes: 2),
            protectedPorts: [Fixture.port(21)], maxTrackedPeers: 100)
        #expect(configuration.rules == [ssh, ftp])
        #expect(configuration.warnings.isEmpty)
    }

    @Test func defaults() throws {
        let configuration = try Fixture.load("[[rule]]\nname = \"A\"\nknock = [1000]\nprotect = [22]\n")
        #expect(configuration.daemon == DaemonSettings())
        #expect(configuration.daemon.table == "pknock")
        #expect(configuration.daemon.nflogGroup == 7)
        #expect(
            configuration.rules == [
                Rule(
                    name: Fixture.name("A"), knockSequence: [Fixture.port(1000)], protectedPorts: [Fixture.port(22)],
                    maxWrongKnocks: Rule.defaultMaxWrongKnocks)
            ])
        #expect(configuration.daemon.firstKnockCapacity == FirstKnockTable.defaultCapacity)
    }

    @Test(arguments: [("max_wrong_knocks = 0", 0), ("max_wrong_knocks = 3", 3), ("max_wrong_knocks = 255", 255), ("", 8)])
    func wrongKnockBudget(line: String, expected: Int) throws {
        let configuration = try Fixture.load("[[rule]]\nname = \"A\"\nknock = [1000, 999]\nprotect = [22]\n\(line)\n")
        #expect(configuration.rules.first?.maxWrongKnocks == expected)
    }

    @Test(arguments: [
        ("max_wrong_knocks = 256", "/etc/pknock/pknock.toml:5: rule A: max_wrong_knocks: must be 0 (no limit) to 255, found 256"),
        ("max_wrong_knocks = -1", "/etc/pknock/pknock.toml:5: rule A: max_wrong_knocks: must be 0 (no limit) to 255, found -1"),
    ])
    func badWrongKnockBudget(line: String, message: String) {
        let errors = Fixture.errors("[[rule]]\nname = \"A\"\nknock = [1000, 999]\nprotect = [22]\n\(line)\n")
        #expect(errors.map(\.description) == [message])
    }

    @Test func firstKnockCapacity() throws {
        let configuration = try Fixture.load("[daemon]\nfirst_knock_capacity = 65536\n[[rule]]\nname = \"A\"\nknock = [1000]\nprotect = [22]\n")
        #expect(configuration.daemon.firstKnockCapacity == 65536)
    }

    @Test func nflogBatchingIsOnByDefaultAndCanBeTurnedOff() throws {
        let rule = "[[rule]]\nname = \"A\"\nknock = [1000]\nprotect = [22]\n"
        #expect(try Fixture.load(rule).daemon.nflogBatching)
        #expect(try !Fixture.load("[daemon]\nnflog_batching = false\n" + rule).daemon.nflogBatching)
        let refused = Fixture.errors("[daemon]\nnflog_batching = \"no\"\n" + rule)
        #expect(refused.count == 1 && refused.first?.line == 2 && refused.first?.message.hasPrefix("expected true or false") == true, "\(refused)")
    }

    @Test func daemonMaxTrackedPeersIsTheRulesDefault() throws {
        let configuration = try Fixture.load("[daemon]\nmax_tracked_peers = 12\n[[rule]]\nname = \"A\"\nknock = [1000]\nprotect = [22]\n")
        #expect(configuration.rules.first?.maxTrackedPeers == 12)
    }

    // MARK: Durations

    @Test(arguments: [
        ("10", Duration.seconds(10)), ("\"10s\"", .seconds(10)), ("\"2m\"", .seconds(120)), ("\"1h\"", .seconds(3600)),
        ("\"1d\"", .seconds(86400)), ("1_000", .seconds(1000)),
    ])
    func timeDurations(text: String, expected: Duration) throws {
        let configuration = try Fixture.load("[[rule]]\nname = \"A\"\nknock = [1000]\nprotect = [22]\ntime = \(text)\n")
        #expect(configuration.rules.first?.maxKnockGap == expected)
    }

    @Test(arguments: [
        ("60", Duration?.some(.seconds(3600))), ("1", .seconds(60)), ("\"90s\"", .seconds(90)), ("\"30m\"", .seconds(1800)),
        ("\"2h\"", .seconds(7200)), ("\"1d\"", .seconds(86400)), ("0", nil), ("\"0s\"", nil), ("\"0m\"", nil),
    ])
    func autocloseDurations(text: String, expected: Duration?) throws {
        let configuration = try Fixture.load("[[rule]]\nname = \"A\"\nknock = [1000]\nprotect = [22]\nautoclose = \(text)\n")
        #expect(configuration.rules.first?.autoclose == expected)
    }

    @Test(arguments: [
        ("\"10x\"", "invalid duration \"10x\": use a whole number with s, m, h or d, such as \"90s\" or \"2h\""),
        ("\"10\"", "invalid duration \"10\": use a whole number with s, m, h or d, such as \"90s\" or \"2h\""),
        ("\"s\"", "invalid duration \"s\": use a whole number with s, m, h or d, such as \"90s\" or \"2h\""),
        ("\"1.5h\"", "invalid duration \"1.5h\": use a whole number with s, m, h or d, such as \"90s\" or \"2h\""),
        ("\"-5s\"", "invalid duration \"-5s\": use a whole number with s, m, h or d, such as \"90s\" or \"2h\""),
        ("-5", "the duration -5 is negative"),
        ("\"99999d\"", "the duration 99999d is longer than ten years"),
        ("true", "expected a number or a duration such as \"90s\", \"30m\", \"2h\" or \"1d\""),
    ])
    func badDurations(text: String, message: String) {
        let errors = Fixture.errors("[[rule]]\nname = \"A\"\nknock = [1000]\nprotect = [22]\ntime = \(text)\n")
        #expect(errors == [ConfigDiagnostic(file: Fixture.file, line: 5, rule: "A", field: "time", message)])
    }

    @Test func timeZeroIsRefusedByTheRuleCheck() {
        let errors = Fixture.errors("[[rule]]\nname = \"A\"\nknock = [1000]\nprotect = [22]\ntime = 0\n")
        #expect(errors.map(\.description) == ["/etc/pknock/pknock.toml:5: rule A: time: the time between knocks must be positive"])
    }

    // MARK: Ports

    @Test func portSyntax() throws {
        let configuration = try Fixture.load(
            """
            [[rule]]
            name = "A"
            protocol = "udp"
            knock = [1000, "1001", "1002:tcp", "1003:UDP"]
            protect = ["22:tcp", 53]
            """)
        #expect(
            configuration.rules.first?.knockSequence == [
                Fixture.port(1000, .udp), Fixture.port(1001, .udp), Fixture.port(1002, .tcp), Fixture.port(1003, .udp),
            ])
        #expect(configuration.rules.first?.protectedPorts == [Fixture.port(22, .tcp), Fixture.port(53, .udp)])
    }

    @Test func aSinglePortNeedsNoBrackets() throws {
        let configuration = try Fixture.load("[[rule]]\nname = \"A\"\nknock = 1000\nprotect = \"22\"\n")
        #expect(configuration.rules.first?.knockSequence == [Fixture.port(1000)])
        #expect(configuration.rules.first?.protectedPorts == [Fixture.port(22)])
    }

    @Test(arguments: [
        ("[0]", 3, "port 0 is out of range (1 to 65535)"),
        ("[65536]", 3, "port 65536 is out of range (1 to 65535)"),
        ("[-1]", 3, "port -1 is out of range (1 to 65535)"),
        ("[\"70000:udp\"]", 3, "port 70000 is out of range (1 to 65535)"),
        ("[\"22:sctp\"]", 3, "unknown protocol \"sctp\" in \"22:sctp\" (tcp or udp)"),
        ("[\"ssh\"]", 3, "\"ssh\" is not a port number (1 to 65535)"),
        ("[\n  1000,\n  true,\n]", 5, "expected port numbers or \"port:protocol\" strings, found a boolean"),
    ])
    func badKnockPorts(text: String, line: Int, message: String) {
        let errors = Fixture.errors("[[rule]]\nname = \"A\"\nknock = \(text)\nprotect = [22]\n")
        // The bad port is the only error: no "needs at least one knock port" after it.
        #expect(errors == [ConfigDiagnostic(file: Fixture.file, line: line, rule: "A", field: "knock", message)])
    }

    @Test func badProtocol() {
        let errors = Fixture.errors("[[rule]]\nname = \"A\"\nprotocol = \"icmp\"\nknock = [1]\nprotect = [22]\n")
        #expect(errors.map(\.description) == ["/etc/pknock/pknock.toml:3: rule A: protocol: expected \"tcp\" or \"udp\", found \"icmp\""])
    }

    // MARK: Keys and tables

    @Test func unknownKeysNameTheLineAndSuggest() {
        let errors = Fixture.errors(
            """
            [daemon]
            nflog_grup = 3
            [[rule]]
            name = "A"
            knock = [1]
            protect = [22]
            autoclos = 5
            colour = "red"
            [extra]
            """)
        #expect(
            errors.map(\.description) == [
                "/etc/pknock/pknock.toml:2: daemon: unknown key \"nflog_grup\"; did you mean \"nflog_group\"?",
                "/etc/pknock/pknock.toml:7: rule A: unknown key \"autoclos\"; did you mean \"autoclose\"?",
                "/etc/pknock/pknock.toml:8: rule A: unknown key \"colour\"",
                "/etc/pknock/pknock.toml:9: unknown table \"extra\"",
            ])
    }

    @Test func anImplicitTableIsReportedAtTheHeaderThatMadeIt() {
        // Found by the TOML fuzzer (Fuzz/corpus/toml/regression-implicit-table-line): it said line 0.
        let errors = Fixture.errors("# comment\n\n[aem.aem]\n")
        #expect(errors.map(\.description) == ["/etc/pknock/pknock.toml:3: unknown table \"aem\""])
    }

    @Test func ruleMustBeAnArrayOfTables() {
        let errors = Fixture.errors("[rule]\nname = \"A\"\n")
        #expect(errors.map(\.description) == ["/etc/pknock/pknock.toml:1: rule: write each rule as [[rule]] (an array of tables), not [rule]"])
    }

    @Test func typeMismatches() {
        let errors = Fixture.errors(
            """
            [daemon]
            nflog_group = "7"
            [[rule]]
            name = "A"
            knock = [1]
            protect = [22]
            strict = "yes"
            """)
        #expect(
            errors.map(\.description) == [
                "/etc/pknock/pknock.toml:2: daemon.nflog_group: expected an integer, found a string",
                "/etc/pknock/pknock.toml:7: rule A: strict: expected true or false, found a string",
            ])
    }

    @Test(arguments: [
        ("table = \"no-dash\"", "daemon.table: the table name may only contain letters, digits and '_'"),
        ("table = \"1table\"", "daemon.table: the table name must start with a letter or '_'"),
        ("table = \"\"", "daemon.table: the table name is empty"),
        ("table = \"\(String(repeating: "t", count: 33))\"", "daemon.table: the table name is longer than 32 characters"),
        ("nflog_group = 65536", "daemon.nflog_group: must be 0 to 65535, found 65536"),
        ("nflog_group = -1", "daemon.nflog_group: must be 0 to 65535, found -1"),
        ("state_directory = \"var/lib\"", "daemon.state_directory: must be an absolute path, found \"var/lib\""),
        ("control_socket = \"x.sock\"", "daemon.control_socket: must be an absolute path, found \"x.sock\""),
        ("max_tracked_peers = 0", "daemon.max_tracked_peers: must be 1 to 2147483647, found 0"),
        ("first_knock_capacity = 1000", "daemon.first_knock_capacity: must be 1024 to 4294967296, found 1000"),
    ])
    func badDaemonSettings(line: String, message: String) {
        let errors = Fixture.errors("[daemon]\n\(line)\n[[rule]]\nname = \"A\"\nknock = [1]\nprotect = [22]\n")
        #expect(errors.map(\.description) == ["/etc/pknock/pknock.toml:2: \(message)"])
    }

    @Test func aMissingNameIsReportedWithTheRuleNumber() {
        let errors = Fixture.errors("[[rule]]\nname = \"A\"\nknock = [1]\nprotect = [22]\n\n[[rule]]\nknock = [2]\n")
        #expect(errors.map(\.description) == ["/etc/pknock/pknock.toml:6: rule #2: name: a rule name is required"])
    }

    @Test func badRuleName() {
        let errors = Fixture.errors("[[rule]]\nname = \"a b\"\nknock = [1]\n")
        #expect(errors.map(\.description) == ["/etc/pknock/pknock.toml:2: rule a b: name: rule name \"a b\" may only contain letters, digits, '_' and '-'"])
    }

    @Test func noRulesIsAWarning() throws {
        let configuration = try Fixture.load("[daemon]\n")
        #expect(configuration.warnings.map(\.description) == ["/etc/pknock/pknock.toml: warning: no [[rule]]: the daemon will protect nothing"])
    }

    // MARK: Rule problems placed on lines

    @Test func ruleProblemsAreOnTheLineOfTheirField() {
        let errors = Fixture.errors(
            """
            [[rule]]
            name = "A"
            knock = [1, 1]
            autoclose = 5
            protect = [22, "1:tcp"]

            [[rule]]
            name = "B"
            knock = ["22:tcp"]
            protect = [80]
            max_allowed_peers = 0

            [[rule]]
            name = "A"
            knock = [3]
            protect = [443]
            """)
        #expect(
            errors.map(\.description) == [
                "/etc/pknock/pknock.toml:3: rule A: knock: knock port 1:tcp appears twice in a row; a repeated knock is taken as a retransmission",
                "/etc/pknock/pknock.toml:5: rule A: protect: port 1:tcp is both a knock port and a protected port",
                "/etc/pknock/pknock.toml:5: rule A: protect: port 22:tcp is a knock port of rule B",
                "/etc/pknock/pknock.toml:11: rule B: max_allowed_peers: must be 1 to 2147483647, found 0",
                "/etc/pknock/pknock.toml:14: rule A: name: duplicate rule name (first defined on line 2)",
            ])
    }

    @Test func allErrorsAreReportedNotOnlyTheFirst() {
        let errors = Fixture.errors(
            """
            [[rule]]
            name = "A"
            knock = [0]
            time = "x"
            autoclose = "y"
            strict = 1
            """)
        #expect(errors.map(\.line) == [3, 4, 5, 6])
        #expect(errors.map(\.field) == ["knock", "time", "autoclose", "strict"])
    }

    @Test func protectingNothingIsAWarning() throws {
        let configuration = try Fixture.load("[[rule]]\nname = \"A\"\nknock = [1]\n")
        #expect(
            configuration.warnings.map(\.description) == [
                "/etc/pknock/pknock.toml:1: warning: rule A: protect: the rule protects no port; knocks only change its peer listing"
            ])
    }

    // MARK: SPA and secrets

    private let spaRule = "[[rule]]\nname = \"FTP\"\nknock = [\"4000:udp\"]\nprotect = [21]\n"

    @Test func secretFilesAreRelativeToTheConfigAndLoseOneTrailingNewline() throws {
        let configuration = try Fixture.load(spaRule + "open_secret_file = \"ftp.open\"\nclose_secret_file = \"ftp.close\"\n")
        let spa = try #require(configuration.rules.first?.spa)
        #expect(spa == SPASettings(openSecret: Secret(Fixture.openSecret), closeSecret: Secret(Fixture.closeSecret)))
    }

    @Test func absoluteSecretPathsAndMD5WithoutCloseSecret() throws {
        let configuration = try Fixture.load(spaRule + "spa = \"md5\"\nopen_secret_file = \"/srv/keys/abs.open\"\n")
        #expect(configuration.rules.first?.spa == SPASettings(format: .md5, openSecret: Secret("absolute-open-key"), closeSecret: nil))
    }

    @Test func secretFileContentsAreKeptExceptOneNewline() {
        #expect(Secret(fileContents: Array("a\n\n".utf8)) == Secret("a\n"))
        #expect(Secret(fileContents: Array("a\r\n".utf8)) == Secret("a"))
        #expect(Secret(fileContents: Array("a\r".utf8)) == Secret("a\r"))
        #expect(Secret(fileContents: [0, 1, 2]) == Secret(bytes: [0, 1, 2]))
        #expect(Secret(fileContents: Array("\n".utf8)) == Secret(bytes: []))
    }

    @Test func inlineSecretsWorkWithAWarning() throws {
        let configuration = try Fixture.load(spaRule + "open_secret = \"\(Fixture.openSecret)\"\nclose_secret = \"\(Fixture.closeSecret)\"\n")
        #expect(configuration.rules.first?.spa == SPASettings(openSecret: Secret(Fixture.openSecret), closeSecret: Secret(Fixture.closeSecret)))
        #expect(
            configuration.warnings.map(\.description) == [
                "/etc/pknock/pknock.toml:5: warning: rule FTP: open_secret: the secret is written in the configuration file; keep it in open_secret_file, readable only by root",
                "/etc/pknock/pknock.toml:6: warning: rule FTP: close_secret: the secret is written in the configuration file; keep it in close_secret_file, readable only by root",
            ])
    }

    @Test(arguments: [
        ("open_secret_file = \"missing\"\nclose_secret_file = \"ftp.close\"", "5: rule FTP: open_secret_file: /etc/pknock/missing does not exist"),
        (
            "open_secret_file = \"ftp.open\"\nopen_secret = \"x\"\nclose_secret_file = \"ftp.close\"",
            "5: rule FTP: open_secret_file: give open_secret_file or open_secret, not both"
        ),
        ("open_secret_file = \"ftp.open\"", "5: rule FTP: open_secret_file: open_secret and close_secret go together"),
        ("close_secret_file = \"ftp.close\"", "5: rule FTP: close_secret_file: needs open_secret_file as well"),
        ("spa = \"sha256\"", "5: rule FTP: spa: an SPA rule needs open_secret_file"),
        (
            "spa = \"sha1\"\nopen_secret_file = \"ftp.open\"\nclose_secret_file = \"ftp.close\"",
            "5: rule FTP: spa: expected \"sha256\" or \"md5\", found \"sha1\""
        ),
        ("clock_skew = 2", "5: rule FTP: clock_skew: applies only to SPA rules (with open_secret_file)"),
        ("open_secret_file = \"ftp.open\"\nclose_secret_file = \"ftp.close\"\nclock_skew = 61", "7: rule FTP: clock_skew: clock_skew must be 0 to 60 minutes"),
        ("open_secret_file = \"ftp.open\"\nclose_secret_file = \"ftp.open\"", "6: rule FTP: close_secret_file: the open and close secrets must differ"),
    ])
    func spaRefusals(lines: String, expected: String) {
        let errors = Fixture.errors(spaRule + lines + "\n")
        #expect(errors.map(\.description) == ["/etc/pknock/pknock.toml:\(expected)"])
    }

    @Test func spaRuleProblemsFromKnockCoreUseTheKnockLine() {
        let errors = Fixture.errors(
            "[[rule]]\nname = \"S\"\nknock = [4000, 4001]\nprotect = [21]\nopen_secret_file = \"ftp.open\"\nclose_secret_file = \"ftp.close\"\n")
        #expect(
            errors.map(\.description) == [
                "/etc/pknock/pknock.toml:3: rule S: knock: an SPA rule (open_secret) needs exactly one knock port, found 2",
                "/etc/pknock/pknock.toml:3: rule S: knock: SPA knocks are UDP only",
            ])
    }

    @Test func shortSecretIsAWarning() throws {
        let configuration = try Fixture.load(spaRule + "spa = \"md5\"\nopen_secret_file = \"short\"\n")
        #expect(
            configuration.warnings.map(\.description) == [
                "/etc/pknock/pknock.toml:6: warning: rule FTP: open_secret_file: the secret is shorter than 8 bytes and easy to guess"
            ])
    }

    @Test func secretsNeverAppearInDiagnostics() {
        let secret = Fixture.openSecret
        let texts = [
            spaRule + "open_secret = \"\(secret)\"\n",
            spaRule + "open_secret = \"\(secret)\"\nclose_secret = \"\(secret)\"\n",
            spaRule + "open_secret = [\"\(secret)\"]\nclose_secret = \"x\"\n",
            spaRule + "open_secret = \"\(secret)\"\nclose_secret = \"x\"\nbogus = 1\n",
            "[[rule]]\nname = \"A\"\nknock = [4000]\nopen_secret = \"\(secret)\"\nclose_secret = \"x\"\n",
            spaRule + "open_secret = \(secret)\n",
            spaRule + "open_secret = 0\(secret.count)\n",
        ]
        for text in texts {
            let errors = Fixture.errors(text)
            #expect(!errors.isEmpty)
            for diagnostic in errors {
                #expect(!diagnostic.description.contains(secret))
                #expect(!String(describing: diagnostic).contains(secret))
                #expect(!String(reflecting: diagnostic).contains(secret))
            }
        }
    }
}

/// `spa = "v2"` rules and `[[client]]` entries.
@Suite struct SPAv2ConfigTests {
    static let publicKey = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="  // base64 of SPAv2Tests' public key
    static let text = """
        [daemon]
        spa2_clock_window = "30s"

        [[rule]]
        name = "V2"
        knock = ["4500:udp"]
        spa = "v2"
        allow_named_address = true
        protect = [22]

        [[client]]
        id = "laptop"
        ed25519_public_key = "\(publicKey)"
        rules = ["V2"]
        may_name_address = true

        [[client]]
        id = "phone"
        hmac_key_file = "keys/phone.key"
        rules = ["V2"]
        """

    @Test func clientsAndV2RulesLoad() throws {
        let secrets = InMemorySecretSource(["/etc/pknock/keys/phone.key": Array("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n".utf8)])
        let configuration = try Fixture.load(Self.text, secrets: secrets)
        #expect(configuration.rules.first?.spa2 == SPAv2RuleSettings(allowNamedAddress: true))
        #expect(configuration.daemon.spa2ClockWindow == .seconds(30))
        #expect(configuration.clients.map(\.id) == ["laptop", "phone"])
        #expect(configuration.clients.first?.mayNameAddress == true)
        #expect(configuration.clients.last?.key.kind == .hmacSHA256)
    }

    @Test(arguments: [
        (
            "[[rule]]\nname = \"V2\"\nknock = [\"4500:udp\"]\nspa = \"v2\"\nopen_secret = \"x\"\nprotect = [22]\n",
            "/etc/pknock/pknock.toml:5: rule V2: open_secret: SPA v2 rules take their keys from [[client]] entries, not open_secret"
        ),
        (
            "[[rule]]\nname = \"A\"\nknock = [1]\nallow_named_address = true\nprotect = [22]\n",
            "/etc/pknock/pknock.toml:4: rule A: allow_named_address: applies only to SPA v2 and fwknop rules (spa = \"v2\" or \"fwknop\")"
        ),
        (
            "[[rule]]\nname = \"A\"\nknock = [1]\nprotect = [22]\n[[client]]\nid = \"c\"\nrules = [\"A\"]\ned25519_public_key = \"\(publicKey)\"\n",
            "/etc/pknock/pknock.toml:7: rules: client c: A is not an SPA v2 rule (spa = \"v2\")"
        ),
        ("[[client]]\nid = \"c d\"\n", "/etc/pknock/pknock.toml:2: id: a client id is 1 to 32 letters, digits, '.', '_' or '-'"),
        (
            "[[rule]]\nname = \"V2\"\nknock = [\"4500:udp\"]\nspa = \"v2\"\nprotect = [22]\n[[client]]\nid = \"c\"\nrules = [\"V2\"]\ned25519_public_key = \"AAAA\"\n",
            "/etc/pknock/pknock.toml:9: ed25519_public_key: client c: expected 32 bytes in base64 (as pknock keygen writes)"
        ),
    ])
    func refusals(text: String, expected: String) {
        let errors = Fixture.errors(text).map(\.description)
        #expect(errors.contains(expected), "\(errors)")
    }
}
