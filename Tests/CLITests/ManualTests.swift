import Foundation
import Testing

/// The generated man pages must keep up with the binaries: every long option each command's
/// `--help` shows is in its page (regenerate with Scripts/generate-manuals.sh).
@Suite struct ManualTests {
    static func manual(_ name: String) throws -> String {
        try String(contentsOf: CheckCommandTests.packageRoot.appendingPathComponent("Docs/man/\(name)"), encoding: .utf8)
    }

    /// The long options of the OPTIONS section: lines like `  -v, --verbose` or `  --delay <ms>`.
    static func longOptions(inHelp help: String) -> Set<String> {
        let option = /^\s+(?:-[a-zA-Z0-9], )?(--[a-z][a-z0-9-]+)/
        let found = help.split(separator: "\n").compactMap { line in (try? option.firstMatch(in: String(line)))?.output.1 }
        return Set(found.map(String.init)).subtracting(["--help", "--version"])
    }

    /// How the mdoc pages write an option: `Fl -name`, or `Fl x , -name` when it has a short form.
    static func mentions(_ page: String, _ option: String) -> Bool {
        let name = option.dropFirst(2)
        return page.contains("Fl -\(name) ") || page.hasSuffix("Fl -\(name)") || page.contains("Fl -\(name)\n")
            || page.contains(", -\(name)")
    }

    @Test func pknockdPageListsEveryOption() throws {
        let page = try Self.manual("pknockd.8")
        let help = try CheckCommandTests.runBinary("pknockd", ["--help"]).stdout
        let options = Self.longOptions(inHelp: help)
        #expect(options.contains("--config") && options.contains("--teardown"), "options read from --help: \(options)")
        let missing = options.filter { !Self.mentions(page, $0) }
        #expect(missing.isEmpty, "Docs/man/pknockd.8 lacks \(missing.sorted()); run Scripts/generate-manuals.sh")
    }

    @Test(arguments: ["knock", "check", "status", "events", "open", "close", "translate", "keygen", "client-config"])
    func pknockPageListsEverySubcommandOption(subcommand: String) throws {
        let page = try Self.manual("pknock.1")
        let help = try CheckCommandTests.run(["help", subcommand]).stdout
        #expect(page.contains(subcommand))
        let options = Self.longOptions(inHelp: help)
        #expect(!options.isEmpty, "no options read from `pknock help \(subcommand)`")
        let missing = options.filter { !Self.mentions(page, $0) }
        #expect(missing.isEmpty, "Docs/man/pknock.1 lacks \(missing.sorted()) of \(subcommand); run Scripts/generate-manuals.sh")
    }
}
