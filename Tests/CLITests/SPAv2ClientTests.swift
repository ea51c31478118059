import Crypto
import Foundation
import KnockCore
import Testing

@testable import pknock

/// `pknock knock --spa2`: keys from `pknock keygen` make packets that decode with `SPAv2.decode`
/// and verify with the server's key; usage errors exit 64, unusable key files exit 1.
///
/// Sending is covered by the namespace scenarios in Scripts/e2e/50-spa2.sh.
@Suite struct SPAv2ClientTests {
    /// A temporary directory with keys made by `pknock keygen`.
    struct Keys {
        let directory = NSTemporaryDirectory() + "pknock-spa2-tests-" + UUID().uuidString

        init() throws { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }

        /// Runs `pknock keygen --type TYPE --out DIR/NAME` and returns the key file's path.
        func make(_ name: String, type: String) throws -> String {
            let path = directory + "/" + name
            let result = try CheckCommandTests.run(["keygen", "--type", type, "--out", path])
            #expect(result.status == 0, "keygen: \(result.stderr)")
            return path
        }

        /// The bytes of a base64 key file.
        func bytes(_ path: String) throws -> Data {
            let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return try #require(Data(base64Encoded: text))
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Runs `pknock knock --spa2 --dry-run ARGS` and returns the packet it printed.
    static func dryRunPacket(_ arguments: [String]) throws -> (packet: [UInt8], output: String) {
        let result = try KnockCommandTests.run(["knock", "--spa2", "--dry-run"] + arguments)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("packet: ") })
        let hex = Array(line.dropFirst("packet: ".count).utf8)
        try #require(hex.count % 2 == 0 && !hex.isEmpty)
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: hex.count, by: 2) {
            bytes.append(try #require(UInt8(String(decoding: hex[index..<index + 2], as: UTF8.self), radix: 16)))
        }
        return (bytes, result.stdout)
    }

    @Test func ed25519PacketVerifiesWithThePublicKey() throws {
        let keys = try Keys()
        defer { keys.cleanUp() }
        let file = try keys.make("laptop", type: "ed25519")
        let (packet, output) = try Self.dryRunPacket([
            "--client-id", "laptop", "--key-file", file, "--rule", "V2", "--timestamp", "1764072000", "192.0.2.1", "4500",
        ])
        let decoded = try SPAv2.decode(packet).get()
        #expect(decoded.kind == .ed25519)
        #expect(decoded.message.clientID == "laptop")
        #expect(decoded.message.rule.rawValue == "V2")
        #expect(decoded.message.timestamp == 1_764_072_000)
        #expect(decoded.message.address == nil)
        #expect(decoded.message.nonce.count == 16)
        let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: try keys.bytes(file + ".pub"))
        #expect(SPAv2.VerificationKey.ed25519(publicKey).isValid(decoded))
        let other = Curve25519.Signing.PrivateKey().publicKey
        #expect(!SPAv2.VerificationKey.ed25519(other).isValid(decoded))
        #expect(output.contains("would send SPA v2 knock (ed25519, client laptop, rule V2, the source address) to 192.0.2.1 port 4500:udp"))
        #expect(output.contains("\(packet.count) bytes"))
    }

    @Test func hmacPacketNamesTheAddressAndVerifiesWithTheSharedKey() throws {
        let keys = try Keys()
        defer { keys.cleanUp() }
        let file = try keys.make("phone", type: "hmac")
        for (given, expected) in [("203.0.113.5", PeerAddress("203.0.113.5")), ("2001:db8::5", PeerAddress("2001:db8::5"))] {
            let (packet, _) = try Self.dryRunPacket([
                "--client-id", "phone", "--key-file", file, "--key-type", "hmac", "--rule", "FTP", "--address", given, "198.51.100.1",
                "4500:udp",
            ])
            let decoded = try SPAv2.decode(packet).get()
            #expect(decoded.kind == .hmacSHA256)
            #expect(decoded.message.address == expected)
            #expect(decoded.message.clientID == "phone")
            #expect(SPAv2.VerificationKey.hmac(SymmetricKey(data: try keys.bytes(file))).isValid(decoded))
            #expect(!SPAv2.VerificationKey.hmac(SymmetricKey(size: .bits256)).isValid(decoded))
        }
    }

    @Test func timestampIsNowAndNoncesDiffer() throws {
        let keys = try Keys()
        defer { keys.cleanUp() }
        let file = try keys.make("k", type: "ed25519")
        let arguments = ["--client-id", "k", "--key-file", file, "--rule", "R", "192.0.2.1", "4500"]
        let before = Int64(Date().timeIntervalSince1970)
        let first = try SPAv2.decode(try Self.dryRunPacket(arguments).packet).get()
        let second = try SPAv2.decode(try Self.dryRunPacket(arguments).packet).get()
        let after = Int64(Date().timeIntervalSince1970)
        #expect((before...after).contains(first.message.timestamp))
        #expect(first.message.nonce != second.message.nonce)
    }

    @Test func keyFilesOthersCanReadOrOfTheWrongSizeAreRefused() throws {
        let keys = try Keys()
        defer { keys.cleanUp() }
        let file = try keys.make("laptop", type: "ed25519")
        let arguments = ["knock", "--spa2", "--dry-run", "--client-id", "laptop", "--rule", "V2", "192.0.2.1", "4500"]
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: file)
        let readable = try KnockCommandTests.run(arguments + ["--key-file", file])
        #expect(readable.status == 1)
        #expect(readable.stderr.contains("key file"))
        #expect(!readable.stdout.contains("packet:"))

        let short = keys.directory + "/short"
        try Data(Data(repeating: 7, count: 16).base64EncodedString().utf8).write(to: URL(fileURLWithPath: short))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: short)
        let wrongSize = try KnockCommandTests.run(arguments + ["--key-file", short])
        #expect(wrongSize.status == 1)
        #expect(wrongSize.stderr.contains("16 bytes, not 32"))

        let missing = try KnockCommandTests.run(arguments + ["--key-file", keys.directory + "/none"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("does not exist"))
    }

    /// Issue 11 item 10: the client reads its key like the daemon does (no symbolic link, safe directories).
    @Test func keyFilesBehindALinkOrInAWritableDirectoryAreRefused() throws {
        let keys = try Keys()
        defer { keys.cleanUp() }
        let file = try keys.make("laptop", type: "ed25519")
        let arguments = ["knock", "--spa2", "--dry-run", "--client-id", "laptop", "--rule", "V2", "192.0.2.1", "4500"]
        #expect(try KnockCommandTests.run(arguments + ["--key-file", file]).status == 0)
        let link = keys.directory + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: file)
        let linked = try KnockCommandTests.run(arguments + ["--key-file", link])
        #expect(linked.status == 1)
        #expect(linked.stderr.contains("key file: \(link) is a symbolic link"))
        #expect(!linked.stdout.contains("packet:"))
        #expect(chmod(keys.directory, 0o777) == 0)
        let shared = try KnockCommandTests.run(arguments + ["--key-file", file])
        #expect(shared.status == 1)
        #expect(shared.stderr.contains("key file: \(file) is in \(keys.directory), which has mode 0777, writable by others"))
    }

    @Test(arguments: [
        (["--spa", "--spa2", "--client-id", "a", "--key-file", "/k", "--rule", "R"], "--spa and --spa2 exclude each other"),
        (["--spa2", "--key-file", "/k", "--rule", "R"], "--spa2 needs --client-id"),
        (["--spa2", "--client-id", "bad id", "--key-file", "/k", "--rule", "R"], "--client-id: 'bad id'"),
        (["--spa2", "--client-id", "a", "--rule", "R"], "--spa2 needs --key-file"),
        (["--spa2", "--client-id", "a", "--key-file", "/k"], "--spa2 needs --rule"),
        (["--spa2", "--client-id", "a", "--key-file", "/k", "--rule", "R.x"], "--rule: 'R.x'"),
        (["--spa2", "--client-id", "a", "--key-file", "/k", "--rule", "R", "--address", "nope"], "--address: 'nope'"),
        (["--spa2", "--client-id", "a", "--key-file", "/k", "--rule", "R", "--secret-file", "/s"], "--secret-file applies to SPA v1"),
        (["--spa2", "--client-id", "a", "--key-file", "/k", "--rule", "R", "--source-ip", "192.0.2.9"], "--source-ip applies to SPA v1"),
        (["--client-id", "a"], "--client-id applies to SPA v2 only"),
        (["--spa", "--rule", "R"], "--rule applies to SPA v2 only"),
        (["--key-type", "hmac"], "--key-type applies to SPA v2 only"),
    ])
    func usageErrorsExit64(arguments: [String], message: String) throws {
        let result = try KnockCommandTests.run(["knock", "--dry-run"] + arguments + ["192.0.2.1", "4500"])
        #expect(result.status == 64)
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
    }

    @Test func spa2SendsOneUDPPacket() throws {
        let base = ["--spa2", "--client-id", "a", "--key-file", "/k", "--rule", "R", "192.0.2.1"]
        let two = try KnockCommandTests.run(["knock"] + base + ["4500", "4501"])
        #expect(two.status == 64)
        #expect(two.stderr.contains("exactly one port"))
        let tcp = try KnockCommandTests.run(["knock"] + base + ["4500:tcp"])
        #expect(tcp.status == 64)
        #expect(tcp.stderr.contains("UDP only"))
    }

    @Test func planDefaultsToEd25519AndLeavesV1Unset() throws {
        var options = KnockOptions(host: "h", ports: ["4500"])
        options.spa2 = true
        options.clientID = "laptop"
        options.keyFile = "/k"
        options.rule = "V2"
        let plan = try KnockPlan.make(options, profile: nil, environment: ["PKNOCK_SECRET": "x"], stdinIsTerminal: true)
        #expect(plan.spa == nil)
        let rule = try #require(RuleName(rawValue: "V2"))
        let port = try #require(Port(rawValue: 4500))
        #expect(plan.spa2 == SPAv2Plan(clientID: "laptop", keyFile: "/k", keyType: .ed25519, rule: rule, address: nil))
        #expect(plan.knocks == [ServicePort(port, .udp)])
    }

    @Test func keyFileContentsMustBeBase64Of32Bytes() {
        #expect(throws: SPAv2Client.KeyProblem(message: "is empty")) {
            try SPAv2Client.signingKey(fileContents: Array("\n".utf8), type: .hmac)
        }
        #expect(throws: SPAv2Client.KeyProblem.self) { try SPAv2Client.signingKey(fileContents: Array("not base64!\n".utf8), type: .ed25519) }
        let good = Array((Data(repeating: 1, count: 32).base64EncodedString() + "\n").utf8)
        #expect((try? SPAv2Client.signingKey(fileContents: good, type: .ed25519)) != nil)
        #expect((try? SPAv2Client.signingKey(fileContents: good, type: .hmac)) != nil)
    }
}
