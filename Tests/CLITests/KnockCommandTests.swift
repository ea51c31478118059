import ArgumentParser
import Foundation
import KnockCore
import Testing

@testable import pknock

/// `pknock knock`: usage errors, exit statuses, dry runs and the SPA bytes.
///
/// The SPA bytes are checked against an independent HMAC (Python's `hmac`). No test here sends a packet: sending is covered by the
/// namespace scenarios in Scripts/e2e/20-client.sh.
@Suite struct KnockCommandTests {
    /// A temporary directory, removed by `cleanUp`.
    struct Scratch {
        let directory = NSTemporaryDirectory() + "pknock-knock-tests-" + UUID().uuidString

        init() throws { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }

        /// Writes `text` to `name` with `mode` and returns its path.
        func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
            let path = directory + "/" + name
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            return path
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Runs `pknock` with standard input from /dev/null (never a terminal) and only `environment`.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> CheckCommandTests.Run {
        try CheckCommandTests.runBinary(
            "pknock", arguments, environment: ["PATH": "/usr/bin:/bin", "HOME": "/nonexistent-home"].merging(environment) { $1 })
    }

    /// HMAC computed by Python, as lowercase hex: the MAC input is the packed address and the
    /// minute, little-endian, 4 bytes for sha256 and 8 for md5 (the original formats).
    static func pythonMAC(format: String, secret: String, address: String, minute: Int64) throws -> String {
        let script = """
            import hmac, hashlib, socket, struct, sys
            fmt, secret, address, minute = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
            family = socket.AF_INET6 if ':' in address else socket.AF_INET
            packed = socket.inet_pton(family, address)
            message = packed + (struct.pack('<I', minute) if fmt == 'sha256' else struct.pack('<Q', minute))
            print(hmac.new(secret.encode(), message, hashlib.sha256 if fmt == 'sha256' else hashlib.md5).hexdigest())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, format, secret, address, String(minute)]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "python3 failed")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Usage errors (exit 64)

    @Test(arguments: [
        (["knock", "192.0.2.1", "0"], "port 0 is out of range (1 to 65535)"),
        (["knock", "192.0.2.1", "70000"], "port 70000 is out of range (1 to 65535)"),
        (["knock", "192.0.2.1", "ssh"], "\"ssh\" is not a port number (1 to 65535)"),
        (["knock", "192.0.2.1", "22:sctp"], "unknown protocol \"sctp\" in \"22:sctp\" (tcp or udp)"),
        (["knock", "-4", "-6", "192.0.2.1", "22"], "-4 and -6 exclude each other"),
        (["knock", "--delay=-1", "192.0.2.1", "22"], "--delay must be 0 to 60000"),
        (["knock", "--delay", "60001", "192.0.2.1", "22"], "--delay must be 0 to 60000"),
        (["knock", "--spa", "192.0.2.1", "4000", "4001"], "exactly one port"),
        (["knock", "--spa", "192.0.2.1", "4000:tcp"], "SPA knocks are UDP only"),
        (["knock", "--secret-file", "f", "192.0.2.1", "4000"], "--secret-file applies to SPA only"),
        (["knock", "--close", "192.0.2.1", "4000"], "--close applies to SPA only"),
        (["knock", "--spa", "--source-ip", "nope", "192.0.2.1", "4000"], "--source-ip: 'nope' is not an IP address"),
        (["knock", "--wait", "22:0", "192.0.2.1", "2002"], "not a number of seconds"),
        (["knock", "--wait", "ssh", "192.0.2.1", "2002"], "wait: \"ssh\" is not a port number (1 to 65535)"),
        (["knock", "--wait", "0:5", "192.0.2.1", "2002"], "wait: port 0 is out of range (1 to 65535)"),
        (["knock", "--wait", "22:5:5", "192.0.2.1", "2002"], "wait: '22:5:5' is not PORT or PORT:SECONDS"),
        (["knock", "--spa", "--secret", "a", "--secret-file", "f", "192.0.2.1", "4000"], "not both"),
    ])
    func usageErrors(arguments: [String], message: String) {
        #expect {
            try Pknock.parseAsRoot(arguments)
        } throws: { error in
            Pknock.exitCode(for: error) == .validationFailure && Pknock.message(for: error).contains(message)
        }
    }

    @Test func usageErrorExitStatusIs64() throws {
        let run = try Self.run(["knock", "192.0.2.1", "2002", "99999"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("port 99999 is out of range (1 to 65535)"))
        #expect(run.stdout.isEmpty)
    }

    @Test func parsesOptions() throws {
        let parsed = try Pknock.parseAsRoot(["knock", "-6", "--udp", "--delay", "100", "host.example", "7000", "8000:tcp"])
        let command = try #require(parsed as? KnockCommand)
        let plan = try KnockPlan.make(command.options, profile: nil, environment: [:], stdinIsTerminal: false)
        #expect(plan.family == .ipv6)
        #expect(plan.delayMilliseconds == 100)
        #expect(plan.knocks.map(\.description) == ["7000:udp", "8000:tcp"])
        #expect(plan.spa == nil)
    }

    // MARK: Dry runs

    @Test func dryRunSequencePrintsEveryPacketAndDelay() throws {
        let run = try Self.run(["knock", "--dry-run", "192.0.2.1", "2002", "7000:udp", "--delay", "15"])
        #expect(run.status == 0)
        #expect(
            run.stdout == """
                would send TCP SYN to 192.0.2.1 port 2002
                would wait 15 ms
                would send UDP datagram (1 byte) to 192.0.2.1 port 7000

                """)
        #expect(run.stderr.isEmpty)
    }

    @Test func dryRunIPv6AndWait() throws {
        let run = try Self.run(["knock", "--dry-run", "--udp", "--delay", "0", "--wait", "22:9", "2001:db8::1", "1", "2:tcp"])
        #expect(run.status == 0)
        #expect(
            run.stdout == """
                would send UDP datagram (1 byte) to 2001:db8::1 port 1
                would send TCP SYN to 2001:db8::1 port 2
                would wait up to 9 s for 2001:db8::1 port 22 to answer

                """)
    }

    /// The SPA payload is the HMAC Python computes, as lowercase hex, then a newline (65 bytes for sha256).
    @Test(arguments: [
        ("sha256", "192.0.2.7", "open-sesame", Int64(29_000_000)),
        ("md5", "192.0.2.7", "open-sesame", Int64(29_000_000)),
        ("sha256", "2001:db8::42", "a longer secret, with spaces", Int64(28_123_457)),
        ("md5", "2001:db8::42", "x", Int64(1)),
    ])
    func spaPayloadMatchesPythonHMAC(format: String, source: String, secret: String, minute: Int64) throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let secretFile = try scratch.write("spa.secret", secret + "\n")
        let run = try Self.run([
            "knock", "--dry-run", "--spa", "--format", format, "--secret-file", secretFile, "--source-ip", source,
            "--epoch-minute", String(minute), "192.0.2.1", "4000",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let expected = try Self.pythonMAC(format: format, secret: secret, address: source, minute: minute)
        #expect(expected.count == (format == "sha256" ? 64 : 32))
        let bytes = expected.count + 1
        #expect(
            run.stdout == """
                would send SPA open knock (\(format)) to 192.0.2.1 port 4000:udp: \(bytes) bytes, MAC over source \(source) and epoch minute \(minute)
                payload: \(expected) + newline

                """)
    }

    @Test func spaDryRunUsesTheCurrentMinuteAndTheLocalAddress() throws {
        let before = Int64(Date().timeIntervalSince1970) / 60
        let run = try Self.run(
            ["knock", "--dry-run", "--spa", "127.0.0.1", "4000"], environment: ["PKNOCK_SECRET": "from-the-environment"])
        let after = Int64(Date().timeIntervalSince1970) / 60
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        try #require(lines.count == 2)
        #expect(lines[0].contains("MAC over source 127.0.0.1 and epoch minute"))
        let minute = try #require(lines[0].split(separator: " ").last.flatMap { Int64($0) })
        #expect((before...after).contains(minute))
        let mac = try Self.pythonMAC(format: "sha256", secret: "from-the-environment", address: "127.0.0.1", minute: minute)
        #expect(lines[1] == "payload: \(mac) + newline")
    }

    @Test func closeLabelsTheKnock() throws {
        let run = try Self.run(
            ["knock", "--dry-run", "--spa", "--close", "--source-ip", "192.0.2.2", "--epoch-minute", "5", "192.0.2.1", "4000"],
            environment: ["PKNOCK_SECRET": "s"])
        #expect(run.status == 0)
        #expect(run.stdout.hasPrefix("would send SPA close knock (sha256) to 192.0.2.1 port 4000:udp: 65 bytes"))
    }

    // MARK: Secrets

    @Test func secretOnTheCommandLineWarns() throws {
        let run = try Self.run([
            "knock", "--dry-run", "--spa", "--secret", "visible", "--source-ip", "192.0.2.2", "--epoch-minute", "7",
            "192.0.2.1", "4000",
        ])
        #expect(run.status == 0)
        #expect(run.stderr.hasPrefix("pknock: warning: a secret on the command line is visible to other users"))
        let mac = try Self.pythonMAC(format: "sha256", secret: "visible", address: "192.0.2.2", minute: 7)
        #expect(run.stdout.contains("payload: \(mac) + newline"))
    }

    @Test func groupReadableSecretFileIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let file = try scratch.write("open.secret", "s\n", mode: 0o640)
        let run = try Self.run(["knock", "--dry-run", "--spa", "--secret-file", file, "--source-ip", "192.0.2.2", "192.0.2.1", "4000"])
        #expect(run.status == 1)
        #expect(run.stderr.hasPrefix("pknock: secret file: \(file) has mode 0640"))
        #expect(run.stdout.isEmpty)
    }

    @Test func emptyOrMissingSecretFileFails() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let empty = try scratch.write("empty.secret", "\n")
        let emptyRun = try Self.run([
            "knock", "--dry-run", "--spa", "--secret-file", empty, "--source-ip", "192.0.2.2", "192.0.2.1", "4000",
        ])
        #expect(emptyRun.status == 1)
        #expect(emptyRun.stderr == "pknock: secret file: \(empty) is empty\n")
        let missing = scratch.directory + "/missing"
        let missingRun = try Self.run([
            "knock", "--dry-run", "--spa", "--secret-file", missing, "--source-ip", "192.0.2.2", "192.0.2.1", "4000",
        ])
        #expect(missingRun.status == 1)
        #expect(missingRun.stderr == "pknock: secret file: \(missing) does not exist\n")
    }

    @Test func noSecretAndNoTerminalIsAUsageError() throws {
        let run = try Self.run(["knock", "--dry-run", "--spa", "192.0.2.1", "4000"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("SPA needs a secret"))
    }

    /// With a terminal on standard input, the secret is asked for on /dev/tty with echo off.
    @Test func promptReadsTheSecretWithoutEcho() throws {
        // Python runs pknock on a new pseudo-terminal (its controlling terminal) and types the secret.
        let script = """
            import os, pty, sys
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(sys.argv[1], sys.argv[1:])
            out = b""
            def more():
                global out
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return False
                out += data
                return bool(data)
            while b"secret for" not in out and more():
                pass
            os.write(fd, b"typed-secret\\n")
            while more():
                pass
            _, status = os.waitpid(pid, 0)
            sys.stdout.write(out.decode(errors="replace"))
            sys.exit(os.waitstatus_to_exitcode(status))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c", script, try CheckCommandTests.binary().path, "knock", "--dry-run", "--spa", "--source-ip",
            "192.0.2.2", "--epoch-minute", "5", "192.0.2.1", "4000",
        ]
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": "/nonexistent-home"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.hasPrefix("Open secret for 192.0.2.1: "))
        #expect(!output.contains("typed-secret"), "the secret was echoed")
        let mac = try Self.pythonMAC(format: "sha256", secret: "typed-secret", address: "192.0.2.2", minute: 5)
        #expect(output.contains("payload: \(mac) + newline"))
    }

    // MARK: Resolution

    @Test func hostNamesResolve() throws {
        // localhost comes from /etc/hosts: no DNS traffic.
        let run = try Self.run(["knock", "--dry-run", "-4", "localhost", "2002"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "would send TCP SYN to 127.0.0.1 port 2002\n")
    }

    @Test func unresolvableHostExits1() throws {
        // An IPv6 literal asked for as IPv4: the resolver refuses it.
        let run = try Self.run(["knock", "--dry-run", "-4", "2001:db8::1", "2002"])
        #expect(run.status == 1)
        #expect(run.stderr.hasPrefix("pknock: cannot resolve 2001:db8::1"))
        #expect(run.stdout.isEmpty)
    }
}
