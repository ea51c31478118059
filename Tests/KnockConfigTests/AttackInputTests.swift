import KnockCore
import Testing

@testable import KnockConfig

/// Hostile or broken configuration input: every refusal names the file, the line and the field,
/// and nothing an attacker can put in a file crashes the loader. (Exit status 2 for these is
/// pknockd's `fail`, tested end to end; secret-file modes are in LoaderTests.)
@Suite struct AttackInputTests {
    static let rule = "[[rule]]\nname = \"R\"\n"

    /// TOML text, the 1-based line and the field the refusal must name.
    @Test(
        arguments: [
            (rule + "knock = [0]\nprotect = [22]\n", 3, "knock"),
            (rule + "knock = [65536]\nprotect = [22]\n", 3, "knock"),
            (rule + "knock = [-1]\nprotect = [22]\n", 3, "knock"),
            (rule + "knock = [99999999999999999999999]\nprotect = [22]\n", 3, nil),
            (rule + "knock = [\"22:sctp\"]\nprotect = [22]\n", 3, "knock"),
            (rule + "knock = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\nprotect = [22]\n", 3, "knock"),
            (rule + "knock = [7000]\ntime = -5\nprotect = [22]\n", 4, "time"),
            (rule + "knock = [7000]\nautoclose = \"1000000000000d\"\nprotect = [22]\n", 4, "autoclose"),
            (rule + "knock = [7000]\nprotect = [22]\nmax_tracked_peers = 0\n", 5, "max_tracked_peers"),
            (rule + "knock = [7000]\nprotect = [22]\nmax_tracked_peers = 9223372036854775807\n", 5, "max_tracked_peers"),
            ("[[rule]]\nname = \"\(String(repeating: "A", count: 40))\"\nknock = [7000]\nprotect = [22]\n", 2, "name"),
            ("[[rule]]\nname = \"bad name;drop\"\nknock = [7000]\nprotect = [22]\n", 2, "name"),
            ("[[rule]]\nname = \"R\\u0000\"\nknock = [7000]\nprotect = [22]\n", 2, "name"),
            (rule + "knock = [\"4000:udp\"]\nopen_secret_file = \"../../../../etc/shadow\"\nprotect = [22]\n", 4, "open_secret_file"),
            ("[daemon]\nnflog_group = 70000\n", 2, "daemon.nflog_group"),
            ("[daemon]\nstate_directory = \"relative/dir\"\n", 2, "daemon.state_directory"),
            ("[daemon]\ntable = \"x; flush ruleset\"\n", 2, "daemon.table"),
        ] as [(String, Int, String?)])
    func tomlRefusalNamesFileLineAndField(text: String, line: Int, field: String?) {
        let errors = Fixture.errors(text)
        #expect(!errors.isEmpty)
        let first = errors.first
        #expect(first?.file == Fixture.file)
        #expect(first?.line == line, "\(errors)")
        if let field { #expect(errors.contains { $0.field == field && $0.line == line }, "\(errors)") }
        #expect(first?.description.hasPrefix("\(Fixture.file):\(line): ") == true)
    }

    /// Syntax errors: unterminated strings, bad escapes, duplicate keys, garbage bytes.
    @Test(arguments: [
        ("name = \"unterminated\n", 1),
        ("a = 1\na = 2\n", 2),
        ("x = \"\\q\"\n", 1),
        ("[[rule]\n", 1),
        ("\n\n= 5\n", 3),
        ("a = [1, 2\n", 1),  // the file ends inside the array: reported where the array opens
        ("a = 1 b = 2\n", 1),
        ("\u{0}\u{1}\u{2}\n", 1),
        ("a = 0x\n", 1),
    ])
    func tomlSyntaxErrorsNameTheLine(text: String, line: Int) {
        let errors = Fixture.errors(text)
        #expect(errors.first?.file == Fixture.file)
        #expect(errors.first?.line == line, "\(errors)")
    }

    /// Rules-file text, the line and the option the refusal must name.
    @Test(
        arguments: [
            ("iptables -A INPUT -p tcp -m pknock --knockports 0 --name A -j ACCEPT\n", 1, "--knockports"),
            ("iptables -A INPUT -p tcp -m pknock --knockports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 --name A -j ACCEPT\n", 1, "--knockports"),
            ("# comment\niptables -A INPUT -p tcp -m pknock --knockports 7000 --name 'a b' -j ACCEPT\n", 2, "--name"),
            ("\n\niptables -A INPUT -p udp -m pknock --knockports 4000 --name S --opensecret X -j DROP\n", 3, "--opensecret"),
            ("iptables -A INPUT -p tcp -m pknock --knockports 7000 --name A --time -5 -j ACCEPT\n", 1, "--time"),
            ("iptables -A INPUT -p tcp -m pknock --checkip --name A --time 5 --dport 22 -j ACCEPT\n", 1, "--time"),
        ] as [(String, Int, String)])
    func rulesFileRefusalNamesFileLineAndOption(text: String, line: Int, option: String) {
        do {
            _ = try ConfigLoader.parseRulesFile(text, file: "/etc/pknock/x.rules")
            Issue.record("expected a refusal")
        } catch {
            let first = error.diagnostics.first
            #expect(first?.file == "/etc/pknock/x.rules")
            #expect(first?.line == line, "\(error)")
            #expect(error.description.contains(option), "\(error)")
        }
    }

    @Test func everyErrorIsReportedNotOnlyTheFirst() {
        let errors = Fixture.errors(
            """
            [[rule]]
            name = "A"
            knock = [0]
            protect = [22]

            [[rule]]
            name = "B"
            knock = [7000]
            time = -1
            protect = [22]
            """)
        #expect(errors.map(\.line) == [3, 9], "\(errors)")
    }

    @Test func aVeryLongLineOrFileDoesNotCrash() {
        let long = "x = \"" + String(repeating: "a", count: 1 << 20) + "\"\n"
        #expect(throws: Never.self) { _ = try? Fixture.load(long) }
        let many = String(repeating: "# comment\n", count: 100_000) + "a = \"\n"
        #expect(Fixture.errors(many).first?.line == 100_001)
    }
}
