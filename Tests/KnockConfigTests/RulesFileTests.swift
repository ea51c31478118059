import KnockCore
import Testing

@testable import KnockConfig

@Suite struct RulesFileTests {
    private let file = "/etc/pknock/xt.rules"

    private func load(_ text: String) throws(ConfigError) -> Configuration {
        try ConfigLoader.parseRulesFile(text, file: file)
    }

    private func errors(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        do {
            _ = try load(text)
            Issue.record("expected the rules to be refused", sourceLocation: sourceLocation)
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    // MARK: The two forms give the same rules as TOML

    @Test func oneRuleFormEqualsTheTOMLRule() throws {
        let rules = try load(
            "-p tcp -m pknock --knockports 2002,2001,2004 --name SSH --time 10 --strict --autoclose 60 -m tcp --dport 22 -j ACCEPT"
        ).rules
        let toml = try Fixture.load(
            "[[rule]]\nname = \"SSH\"\nknock = [2002, 2001, 2004]\ntime = 10\nstrict = true\nautoclose = 60\nprotect = [22]\n")
        #expect(rules == [Fixture.sshRule])
        #expect(rules == toml.rules)
    }

    @Test func twoRuleSPAFormEqualsTheTOMLRule() throws {
        let rules = try load(
            """
            -p udp -m pknock --knockports 4000 --name FTP --opensecret foo-secret --closesecret bar-secret -j DROP
            -p tcp -m pknock --checkip --name FTP --dport 21 -j ACCEPT
            """
        ).rules
        let toml = try Fixture.load(
            """
            [[rule]]
            name = "FTP"
            knock = ["4000:udp"]
            open_secret = "foo-secret"
            close_secret = "bar-secret"
            protect = ["21:tcp"]
            """)
        let expected = Rule(
            name: Fixture.name("FTP"), knockSequence: [Fixture.port(4000, .udp)],
            spa: SPASettings(format: .sha256, openSecret: Secret("foo-secret"), closeSecret: Secret("bar-secret")),
            protectedPorts: [Fixture.port(21)])
        #expect(rules == [expected])
        #expect(rules == toml.rules)
    }

    /// The three iptables lines DESIGN.md quotes from the original documentation.
    @Test func originalDocumentationExamples() throws {
        let first = """
            iptables -A INPUT -p tcp -m pknock --knockports 2002,2001,2004 --name SSH \\
                     --time 10 --strict --autoclose 60 --dport 22 -j ACCEPT
            """
        let spa = """
            iptables -A INPUT -p udp -m pknock --knockports 2000 --name SSH \\
                     --opensecret OPEN --closesecret CLOSE -j DROP
            iptables -A INPUT -p tcp -m pknock --checkip --name SSH --dport 22 -j ACCEPT
            """
        #expect(try load(first).rules == [Fixture.sshRule])

        let spaConfiguration = try load(spa)
        #expect(
            spaConfiguration.rules == [
                Rule(
                    name: Fixture.name("SSH"), knockSequence: [Fixture.port(2000, .udp)],
                    spa: SPASettings(openSecret: Secret("OPEN"), closeSecret: Secret("CLOSE")), protectedPorts: [Fixture.port(22)])
            ])
        #expect(
            spaConfiguration.warnings.map(\.description) == [
                "/etc/pknock/xt.rules:2: warning: rule SSH: --opensecret: the secret is written in the rules file; in pknock.toml keep it in open_secret_file, readable only by root",
                "/etc/pknock/xt.rules:2: warning: rule SSH: --opensecret: the secret is shorter than 8 bytes and easy to guess",
                "/etc/pknock/xt.rules:2: warning: rule SSH: --closesecret: the secret is shorter than 8 bytes and easy to guess",
            ])

        // All three in one file: two knock rules named SSH with different settings.
        #expect(
            errors(first + "\n" + spa) == [
                "/etc/pknock/xt.rules:3: rule SSH: --name: a knock rule of this name with other settings is on line 1"
            ])
    }

    @Test func secureIsMD5WithOnlyAnOpenSecret() throws {
        let rules = try load(
            "-p udp -m pknock --knockports 3000 --name OLD --secure 'an old secret' -j DROP\n"
                + "-p tcp -m pknock --chkip --name OLD --dport 2222 -j ACCEPT"
        ).rules
        #expect(
            rules == [
                Rule(
                    name: Fixture.name("OLD"), knockSequence: [Fixture.port(3000, .udp)],
                    spa: SPASettings(format: .md5, openSecret: Secret("an old secret"), closeSecret: nil),
                    protectedPorts: [Fixture.port(2222)])
            ])
    }

    @Test func checkIPLinesAddProtectedPortsInAnyOrder() throws {
        let rules = try load(
            """
            -p tcp -m pknock --checkip --name WEB --dport 443 -j ACCEPT
            -p udp -m pknock --knockports 7000,7001 --name WEB --dport 8080 -j ACCEPT
            -p udp -m pknock --checkip --name WEB --dport 53 -j ACCEPT
            -p tcp -m pknock --checkip --name WEB --dport 443 -j ACCEPT
            """
        ).rules
        #expect(rules.map(\.protectedPorts) == [[Fixture.port(8080, .udp), Fixture.port(443), Fixture.port(53, .udp)]])
        #expect(rules.map(\.knockSequence) == [[Fixture.port(7000, .udp), Fixture.port(7001, .udp)]])
    }

    @Test func identicalKnockLinesForSeveralPortsAreOneRule() throws {
        let rules = try load(
            """
            -p tcp -m pknock --knockports 1,2,3 --name M --time 5 --dport 22 -j ACCEPT
            -p tcp -m pknock --knockports 1,2,3 --name M --time 5 --dport 80 -j ACCEPT
            """
        ).rules
        #expect(rules.count == 1)
        #expect(rules.first?.protectedPorts == [Fixture.port(22), Fixture.port(80)])
    }

    @Test func autocloseZeroMeansNever() throws {
        let rules = try load("-p tcp -m pknock --knockports 1 --name A --autoclose 0 --dport 22 -j ACCEPT").rules
        #expect(rules.first?.autoclose == nil)
    }

    @Test func dropKnockLinesWithoutCheckIPProtectNothing() throws {
        let configuration = try load("-p udp -m pknock --knockports 9 --name A -j DROP")
        #expect(configuration.rules.first?.protectedPorts == [])
        #expect(
            configuration.warnings.map(\.description) == [
                "/etc/pknock/xt.rules:1: warning: rule A: --dport: the rule protects no port; knocks only change its peer listing"
            ])
    }

    // MARK: Syntax accepted

    @Test func commentsQuotesPrefixesAndIgnoredMatches() throws {
        let rules = try load(
            """
            # a comment

                # an indented comment
            iptables -I INPUT 3 -p tcp -m state --state NEW -m pknock --knockports "2002,2001,2004" --name 'SSH' \\
              --time 10 --strict --autoclose 60 -m tcp --destination-port 22 -j ACCEPT   # trailing comment
            ip6tables --append INPUT --protocol udp -m conntrack --ctstate NEW --match pknock --knockports 5 --name "B" -j DROP
            /usr/sbin/iptables -A INPUT -p udp -m pknock --checkip --name 'B' -m udp --dport 53 --jump ACCEPT
            """
        ).rules
        #expect(
            rules == [
                Fixture.sshRule,
                Rule(name: Fixture.name("B"), knockSequence: [Fixture.port(5, .udp)], protectedPorts: [Fixture.port(53, .udp)]),
            ])
    }

    @Test func tokenizerKeepsQuotedTextAndLines() {
        let (commands, errors) = RulesTokenizer.commands(
            "a 'b c' \"d \\\" e\" f\\ g ''\n# x\nh \\\n  i # j\n", file: "f")
        #expect(errors.isEmpty)
        #expect(
            commands == [
                [
                    RulesToken(text: "a", line: 1), RulesToken(text: "b c", line: 1), RulesToken(text: "d \" e", line: 1),
                    RulesToken(text: "f g", line: 1), RulesToken(text: "", line: 1),
                ],
                [RulesToken(text: "h", line: 3), RulesToken(text: "i", line: 4)],
            ])
    }

    // MARK: Refusals

    @Test(arguments: [
        ("-p tcp -m pknock --knockports 1 --dport 22 -j ACCEPT", "1: --name is required"),
        ("-p udp -m pknock --knockports 4000 --name A --opensecret abcdefgh -j DROP", "1: rule A: --opensecret: needs --closesecret as well"),
        ("-p udp -m pknock --knockports 4000 --name A --closesecret abcdefgh -j DROP", "1: rule A: --closesecret: needs --opensecret as well"),
        (
            "-p udp -m pknock --knockports 4000 --name A --opensecret same-secret \\\n --closesecret same-secret -j DROP",
            "2: rule A: --closesecret: the open and close secrets must differ"
        ),
        (
            "-p udp -m pknock --knockports 4000,4001 --name A --opensecret abcdefgh --closesecret 12345678 -j DROP",
            "1: rule A: --knockports: an SPA rule (open_secret) needs exactly one knock port, found 2"
        ),
        (
            "-p tcp -m pknock --knockports 4000 --name A --opensecret abcdefgh --closesecret 12345678 -j DROP",
            "1: rule A: --knockports: SPA knocks are UDP only"
        ),
        (
            "-p udp -m pknock --knockports 4000 --name A --secure abcdefgh --opensecret x -j DROP",
            "1: rule A: --opensecret: cannot be combined with --secure"
        ),
        ("-p tcp -m pknock --checkip --knockports 1 --name A --dport 22", "1: rule A: --knockports: cannot be combined with --checkip"),
        ("-p tcp -m pknock --checkip --opensecret s --name A --dport 22", "1: rule A: --opensecret: cannot be combined with --checkip"),
        ("-p tcp -m pknock --checkip --closesecret s --name A --dport 22", "1: rule A: --closesecret: cannot be combined with --checkip"),
        ("-p tcp -m pknock --checkip --time 5 --name A --dport 22", "1: rule A: --time: cannot be combined with --checkip"),
        ("-p tcp -m pknock --checkip --autoclose 5 --name A --dport 22", "1: rule A: --autoclose: cannot be combined with --checkip"),
        (
            "-p tcp -m pknock --knockports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 --name A --dport 22",
            "1: rule A: --knockports: at most 15 knock ports are allowed, found 16"
        ),
        ("-p tcp -m pknock --name A --dport 22 -j ACCEPT", "1: rule A: --knockports or --checkip is required"),
        ("-p tcp -m pknock --knockports 1,0 --name A", "1: --knockports: port 0 is out of range (1 to 65535)"),
        ("-p tcp -m pknock --knockports 1,,2 --name A", "1: --knockports: \"\" is not a port number (1 to 65535)"),
        ("-p tcp -m pknock --knockports 1 --name A --dport 65536", "1: --dport: port 65536 is out of range (1 to 65535)"),
        ("-p tcp -m pknock --knockports 1 --name A --dport 22:24", "1: --dport: \"22:24\" is not a port number (1 to 65535)"),
        ("-p tcp -m pknock --knockports 1 --name A --time 1.5", "1: --time needs a whole number of seconds, found \"1.5\""),
        ("-p tcp -m pknock --knockports 1 --name A --time 0 --dport 22", "1: rule A: --time: the time between knocks must be positive"),
        ("-p tcp -m pknock --checkip --name B --dport 22 -j ACCEPT", "1: rule B: --checkip: no knock rule (--knockports) has this name"),
        ("-p tcp -m pknock --checkip --name B -j ACCEPT", "1: rule B: --checkip: needs --dport: PortKnockO protects named ports, not all traffic"),
        ("-p tcp -m pknock --knockports 1 --name A --dport 22 -j DROP", "1: rule A: -j: DROP with --dport would block the peers that knocked; use -j ACCEPT"),
        ("-p tcp -m pknock --knockports 1 --name A --dport 22 --foo", "1: unsupported option \"--foo\""),
        ("-p tcp ! -m pknock", "1: unsupported option \"!\""),
        ("-p tcp -m pknock --knockports 1 --name A extra", "1: unexpected argument \"extra\""),
        ("-p tcp -m recent --name A", "1: match \"recent\" is not supported (pknock, tcp, udp, state, conntrack)"),
        ("-p icmp -m pknock", "1: protocol \"icmp\" is not supported (tcp or udp)"),
        ("-p tcp -m pknock --knockports 1 --name A --dport 22 -j REJECT", "1: target \"REJECT\" is not supported (ACCEPT or DROP)"),
        ("-p tcp -m state --state ESTABLISHED", "1: --state ESTABLISHED is not supported: only NEW"),
        ("-p tcp --state NEW", "1: --state needs -m state before it"),
        ("-p tcp --knockports 1 --name A", "1: --knockports needs -m pknock before it"),
        ("-m pknock --knockports 1 --name A --dport 22", "1: --dport needs -p tcp or -p udp before it"),
        ("-p tcp -m pknock --knockports 1 --name A --name B", "1: --name is given twice"),
        ("-p tcp -m pknock --knockports 1 --name", "1: --name needs a value"),
        ("-p tcp -m pknock --knockports 1 --name --strict", "1: --name needs a value"),
        ("-p tcp -m pknock --knockports 1 --name 'A", "1: unterminated ' quote"),
        (
            "-p tcp -m pknock --knockports 1 --name bad.name --dport 22",
            "1: rule bad.name: --name: rule name \"bad.name\" may only contain letters, digits, '_' and '-'"
        ),
    ])
    func refusals(text: String, expected: String) {
        #expect(errors(text) == ["/etc/pknock/xt.rules:\(expected)"])
    }

    @Test func everyBadLineIsReportedWithItsOwnLine() {
        let text = """
            # header

            -p tcp -m pknock --knockports 1 --dport 22 -j ACCEPT
            -p tcp -m pknock --knockports 2 --name OK --dport 23 -j ACCEPT
            -p tcp -m pknock --knockports 3 \\
                   --name C --bogus
            -p tcp -m pknock --checkip --name Z --dport 24
            """
        #expect(
            errors(text) == [
                "/etc/pknock/xt.rules:3: --name is required",
                "/etc/pknock/xt.rules:6: unsupported option \"--bogus\"",
                "/etc/pknock/xt.rules:7: rule Z: --checkip: no knock rule (--knockports) has this name",
            ])
    }

    @Test func checkIPStrictIsAWarning() throws {
        let configuration = try load(
            "-p tcp -m pknock --knockports 1 --name A -j DROP\n-p tcp -m pknock --checkip --strict --name A --dport 22 -j ACCEPT")
        #expect(configuration.warnings.map(\.description) == ["/etc/pknock/xt.rules:2: warning: rule A: --strict: has no effect with --checkip"])
    }

    @Test func secretsNeverAppearInDiagnostics() {
        let secret = "hunter2-very-secret"
        let texts = [
            "-p udp -m pknock --knockports 4000 --name A --opensecret \(secret) -j DROP",
            "-p udp -m pknock --knockports 4000 --name A --opensecret \(secret) --closesecret \(secret) -j DROP",
            "-p udp -m pknock --knockports 4000 --name A --opensecret \(secret) \(secret) --closesecret x -j DROP",
            "-p udp -m pknock --knockports 4000 --name A --secure \(secret) --closesecret \(secret) -j DROP",
            "-p udp -m pknock --checkip --name A --opensecret \(secret) --dport 22",
        ]
        for text in texts {
            let found = errors(text)
            #expect(!found.isEmpty)
            for line in found { #expect(!line.contains(secret)) }
        }
    }
}
