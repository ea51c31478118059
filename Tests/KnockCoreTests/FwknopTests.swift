import Crypto
import Foundation
import KnockCore
import Testing

/// fwknop packets: our encoder and decoder, the key derivation, every refusal.
///
/// The encoder and decoder are checked against each other, the key derivation against OpenSSL. The real client's packets are checked at test time
/// by ``FwknopRealClientTests`` (when Debian's fwknop-client is installed) and in Scripts/e2e/90-fwknop.sh.
@Suite struct FwknopTests {
    static let keys = Fwknop.Keys(encryptionKey: Secret(bytes: Array(0..<32)), hmacKey: Secret(bytes: Array(100..<164)))
    static let otherKeys = Fwknop.Keys(encryptionKey: Secret(bytes: Array(1..<33)), hmacKey: Secret(bytes: Array(1..<65)))
    static let timestamp: Int64 = 1_764_072_000
    static let ssh = RuleName(rawValue: "SSH")!
    static let source = PeerAddress("192.0.2.2")!
    static let now = WallTime(secondsSinceEpoch: timestamp + 3)
    static let salt: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]

    static var rule: Rule {
        Rule(
            name: ssh, knockSequence: [ServicePort(Fwknop.defaultPort, .udp)], autoclose: .seconds(30),
            fwknop: FwknopRuleSettings(), protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp), ServicePort(Port(rawValue: 53)!, .udp)])
    }

    static func message(
        address: String? = "192.0.2.2", ports: [ServicePort] = [ServicePort(Port(rawValue: 22)!, .tcp)], timestamp: Int64 = timestamp,
        type: Fwknop.MessageType = .access, timeout: Int? = nil
    ) -> Fwknop.Message {
        Fwknop.Message(
            random: "1234567890123456", user: "alice", timestamp: timestamp, type: type, address: address.flatMap(PeerAddress.init),
            access: ports, clientTimeout: timeout)
    }

    static func packet(_ message: Fwknop.Message = message(), keys: Fwknop.Keys = keys, salt: [UInt8] = salt) throws -> [UInt8] {
        try Fwknop.encode(message, keys: keys, salt: salt)
    }

    static func client(_ id: String = "laptop", keys: Fwknop.Keys = keys, rules: Set<RuleName> = [ssh]) -> FwknopClient {
        FwknopClient(id: id, keys: keys, rules: rules)
    }

    @Test func keyDerivationIsOpenSSLs() throws {
        // openssl enc -aes-256-cbc -md md5 -S 0001020304050607 -pass pass:fwknop-passphrase -P
        let derived = Fwknop.deriveKeyAndIV(passphrase: Array("fwknop-passphrase".utf8), salt: Array(0..<8)[...])
        #expect(SPAv2Tests.hex("1fb1520423ac2149d12e0a5af6335e6c9b418de8d1526413af4a65d3d3fbb02c") == derived.key)
        #expect(SPAv2Tests.hex("733fd2a1e7f5225e639737084babb07d") == derived.iv)
    }

    @Test func plaintextHasFwknopsFieldLayout() {
        let text = Fwknop.plaintext(Self.message(timeout: 45))
        let fields = text.split(separator: ":")
        #expect(fields.count == 8)
        #expect(fields[0] == "1234567890123456")
        #expect(fields[1] == "YWxpY2U")  // "alice", unpadded
        #expect(fields[2] == "1764072000")
        #expect(fields[3] == "3.0.0")
        #expect(fields[5] == "MTkyLjAuMi4yLHRjcC8yMg")  // "192.0.2.2,tcp/22"
        #expect(fields[6] == "45")
        #expect(fields[7].count == 43)
    }

    @Test func wireFormDropsTheSaltedPrefixAndPadding() throws {
        let packet = try Self.packet()
        #expect(!packet.starts(with: Fwknop.saltedPrefix))
        #expect(!packet.contains(UInt8(ascii: "=")))
        #expect(Fwknop.outerProblem(packet) == nil)
        #expect(Fwknop.hasValidHMAC(packet, hmacKey: Self.keys.hmacKey))
        #expect(try Fwknop.open(packet, encryptionKey: Self.keys.encryptionKey).get() == Self.message())
    }

    @Test func roundTripsEveryAccessForm() throws {
        let cases: [Fwknop.Message] = [
            Self.message(),
            Self.message(address: nil),
            Self.message(ports: [ServicePort(Port(rawValue: 22)!, .tcp), ServicePort(Port(rawValue: 53)!, .udp)]),
            Self.message(type: .clientTimeoutAccess, timeout: 10),
            Self.message(address: "203.0.113.9"),
        ]
        for message in cases {
            let packet = try Self.packet(message)
            #expect(try Fwknop.open(packet, encryptionKey: Self.keys.encryptionKey).get() == message)
        }
    }

    @Test func opensForTheRequestedPorts() throws {
        var verifier = FwknopVerifier(clients: [Self.client("other", keys: Self.otherKeys), Self.client()])
        let result = verifier.verify(try Self.packet(), source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: Self.now)
        #expect(try result.get() == .init(clientID: "laptop", user: "alice", address: Self.source, access: Self.message().access, clientTimeout: nil))
    }

    /// Every refusal, one packet each: (what, packet, settings, clients, expected).
    @Test func refusals() throws {
        let settings = FwknopRuleSettings()
        let required = FwknopRuleSettings(requireSourceAddress: true)
        var tampered = try Self.packet()
        tampered[20] = tampered[20] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        // The last HMAC character carries two spare bits: a variant decoding to the same bytes is refused too.
        var spareBits = try Self.packet()
        spareBits[spareBits.count - 1] ^= 0x01
        let withoutHMAC = Array(try Self.packet().dropLast(Fwknop.hmacLength))
        let rightHMACWrongKey = try Self.packet(keys: Fwknop.Keys(encryptionKey: Self.otherKeys.encryptionKey, hmacKey: Self.keys.hmacKey))
        let cases: [(String, [UInt8], FwknopRuleSettings, [FwknopClient], FwknopVerifier.Rejection)] = [
            ("too short", Array("abc".utf8), settings, [Self.client()], .malformed(.length(3))),
            ("not base64", Array(repeating: UInt8(ascii: "*"), count: 120), settings, [Self.client()], .malformed(.notBase64)),
            ("wrong keys", try Self.packet(keys: Self.otherKeys), settings, [Self.client()], .badHMAC),
            ("no HMAC", withoutHMAC, settings, [Self.client()], .badHMAC),
            ("tampered", tampered, settings, [Self.client()], .badHMAC),
            ("HMAC spare bits", spareBits, settings, [Self.client()], .badHMAC),
            ("client not on this rule", try Self.packet(), settings, [Self.client(rules: [])], .badHMAC),
            ("wrong encryption key", rightHMACWrongKey, settings, [Self.client()], .undecodable(client: "laptop", .decryptionFailed)),
            (
                "expired", try Self.packet(Self.message(timestamp: Self.timestamp - 200)), settings, [Self.client()],
                .outsideClockWindow(client: "laptop", skew: -203)
            ),
            (
                "future", try Self.packet(Self.message(timestamp: Self.timestamp + 130)), settings, [Self.client()],
                .outsideClockWindow(client: "laptop", skew: 127)
            ),
            (
                "port not protected", try Self.packet(Self.message(ports: [ServicePort(Port(rawValue: 23)!, .tcp)])), settings, [Self.client()],
                .portNotProtected(client: "laptop", port: ServicePort(Port(rawValue: 23)!, .tcp))
            ),
            (
                "protected port, other protocol", try Self.packet(Self.message(ports: [ServicePort(Port(rawValue: 22)!, .udp)])), settings,
                [Self.client()], .portNotProtected(client: "laptop", port: ServicePort(Port(rawValue: 22)!, .udp))
            ),
            (
                "0.0.0.0 where the address is required", try Self.packet(Self.message(address: nil)), required, [Self.client()],
                .sourceAddressRequired(client: "laptop")
            ),
            (
                "another address", try Self.packet(Self.message(address: "203.0.113.9")), settings, [Self.client()],
                .addressNotAllowed(client: "laptop", address: PeerAddress("203.0.113.9")!)
            ),
            (
                "a command", try Self.packet(Self.message(type: .command)), settings, [Self.client()],
                .unsupportedMessage(client: "laptop", type: 0)
            ),
        ]
        for (what, packet, settings, clients, expected) in cases {
            var verifier = FwknopVerifier(clients: clients)
            #expect(
                verifier.verify(packet, source: Self.source, rule: Self.rule, settings: settings, now: Self.now) == .failure(expected), "\(what)")
            #expect(verifier.seenDigests.isEmpty, "\(what) left state")
        }
    }

    @Test func namedAddressesAndSourceAddresses() throws {
        var verifier = FwknopVerifier(clients: [Self.client()])
        let open = FwknopRuleSettings(allowNamedAddress: true)
        let named = verifier.verify(
            try Self.packet(Self.message(address: "203.0.113.9")), source: Self.source, rule: Self.rule, settings: open, now: Self.now)
        #expect(try named.get().address == PeerAddress("203.0.113.9"))
        let any = verifier.verify(try Self.packet(Self.message(address: nil)), source: Self.source, rule: Self.rule, settings: open, now: Self.now)
        #expect(try any.get().address == Self.source)
    }

    @Test func aReplayNeverOpensTwiceAndIsForgottenWithTheWindow() throws {
        var verifier = FwknopVerifier(clients: [Self.client()])
        let packet = try Self.packet()
        #expect((try? verifier.verify(packet, source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: Self.now).get()) != nil)
        #expect(
            verifier.verify(packet, source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: Self.now)
                == .failure(.replayed(client: "laptop")))
        // The same message under another salt is another packet: fwknop's replay check is per packet.
        #expect(
            (try? verifier.verify(
                try Self.packet(salt: [9, 9, 9, 9, 9, 9, 9, 9]), source: Self.source, rule: Self.rule,
                settings: FwknopRuleSettings(), now: Self.now
            ).get()) != nil)
        #expect(verifier.seenDigests.count == 2)
        verifier.prune(now: WallTime(secondsSinceEpoch: Self.timestamp + 121))
        #expect(verifier.seenDigests.isEmpty)
    }

    @Test func replayMemorySurvivesARestartAndAReload() throws {
        var first = FwknopVerifier(clients: [Self.client()])
        let packet = try Self.packet()
        _ = first.verify(packet, source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: Self.now)
        var restarted = FwknopVerifier(clients: [Self.client()])
        restarted.restore(first.seenDigests, now: Self.now)
        #expect(
            restarted.verify(packet, source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: Self.now)
                == .failure(.replayed(client: "laptop")))
        var reloaded = FwknopVerifier(clients: [Self.client()], clockWindow: .seconds(300), carryingOverFrom: first)
        #expect(
            reloaded.verify(packet, source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: Self.now)
                == .failure(.replayed(client: "laptop")))
        // A removed client's memory goes with it.
        let removed = FwknopVerifier(clients: [], clockWindow: .seconds(120), carryingOverFrom: first)
        #expect(removed.seenDigests.isEmpty)
    }

    /// A wider window (a reload, or a restart with the saved horizon) does not readmit a packet whose
    /// digest the narrower window already forgot.
    @Test func aWiderWindowDoesNotReadmitForgottenDigests() throws {
        var first = FwknopVerifier(clients: [Self.client()])
        let packet = try Self.packet()
        #expect((try? first.verify(packet, source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: Self.now).get()) != nil)
        let later = WallTime(secondsSinceEpoch: Self.timestamp + 150)
        first.prune(now: later)
        #expect(first.seenDigests.isEmpty)
        let reloaded = FwknopVerifier(clients: [Self.client()], clockWindow: .seconds(600), carryingOverFrom: first)
        var restarted = FwknopVerifier(clients: [Self.client()], clockWindow: .seconds(600))
        restarted.restore(first.seenDigests, horizon: first.horizon, now: later)
        for var verifier in [reloaded, restarted] {
            #expect(
                verifier.verify(packet, source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: later)
                    == .failure(.outsideClockWindow(client: "laptop", skew: -150)))
            // Younger than what the old window remembered: opens under the wider window.
            let recent = try Self.packet(Self.message(timestamp: later.secondsSinceEpoch - 60))
            #expect((try? verifier.verify(recent, source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: later).get()) != nil)
        }
        // Without the saved horizon (a file from before it was kept) the forgotten packet would open.
        var unaware = FwknopVerifier(clients: [Self.client()], clockWindow: .seconds(600))
        unaware.restore(first.seenDigests, now: later)
        #expect((try? unaware.verify(packet, source: Self.source, rule: Self.rule, settings: FwknopRuleSettings(), now: later).get()) != nil)
    }

    @Test func rateLimitBoundsTheMemory() throws {
        var verifier = FwknopVerifier(clients: [Self.client()], maximumPacketsPerWindow: 2)
        for index in 0..<3 {
            let result = verifier.verify(
                try Self.packet(salt: Array(repeating: UInt8(index), count: 8)), source: Self.source, rule: Self.rule,
                settings: FwknopRuleSettings(), now: Self.now)
            if index < 2 { #expect((try? result.get()) != nil) } else { #expect(result == .failure(.rateLimited(client: "laptop"))) }
        }
    }

    @Test func keyFilesAsFwknopKeyGenPrintsThem() throws {
        let text =
            "KEY_BASE64: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nHMAC_KEY_BASE64: ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGiow==\n"
        let keys = try Fwknop.Keys(parsing: text)
        #expect(keys == Self.keys)
        #expect(keys.keyFileText == text)
        #expect(try Fwknop.Keys(parsing: "[*] Creating initial rc file: /root/.fwknoprc.\n" + text) == keys)
        #expect(throws: Fwknop.KeyFileError.self) { try Fwknop.Keys(parsing: "KEY_BASE64: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n") }
        do {
            _ = try Fwknop.Keys(parsing: "KEY_BASE64: AAEC\n")
        } catch {
            #expect(error.message.contains("without an HMAC are refused"))
        }
        #expect(throws: Fwknop.KeyFileError.self) { try Fwknop.Keys(parsing: "KEY: passphrase\nHMAC_KEY_BASE64: AAEC\n") }
    }

    @Test func parserRefusesBrokenPlaintext() {
        let good = Fwknop.plaintext(Self.message())
        let body = good[..<good.lastIndex(of: ":")!]
        func sealed(_ text: Substring) -> [UInt8] {
            Array((String(text) + ":" + Fwknop.unpaddedBase64(Array(SHA256.hash(data: Array(String(text).utf8))))).utf8)
        }
        let cases: [(String, [UInt8], Fwknop.DecodingError)] = [
            ("digest mismatch", Array((body + ":" + String(repeating: "A", count: 43)).utf8), .digestMismatch),
            ("short random", sealed("123:" + body.drop(while: { $0 != ":" }).dropFirst()), .fields("random value is not 16 digits")),
            ("no fields", sealed("1234567890123456:YWxpY2U"), .fields("3 fields")),
            ("bad access", sealed(body.replacingOccurrences(of: "MTkyLjAuMi4yLHRjcC8yMg", with: "eHl6")[...]), .fields("access request \"xyz\"")),
        ]
        for (what, plain, expected) in cases {
            #expect(Fwknop.parse(plain) == .failure(expected), "\(what)")
        }
    }

    /// The engine grants for the client's timeout, capped by the rule's autoclose.
    @Test(arguments: [(nil, 30), (10, 10), (100, 30)] as [(Int?, Int64)])
    func engineCapsTheClientTimeout(asked: Int?, granted: Int64) throws {
        var engine = KnockEngine(rules: [Self.rule], fwknopClients: [Self.client()])
        let type: Fwknop.MessageType = asked == nil ? .access : .clientTimeoutAccess
        let packet = try Self.packet(Self.message(type: type, timeout: asked))
        let knock = Knock(source: Self.source, transport: .udp, port: Fwknop.defaultPort, payload: packet[...])
        let effects = engine.handle(knock, at: Instant(nanoseconds: 0), wallTime: Self.now)
        #expect(effects.contains(.firewall(.allow(rule: Self.ssh, peer: Self.source, ttl: .seconds(granted)))), "\(effects)")
        #expect(engine.fwknopSeenDigests.count == 1)
        let again = engine.handle(knock, at: Instant(nanoseconds: 1), wallTime: Self.now)
        guard case .event(let event) = again.first else { Issue.record("no event for the replay"); return }
        #expect(event.kind == .blocked)
        #expect(event.fwknopRejection == .replayed(client: "laptop"))
    }
}
