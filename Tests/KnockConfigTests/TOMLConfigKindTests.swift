import Foundation
import KnockCore
import Testing

@testable import KnockConfig

/// TOML 1.0 forms in `pknock.toml`: dotted keys and inline tables work like headers; floats, dates
/// and times parse but no setting takes them, so they are refused naming the key, file and line.
@Suite struct TOMLConfigKindTests {
    private static let rule = "[[rule]]\nname = \"SSH\"\nknock = [2002, 2001, 2004]\nprotect = [22]\n"

    @Test(arguments: [
        "daemon.table = \"pk_dotted\"\ndaemon.nflog_group = 9\n",
        "daemon = { table = \"pk_dotted\", nflog_group = 9 }\n",
        "[daemon]\ntable = \"\"\"pk_dotted\"\"\"\nnflog_group = 0x9\n",
        "[daemon]\ntable = '''\npk_dotted'''\nnflog_group = +9\n",
    ])
    func otherTOMLFormsConfigureTheDaemon(text: String) throws {
        let configuration = try Fixture.load(text + Self.rule)
        #expect(configuration.daemon.table == "pk_dotted")
        #expect(configuration.daemon.nflogGroup == 9)
        #expect(configuration.rules.map(\.name.rawValue) == ["SSH"])
    }

    @Test(arguments: [
        ("[daemon]\nnflog_group = 9.0\n", 2, "daemon.nflog_group: expected an integer, found a float; settings take whole numbers"),
        (
            "[daemon]\nmax_tracked_peers = inf\n", 2,
            "daemon.max_tracked_peers: expected an integer, found a float; settings take whole numbers"
        ),
        (
            "[daemon]\ntable = 1979-05-27\n", 2,
            "daemon.table: expected a string, found a local date; no setting takes a date or time"
        ),
        (
            "[daemon]\n\nhook_timeout = 1.5\n", 3,
            "daemon.hook_timeout: expected a number or a duration such as \"90s\", \"30m\", \"2h\" or \"1d\", found a float; settings take whole numbers"
        ),
        (
            "[daemon]\nspa2_clock_window = 00:00:30\n", 2,
            "daemon.spa2_clock_window: expected a number or a duration such as \"90s\", \"30m\", \"2h\" or \"1d\", found a local time; no setting takes a date or time"
        ),
    ])
    func floatsAndDatesAreRefusedByKey(text: String, line: Int, message: String) throws {
        let errors = Fixture.errors(text + Self.rule)
        #expect(errors.map(\.description) == ["\(Fixture.file):\(line): \(message)"])
    }

    @Test func floatsAndDatesInARuleNameTheRule() throws {
        let errors = Fixture.errors(
            "[[rule]]\nname = \"SSH\"\nknock = [2002, 2001.5]\nprotect = [22]\ntime = 2.5\nautoclose = 1979-05-27T07:32:00Z\n")
        #expect(
            errors.map(\.description) == [
                "\(Fixture.file):3: rule SSH: knock: expected port numbers or \"port:protocol\" strings, found a float",
                "\(Fixture.file):5: rule SSH: time: expected a number or a duration such as \"90s\", \"30m\", \"2h\" or \"1d\", found a float; settings take whole numbers",
                "\(Fixture.file):6: rule SSH: autoclose: expected a number or a duration such as \"90s\", \"30m\", \"2h\" or \"1d\", found an offset date-time; no setting takes a date or time",
            ])
    }

    @Test func anUnknownKeyWithAFloatIsStillAnUnknownKey() throws {
        let errors = Fixture.errors("[daemon]\nratio = 0.5\n" + Self.rule)
        #expect(errors.map(\.description) == ["\(Fixture.file):2: daemon: unknown key \"ratio\""])
    }

    /// One byte order mark is skipped, in either format; a second is an error (Foundation's
    /// decoding used to drop the first silently, so the parser skipped the second).
    @Test func oneByteOrderMarkLoadsAndTwoAreRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let one = try directory.write("one.toml", "\u{FEFF}" + Self.rule)
        let two = try directory.write("two.toml", "\u{FEFF}\u{FEFF}" + Self.rule)
        let rules = try directory.write(
            "bom.conf", "\u{FEFF}iptables -A INPUT -p tcp -m pknock --knockports 2002,2001,2004 --name SSH --dport 22 -j ACCEPT\n")
        #expect(try ConfigLoader.load(path: one).rules.map(\.name.rawValue) == ["SSH"])
        #expect(try ConfigLoader.load(path: rules).rules.map(\.name.rawValue) == ["SSH"])
        #expect(throws: ConfigError(ConfigDiagnostic(file: two, line: 1, "expected a key, found byte 0xEF"))) {
            try ConfigLoader.load(path: two)
        }
        let invalid = directory.path + "/invalid.toml"
        try Data(Array(Self.rule.utf8) + [0x23, 0xC3, 0x28, 0x0A]).write(to: URL(fileURLWithPath: invalid))
        #expect(throws: ConfigError(ConfigDiagnostic(file: invalid, line: nil, "the file is not valid UTF-8 text"))) {
            try ConfigLoader.load(path: invalid)
        }
    }
}
