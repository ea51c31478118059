import Foundation
import KnockConfig
import KnockCore
import Testing

@testable import pknock

/// Runs the built `pknock` binary and checks what `pknock check` prints and returns.
@Suite struct CheckCommandTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The `pknock` (or `name`) executable next to the test bundle (SwiftPM puts both in the same directory).
    static func binary(_ name: String = "pknock") throws -> URL {
        var directories: [URL] = []
        if let executable = Bundle.main.executableURL { directories.append(executable.deletingLastPathComponent()) }
        if let first = CommandLine.arguments.first { directories.append(URL(fileURLWithPath: first).deletingLastPathComponent()) }
        directories += Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        directories.append(packageRoot.appendingPathComponent(".build/debug"))
        for directory in directories {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(name) next to the test bundle"])
    }

    static func run(_ arguments: [String]) throws -> Run {
        try runBinary("pknock", arguments)
    }

    /// Runs the built executable `name` with `arguments` and collects its output; standard input
    /// is /dev/null (never a terminal), and `environment`, when given, is all the process sees.
    static func runBinary(_ name: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Run {
        let process = Process()
        process.executableURL = try binary(name)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// A copy of examples/ in a temporary directory, secret files at mode 0600 whatever git gave them.
    struct Examples {
        let directory: String

        init() throws {
            directory = NSTemporaryDirectory() + "pknock-check-tests-" + UUID().uuidString
            let manager = FileManager.default
            try manager.createDirectory(atPath: directory + "/secrets", withIntermediateDirectories: true)
            let source = CheckCommandTests.packageRoot.appendingPathComponent("examples").path
            for name in ["pknock.toml", "xt_pknock.rules", "secrets/ftp.open.secret", "secrets/ftp.close.secret"] {
                try manager.copyItem(atPath: source + "/" + name, toPath: directory + "/" + name)
                try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory + "/" + name)
            }
        }

        func path(_ name: String) -> String { directory + "/" + name }

        func write(_ name: String, _ text: String) throws -> String {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path(name)))
            return path(name)
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }
    }

    private static let exampleSecrets = ["open sesame", "close it again"]

    @Test func exampleTOMLIsValid() throws {
        let examples = try Examples()
        defer { examples.cleanUp() }
        let run = try Self.run(["check", examples.path("pknock.toml")])
        #expect(run.status == 0)
        #expect(run.stderr == "")
        #expect(run.stdout.hasSuffix("\nconfiguration OK\n"))
        #expect(run.stdout.contains("\nrule SSH\n  knock:              2002:tcp 2001:tcp 2004:tcp\n"))
        #expect(run.stdout.contains("  autoclose:          1h\n"))
        #expect(run.stdout.contains("\nrule FTP\n"))
        #expect(run.stdout.contains("  spa:                sha256, close secret: yes, clock skew: 1 min\n"))
        #expect(run.stdout.contains("  protect:            21:tcp\n"))
        for secret in Self.exampleSecrets { #expect(!run.stdout.contains(secret)) }
    }

    @Test func exampleRulesFileIsValidWithAWarning() throws {
        let examples = try Examples()
        defer { examples.cleanUp() }
        let path = examples.path("xt_pknock.rules")
        let run = try Self.run(["check", path])
        #expect(run.status == 0)
        #expect(
            run.stderr
                == "\(path):10: warning: rule FTP: --opensecret: the secret is written in the rules file; in pknock.toml keep it in open_secret_file, readable only by root\n"
        )
        #expect(run.stdout.hasSuffix("configuration OK\n"))
        #expect(run.stdout.contains("\nrule SSH\n"))
        for secret in Self.exampleSecrets {
            #expect(!run.stdout.contains(secret))
            #expect(!run.stderr.contains(secret))
        }
    }

    @Test func aSequenceInSweepOrderIsWarnedAbout() throws {
        // issue 11: any ascending port sweep traverses an ascending sequence (and a reverse one a
        // descending sequence), whatever the wrong-knock budget.
        let examples = try Examples()
        defer { examples.cleanUp() }
        let path = try examples.write(
            "sweep.toml",
            """
            [[rule]]
            name = "UP"
            knock = [3001, 3002, 3004]
            protect = [22]
            max_wrong_knocks = 3

            [[rule]]
            name = "DOWN"
            knock = [3104, 3102, 3101]
            protect = [23]
            """)
        let run = try Self.run(["check", path])
        #expect(run.status == 0)
        #expect(run.stderr.contains("\(path):3: warning: rule UP: knock: the knock ports are in ascending order"))
        #expect(run.stderr.contains("\(path):9: warning: rule DOWN: knock: the knock ports are in descending order"))
        #expect(run.stdout.contains("\nrule UP\n") && run.stdout.contains("  max wrong knocks:   3\n"))
        #expect(run.stdout.contains("  max wrong knocks:   8\n"), "the default budget of a pknock.toml rule")
    }

    @Test func brokenConfigurationPrintsEveryErrorAndExits2() throws {
        let examples = try Examples()
        defer { examples.cleanUp() }
        let path = try examples.write(
            "broken.toml",
            """
            [daemon]
            nflog_group = 70000

            [[rule]]
            name = "SSH"
            knock = [2002, 0]
            autoclose = "5 minutes"
            """)
        let run = try Self.run(["check", path])
        #expect(run.status == 2)
        #expect(run.stdout == "")
        #expect(
            run.stderr == """
                \(path):2: daemon.nflog_group: must be 0 to 65535, found 70000
                \(path):6: rule SSH: knock: port 0 is out of range (1 to 65535)
                \(path):7: rule SSH: autoclose: invalid duration "5 minutes": use a whole number with s, m, h or d, such as "90s" or "2h"

                """)
    }

    @Test func brokenRulesFileExits2() throws {
        let examples = try Examples()
        defer { examples.cleanUp() }
        let path = try examples.write(
            "broken.rules", "iptables -A INPUT -p udp -m pknock --knockports 4000 --name FTP --opensecret 'x y z' -j DROP\n")
        let run = try Self.run(["check", path])
        #expect(run.status == 2)
        #expect(run.stderr == "\(path):1: rule FTP: --opensecret: needs --closesecret as well\n")
        #expect(!run.stderr.contains("x y z"))
    }

    @Test func openSecretFilePermissionsAreRefused() throws {
        let examples = try Examples()
        defer { examples.cleanUp() }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: examples.path("secrets/ftp.open.secret"))
        let run = try Self.run(["check", examples.path("pknock.toml")])
        #expect(run.status == 2)
        #expect(run.stderr.contains("rule FTP: open_secret_file: \(examples.path("secrets/ftp.open.secret")) has mode 0644"))
    }

    @Test func missingFileExits2() throws {
        let run = try Self.run(["check", "/nonexistent/pknock.toml"])
        #expect(run.status == 2)
        #expect(run.stdout == "")
        #expect(run.stderr == "/nonexistent/pknock.toml: no such file\n")
    }

    @Test func jsonOutput() throws {
        let examples = try Examples()
        defer { examples.cleanUp() }
        let run = try Self.run(["check", "--format", "json", examples.path("pknock.toml")])
        #expect(run.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(object["ok"] as? Bool == true)
        let rules = try #require(object["rules"] as? [[String: Any]])
        #expect(rules.compactMap { $0["name"] as? String } == ["SSH", "FTP"])
        #expect(rules.first?["time_seconds"] as? Int == 10)
        #expect(rules.first?["autoclose_seconds"] as? Int == 3600)
        #expect(rules.first?["knock"] as? [String] == ["2002:tcp", "2001:tcp", "2004:tcp"])
        #expect(rules.first?["spa"] is NSNull)
        let spa = try #require(rules.last?["spa"] as? [String: Any])
        #expect(spa["format"] as? String == "sha256")
        #expect(spa["close_secret"] as? Bool == true)
        #expect((object["daemon"] as? [String: Any])?["table"] as? String == "pknock")
        for secret in Self.exampleSecrets { #expect(!run.stdout.contains(secret)) }
    }

    @Test func jsonOutputOfABrokenFile() throws {
        let examples = try Examples()
        defer { examples.cleanUp() }
        let path = try examples.write("broken.toml", "[[rule]]\nname = \"A\"\nknock = [1]\nstrict = 1\n")
        let run = try Self.run(["check", "--format", "json", path])
        #expect(run.status == 2)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(object["ok"] as? Bool == false)
        let errors = try #require(object["errors"] as? [[String: Any]])
        #expect(errors.count == 1)
        #expect(errors.first?["line"] as? Int == 4)
        #expect(errors.first?["field"] as? String == "strict")
        #expect(run.stderr == "\(path):4: rule A: strict: expected true or false, found an integer\n")
    }

    @Test func badFormatIsAUsageError() throws {
        let run = try Self.run(["check", "--format", "yaml", "/nonexistent"])
        #expect(run.status == 64)
    }

    // MARK: Rendering, in process

    @Test(arguments: [
        (Duration.seconds(10), "10s"), (.seconds(90), "90s"), (.seconds(120), "2m"), (.seconds(3600), "1h"),
        (.seconds(5400), "90m"), (.seconds(86400), "1d"), (.seconds(0), "0s"),
    ])
    func durations(duration: Duration, text: String) {
        #expect(Check.durationText(duration) == text)
    }

    @Test func textNeverShowsSecrets() throws {
        guard let name = RuleName(rawValue: "S"), let port = Port(rawValue: 4000) else {
            Issue.record("bad fixture")
            return
        }
        let rule = Rule(
            name: name, knockSequence: [ServicePort(port, .udp)],
            spa: SPASettings(format: .md5, openSecret: Secret("SECRET-BYTES-1"), closeSecret: nil))
        let text = Check.text(Configuration(rules: [rule]))
        #expect(text.contains("  spa:                md5, close secret: no, clock skew: 1 min\n"))
        #expect(text.contains("  protect:            nothing\n"))
        #expect(!text.contains("SECRET-BYTES-1"))
        #expect(!Check.json(CheckReport(Configuration(rules: [rule]))).contains("SECRET-BYTES-1"))
    }

    @Test func parsesArguments() throws {
        let check = try Check.parse(["--format", "json", "x.toml"])
        #expect(check.file == "x.toml")
        #expect(check.format == .json)
        #expect(try Check.parse([]).file == "/etc/pknock/pknock.toml")
    }
}
