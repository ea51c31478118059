import Foundation
import KnockCore
import Testing

@testable import KnockConfig

/// A fresh temporary directory, removed by `cleanUp()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "pknock-config-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    @discardableResult
    func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let file = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
        return file
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct LoaderTests {
    @Test(arguments: [
        ("/etc/pknock/pknock.toml", "-p tcp -m pknock", ConfigFormat.toml),
        ("/etc/pknock/xt.rules", "[[rule]]", .rulesFile),
        ("conf", "# comment\n\n  [daemon]\n", .toml),
        ("conf", "# comment\nname = \"x\"\n", .toml),
        ("conf", "name= \"x\"\n", .toml),
        ("conf", "# comment\niptables -A INPUT -p tcp -m pknock --name A\n", .rulesFile),
        ("conf", "-p tcp -m pknock --name A=B\n", .rulesFile),
        ("conf", "", .toml),
    ])
    func formatDetection(path: String, text: String, expected: ConfigFormat) {
        #expect(ConfigFormat.detect(path: path, text: text) == expected)
    }

    @Test func missingFile() {
        #expect(throws: ConfigError(ConfigDiagnostic(file: "/nonexistent/pknock.toml", line: nil, "no such file"))) {
            try ConfigLoader.load(path: "/nonexistent/pknock.toml")
        }
        #expect(ConfigError(ConfigDiagnostic(file: "/x.toml", line: nil, "no such file")).description == "/x.toml: no such file")
    }

    @Test func loadsBothFormatsFromDisk() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let toml = try directory.write(
            "pknock.toml", "[[rule]]\nname = \"SSH\"\nknock = [2002, 2001, 2004]\ntime = \"10s\"\nstrict = true\nautoclose = \"1h\"\nprotect = [22]\n")
        let rules = try directory.write(
            "legacy.conf", "iptables -A INPUT -p tcp -m pknock --knockports 2002,2001,2004 --name SSH --time 10 --strict --autoclose 60 --dport 22 -j ACCEPT\n")
        #expect(try ConfigLoader.load(path: toml).rules == [Fixture.sshRule])
        #expect(try ConfigLoader.load(path: rules).rules == [Fixture.sshRule])
    }

    @Test func shippedExamplesLoadToTheSameRules() throws {
        // Copied, so that the secret files have mode 0600 whatever the checkout gave them.
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples").path
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let manager = FileManager.default
        try manager.createDirectory(atPath: directory.path + "/secrets", withIntermediateDirectories: true)
        for name in ["pknock.toml", "xt_pknock.rules", "secrets/ftp.open.secret", "secrets/ftp.close.secret"] {
            try manager.copyItem(atPath: examples + "/" + name, toPath: directory.path + "/" + name)
            try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory.path + "/" + name)
        }
        let toml = try ConfigLoader.load(path: directory.path + "/pknock.toml")
        let legacy = try ConfigLoader.load(path: directory.path + "/xt_pknock.rules")
        var expectedSSH = Fixture.sshRule
        expectedSSH.maxTrackedPeers = 4096
        expectedSSH.maxAllowedPeers = 4096
        #expect(toml.rules.first == expectedSSH)
        #expect(toml.warnings.isEmpty)
        #expect(toml.rules.map(\.name.rawValue) == ["SSH", "FTP"])
        #expect(toml.rules.last?.spa?.closeSecret != nil)
        // The rules file cannot set the peer caps; apart from those the two examples agree.
        var normalized = toml.rules
        for index in normalized.indices {
            normalized[index].maxTrackedPeers = Rule.defaultMaxTrackedPeers
            normalized[index].maxAllowedPeers = Rule.defaultMaxAllowedPeers
        }
        #expect(legacy.rules == normalized)
    }

    // MARK: Secret files on disk

    @Test func secretFileWithMode600IsRead() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try directory.write("open.secret", "file-secret-value\n")
        #expect(try FileSecretSource().contents(ofSecretFile: path) == Array("file-secret-value\n".utf8))
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660, 0o602, 0o620])
    func secretFileReadableOrWritableByOthersIsRefused(mode: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try directory.write("open.secret", "file-secret-value\n", mode: mode)
        let octal = "0" + String(mode, radix: 8)
        #expect(
            throws: SecretSourceError(
                "\(path) has mode \(octal), readable or writable by group or others; run chmod 600 on it (like ssh refuses a private key with open permissions)"
            )
        ) {
            try FileSecretSource().contents(ofSecretFile: path)
        }
    }

    @Test func secretFileErrorsReachTheConfigWithLineAndMode() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        try directory.write("open.secret", "open-secret-value\n", mode: 0o644)
        try directory.write("close.secret", "close-secret-value\n")
        let config = try directory.write(
            "pknock.toml",
            "[[rule]]\nname = \"F\"\nknock = [\"4000:udp\"]\nprotect = [21]\nopen_secret_file = \"open.secret\"\nclose_secret_file = \"close.secret\"\n",
            mode: 0o644)
        do {
            _ = try ConfigLoader.load(path: config)
            Issue.record("a group-readable secret file was accepted")
        } catch {
            #expect(error.diagnostics.count == 1)
            let text = error.description
            #expect(text.hasPrefix("\(config):5: rule F: open_secret_file: \(directory.path)/open.secret has mode 0644"))
            #expect(!text.contains("open-secret-value"))
        }
    }

    @Test func symlinkToAPrivateFileIsRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let target = try directory.write("real.secret", "linked-secret")
        let link = directory.path + "/link.secret"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        #expect(
            throws: SecretSourceError(
                "\(link) is a symbolic link: secret and key files are opened without following links;"
                    + " name the file itself in the configuration")
        ) {
            try FileSecretSource().contents(ofSecretFile: link)
        }
        #expect(try FileSecretSource().contents(ofSecretFile: target) == Array("linked-secret".utf8))
    }

    @Test func missingSecretFileAndDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        #expect(throws: SecretSourceError("\(directory.path)/none does not exist")) {
            try FileSecretSource().contents(ofSecretFile: directory.path + "/none")
        }
        try FileManager.default.createDirectory(atPath: directory.path + "/dir", withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory.path + "/dir")
        #expect(throws: SecretSourceError("\(directory.path)/dir is not a regular file")) {
            try FileSecretSource().contents(ofSecretFile: directory.path + "/dir")
        }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to give a file another owner"))
    func secretFileOwnedBySomeoneElseIsRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try directory.write("open.secret", "x")
        try FileManager.default.setAttributes([.ownerAccountID: 4242], ofItemAtPath: path)
        #expect(throws: SecretSourceError("\(path) is owned by uid 4242, not by root or the current user (uid 0); run chown on it")) {
            try FileSecretSource().contents(ofSecretFile: path)
        }
    }

    @Test func modeProblemIsOnlyForGroupAndOtherBits() {
        #expect(FileSecretSource.modeProblem(0o600) == nil)
        #expect(FileSecretSource.modeProblem(0o400) == nil)
        #expect(FileSecretSource.modeProblem(0o700) == nil)
        #expect(FileSecretSource.modeProblem(0o601) != nil)
        #expect(FileSecretSource.modeProblem(0o610) != nil)
    }
}
