import Foundation
import KnockCore
import Testing

/// Packets from Debian's `fwknop` client (fwknop-client, installed by Scripts/install-deps.sh),
/// made at test time with fresh keys: nothing from fwknop is stored in this repository.
private let fwknopClient = "/usr/bin/fwknop"

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: fwknopClient)))
struct FwknopRealClientTests {
    let keys = Fwknop.Keys(
        encryptionKey: Secret(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) }),
        hmacKey: Secret(bytes: (0..<64).map { _ in UInt8.random(in: 0...255) }))
    let source = PeerAddress("192.0.2.2")!

    /// Runs `fwknop -T` (build the packet, send nothing) and returns the packet it saved.
    func packet(_ arguments: [String], hmac: Bool = true) throws -> (packet: [UInt8], made: WallTime) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fwknop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("packet").path
        var all = ["--no-rc-file", "--no-save-args", "-T", "-B", file, "-D", "192.0.2.1"]
        all += ["--key-base64-rijndael", Data(keys.encryptionKey.bytes).base64EncodedString()]
        if hmac { all += ["--use-hmac", "--key-base64-hmac", Data(keys.hmacKey.bytes).base64EncodedString()] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fwknopClient)
        process.arguments = all + arguments
        process.environment = ["HOME": directory.path, "PATH": "/usr/bin:/bin"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let made = WallTime(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "fwknop \(arguments)")
        let text = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return (Array(text.utf8), made)
    }

    var rule: Rule {
        Rule(
            name: RuleName(rawValue: "SSH")!, knockSequence: [ServicePort(Fwknop.defaultPort, .udp)], autoclose: .seconds(60),
            fwknop: FwknopRuleSettings(requireSourceAddress: false),
            protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp), ServicePort(Port(rawValue: 53)!, .udp)])
    }

    @Test func opensForTheRealClient() throws {
        let cases: [([String], PeerAddress, [ServicePort], Duration?)] = [
            (["-A", "tcp/22", "-a", "192.0.2.2"], source, [ServicePort(Port(rawValue: 22)!, .tcp)], nil),
            (["-A", "udp/53", "-s"], source, [ServicePort(Port(rawValue: 53)!, .udp)], nil),
            (
                ["-A", "tcp/22,udp/53", "-a", "192.0.2.2", "-f", "10"], source,
                [ServicePort(Port(rawValue: 22)!, .tcp), ServicePort(Port(rawValue: 53)!, .udp)], .seconds(10)
            ),
        ]
        for (arguments, address, access, timeout) in cases {
            let (packet, made) = try packet(arguments)
            var verifier = FwknopVerifier(clients: [FwknopClient(id: "laptop", keys: keys, rules: [rule.name])])
            let result = verifier.verify(packet, source: source, rule: rule, settings: FwknopRuleSettings(), now: made)
            let grant = try result.get()
            #expect(grant.address == address, "\(arguments)")
            #expect(grant.access == access, "\(arguments)")
            #expect(grant.clientTimeout == timeout, "\(arguments)")
            #expect(
                verifier.verify(packet, source: source, rule: rule, settings: FwknopRuleSettings(), now: made)
                    == .failure(.replayed(client: "laptop")))
        }
    }

    @Test func refusesTheRealClientsBadPackets() throws {
        let clients = [FwknopClient(id: "laptop", keys: keys, rules: [rule.name])]
        let settings = FwknopRuleSettings(requireSourceAddress: true)
        let (old, made) = try packet(["-A", "tcp/22", "-a", "192.0.2.2", "--time-offset-minus", "5m"])
        var verifier = FwknopVerifier(clients: clients)
        guard case .failure(.outsideClockWindow(_, let skew)) = verifier.verify(old, source: source, rule: rule, settings: settings, now: made)
        else { Issue.record("an expired packet was not refused for its time"); return }
        #expect((-305 ... -295).contains(skew))
        let (unprotected, _) = try packet(["-A", "tcp/23", "-a", "192.0.2.2"])
        #expect(
            verifier.verify(unprotected, source: source, rule: rule, settings: settings, now: made)
                == .failure(.portNotProtected(client: "laptop", port: ServicePort(Port(rawValue: 23)!, .tcp))))
        let (anyAddress, _) = try packet(["-A", "tcp/22", "-s"])
        #expect(verifier.verify(anyAddress, source: source, rule: rule, settings: settings, now: made) == .failure(.sourceAddressRequired(client: "laptop")))
        let (withoutHMAC, _) = try packet(["-A", "tcp/22", "-a", "192.0.2.2"], hmac: false)
        #expect(verifier.verify(withoutHMAC, source: source, rule: rule, settings: settings, now: made) == .failure(.badHMAC))
        #expect(verifier.seenDigests.isEmpty)
    }
}
