import Crypto
import Foundation
import KnockCore
import Testing

/// SPA v2 vectors.
///
/// The packets were made outside this code base with Python's `cryptography`
/// (Ed25519, deterministic per RFC 8032) and `hmac` modules; the script is in Docs/spa-v2.md.
@Suite struct SPAv2Tests {
    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }

    static let seed = hex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")
    static let publicKey = hex("79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664")
    static let ed25519Packet = hex(
        "504b4f0202066c6170746f700000000069259a40000102030405060708090a0b0c0d0e0f035353480068c44b125bc1dda9ad6df00d54365d30f4588ed5251e73d3c9e2a9fd0ca182c05b40089b84aefc6fd337e1554c04f094fd3035aef5700b038419f05907db540d"
    )
    static let hmacKey = hex("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f")
    static let hmacPacket4 = hex(
        "504b4f02010570686f6e650000000069259a40f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0346545004cb0071056ecae02c2c8ad99dc4e1144a3b0d2733a537f9cae5bac9a0649f4abaf5c7be82"
    )
    static let hmacPacket6 = hex(
        "504b4f02010570686f6e650000000069259a40f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff034654501020010db80000000000000000000000054e9ecc14d8f27b1cefc3807df6ae9324a3485da0ef5d7e65df2dadc50ec0d5b6"
    )
    static let timestamp: Int64 = 1_764_072_000
    static let ssh = RuleName(rawValue: "SSH")!
    static let ftp = RuleName(rawValue: "FTP")!

    static func laptop(rules: Set<RuleName> = [ssh]) throws -> SPAv2Client {
        SPAv2Client(id: "laptop", key: .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: publicKey)), rules: rules)
    }

    static func phone(mayNameAddress: Bool = true) -> SPAv2Client {
        SPAv2Client(id: "phone", key: .hmac(SymmetricKey(data: hmacKey)), rules: [ftp], mayNameAddress: mayNameAddress)
    }

    let now = WallTime(secondsSinceEpoch: timestamp + 5)
    let source = PeerAddress("192.0.2.7")!

    @Test func encodingMatchesTheIndependentVectors() throws {
        let signing = try Curve25519.Signing.PrivateKey(rawRepresentation: Self.seed)
        let laptop = SPAv2.Message(clientID: "laptop", timestamp: Self.timestamp, nonce: Array(0..<16), rule: Self.ssh)
        #expect(try SPAv2.encode(laptop, key: .ed25519(signing)) == Self.ed25519Packet)
        let phone = SPAv2.Message(
            clientID: "phone", timestamp: Self.timestamp, nonce: Array(0xF0...0xFF), rule: Self.ftp, address: PeerAddress("203.0.113.5"))
        #expect(try SPAv2.encode(phone, key: .hmac(SymmetricKey(data: Self.hmacKey))) == Self.hmacPacket4)
        #expect(Self.ed25519Packet.count <= SPAv2.maximumPacketLength)
    }

    @Test func decodesTheVectors() throws {
        let packet = try SPAv2.decode(Self.hmacPacket6).get()
        #expect(packet.message.clientID == "phone")
        #expect(packet.message.address == PeerAddress("2001:db8::5"))
        #expect(packet.message.timestamp == Self.timestamp)
        #expect(packet.kind == .hmacSHA256)
    }

    @Test func opensWithEachAuthenticator() throws {
        var verifier = SPAv2Verifier(clients: [try Self.laptop(), Self.phone()])
        #expect(
            verifier.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                == .success(.init(clientID: "laptop", rule: Self.ssh, address: source)))
        #expect(
            verifier.verify(Self.hmacPacket4, source: source, rule: Self.ftp, ruleAllowsAddress: true, now: now)
                == .success(.init(clientID: "phone", rule: Self.ftp, address: PeerAddress("203.0.113.5")!)))
    }

    @Test func aReplayNeverOpensTwice() throws {
        var verifier = SPAv2Verifier(clients: [try Self.laptop()])
        _ = verifier.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
        #expect(
            verifier.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                == .failure(.replayed(client: "laptop")))
        // Later in the window: still a replay. After the window: too old anyway.
        let later = WallTime(secondsSinceEpoch: Self.timestamp + 59)
        #expect(
            verifier.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: later)
                == .failure(.replayed(client: "laptop")))
        let tooLate = WallTime(secondsSinceEpoch: Self.timestamp + 61)
        #expect(
            verifier.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: tooLate)
                == .failure(.outsideClockWindow(client: "laptop", skew: -61)))
    }

    @Test func aReplayAfterARestartIsStillCaught() throws {
        var first = SPAv2Verifier(clients: [try Self.laptop()])
        _ = first.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
        let saved = try JSONEncoder().encode(first.seenNonces)
        var restarted = SPAv2Verifier(clients: [try Self.laptop()])
        restarted.restore(try JSONDecoder().decode([SPAv2Verifier.SeenNonce].self, from: saved), now: now)
        #expect(
            restarted.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                == .failure(.replayed(client: "laptop")))
    }

    @Test(arguments: [Int64(-61), Int64(61), Int64(-3600)])
    func expiredAndFutureTimestampsAreRefused(offset: Int64) throws {
        var verifier = SPAv2Verifier(clients: [try Self.laptop()])
        let when = WallTime(secondsSinceEpoch: Self.timestamp - offset)
        #expect(
            verifier.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: when)
                == .failure(.outsideClockWindow(client: "laptop", skew: offset)))
    }

    @Test func wrongKeyUnknownAndRevokedClients() throws {
        let otherKey = Curve25519.Signing.PrivateKey().publicKey
        var verifier = SPAv2Verifier(clients: [SPAv2Client(id: "laptop", key: .ed25519(otherKey), rules: [Self.ssh])])
        #expect(
            verifier.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                == .failure(.badAuthenticator(client: "laptop")))
        verifier.replaceClients([Self.phone()])
        #expect(
            verifier.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                == .failure(.unknownClient("laptop")))
        // An HMAC client's key cannot verify a packet declaring Ed25519, and vice versa.
        var confused = SPAv2Verifier(clients: [SPAv2Client(id: "laptop", key: .hmac(SymmetricKey(data: Self.hmacKey)), rules: [Self.ssh])])
        #expect(
            confused.verify(Self.ed25519Packet, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                == .failure(.badAuthenticator(client: "laptop")))
    }

    @Test func tamperingAnyByteFails() throws {
        var verifier = SPAv2Verifier(clients: [try Self.laptop()])
        for index in SPAv2.magic.count..<Self.ed25519Packet.count {
            var tampered = Self.ed25519Packet
            tampered[index] ^= 0x01
            if case .success = verifier.verify(tampered, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now) {
                Issue.record("byte \(index) flipped still verified")
            }
        }
    }

    @Test func natAddressOnlyWhenClientAndRuleAllowIt() throws {
        var strictClient = SPAv2Verifier(clients: [Self.phone(mayNameAddress: false)])
        #expect(
            strictClient.verify(Self.hmacPacket4, source: source, rule: Self.ftp, ruleAllowsAddress: true, now: now)
                == .failure(.addressNotAllowed(client: "phone")))
        var strictRule = SPAv2Verifier(clients: [Self.phone()])
        #expect(
            strictRule.verify(Self.hmacPacket4, source: source, rule: Self.ftp, ruleAllowsAddress: false, now: now)
                == .failure(.addressNotAllowed(client: "phone")))
        // Naming the very address the packet came from needs no permission.
        var same = SPAv2Verifier(clients: [Self.phone(mayNameAddress: false)])
        #expect(
            same.verify(Self.hmacPacket4, source: PeerAddress("203.0.113.5")!, rule: Self.ftp, ruleAllowsAddress: false, now: now)
                == .success(.init(clientID: "phone", rule: Self.ftp, address: PeerAddress("203.0.113.5")!)))
    }

    @Test func ipv6AddressAndRuleChecks() throws {
        var verifier = SPAv2Verifier(clients: [Self.phone()])
        #expect(
            verifier.verify(Self.hmacPacket6, source: PeerAddress("2001:db8::9")!, rule: Self.ftp, ruleAllowsAddress: true, now: now)
                == .success(.init(clientID: "phone", rule: Self.ftp, address: PeerAddress("2001:db8::5")!)))
        var wrongRule = SPAv2Verifier(clients: [Self.phone()])
        #expect(
            wrongRule.verify(Self.hmacPacket6, source: source, rule: Self.ssh, ruleAllowsAddress: true, now: now)
                == .failure(.ruleNotAllowed(client: "phone", rule: Self.ftp)))
    }

    @Test func rateLimitPerClient() throws {
        let key = SymmetricKey(data: Self.hmacKey)
        var verifier = SPAv2Verifier(clients: [Self.phone()], maximumPacketsPerWindow: 3)
        var results: [Bool] = []
        for counter in 0..<4 {
            let message = SPAv2.Message(clientID: "phone", timestamp: Self.timestamp, nonce: Array(repeating: UInt8(counter), count: 16), rule: Self.ftp)
            let packet = try SPAv2.encode(message, key: .hmac(key))
            results.append((try? verifier.verify(packet, source: source, rule: Self.ftp, ruleAllowsAddress: false, now: now).get()) != nil)
        }
        #expect(results == [true, true, true, false])
    }

    @Test func malformedPacketsAreRefusedWithoutCrashing() {
        var verifier = SPAv2Verifier(clients: [Self.phone()])
        let cases: [[UInt8]] = [
            [], Array("78109b6b9ef70f24".utf8), SPAv2.magic, SPAv2.magic + [9], Self.hmacPacket4.dropLast(1).map { $0 }, Self.hmacPacket4 + [0],
        ]
        for bytes in cases {
            if case .success = verifier.verify(bytes, source: source, rule: Self.ftp, ruleAllowsAddress: true, now: now) {
                Issue.record("\(bytes.count) bytes verified")
            }
        }
        #expect(SPAv2.decode(SPAv2.magic + [9]) == .failure(.unknownAuthenticator(9)))
        #expect(SPAv2.decode(Array("78109b6b".utf8)) == .failure(.notVersion2))
    }
}

/// SPA v2 through the engine: a v2 rule grants the verified address, names the client, and refuses
/// with the original event kinds (badMAC, blocked).
@Suite struct SPAv2EngineTests {
    static let rule = Rule(
        name: RuleName(rawValue: "SSH")!, knockSequence: [ServicePort(Port(rawValue: 4500)!, .udp)], autoclose: .seconds(60),
        spa2: SPAv2RuleSettings(), protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])
    let wall = WallTime(secondsSinceEpoch: SPAv2Tests.timestamp + 5)
    let source = PeerAddress("192.0.2.7")!

    func knock(_ bytes: [UInt8], from source: PeerAddress) -> Knock {
        Knock(source: source, transport: .udp, port: Port(rawValue: 4500)!, payload: bytes[...])
    }

    @Test func aValidPacketOpensAndNamesTheClientAReplayIsBlocked() throws {
        var engine = KnockEngine(rules: [Self.rule], clients: [try SPAv2Tests.laptop()])
        let effects = engine.handle(knock(SPAv2Tests.ed25519Packet, from: source), at: .seconds(1), wallTime: wall)
        #expect(effects.commands == [.allow(rule: Self.rule.name, peer: source, ttl: .seconds(60))])
        let allowed = effects.compactMap { if case .event(let event) = $0 { event } else { nil } }.first
        #expect(allowed?.client == "laptop")
        #expect(engine.handle(knock(SPAv2Tests.ed25519Packet, from: source), at: .seconds(2), wallTime: wall).kinds == [.blocked])
    }

    @Test func aReloadThatRemovesTheClientRefusesIt() throws {
        let engine = KnockEngine(rules: [Self.rule], clients: [try SPAv2Tests.laptop()])
        var reloaded = KnockEngine(rules: [Self.rule], clients: [], carryingOverFrom: engine)
        let effects = reloaded.handle(knock(SPAv2Tests.ed25519Packet, from: source), at: .seconds(1), wallTime: wall)
        #expect(effects.kinds == [.badMAC])
        #expect(effects.commands.isEmpty)
    }

    @Test func nonceMemorySurvivesARestartThroughItsExport() throws {
        var first = KnockEngine(rules: [Self.rule], clients: [try SPAv2Tests.laptop()])
        _ = first.handle(knock(SPAv2Tests.ed25519Packet, from: source), at: .seconds(1), wallTime: wall)
        var restarted = KnockEngine(rules: [Self.rule], clients: [try SPAv2Tests.laptop()])
        restarted.restoreSPAv2Nonces(first.spa2SeenNonces, at: wall)
        #expect(restarted.handle(knock(SPAv2Tests.ed25519Packet, from: source), at: .seconds(1), wallTime: wall).kinds == [.blocked])
    }

    @Test func aV1PayloadOnAV2RuleOpensNothing() throws {
        var engine = KnockEngine(rules: [Self.rule], clients: [try SPAv2Tests.laptop()])
        let v1 = SPAKey(format: .sha256, secret: Secret("opensecret")).payload(source: source, epochMinute: wall.epochMinute)
        #expect(engine.handle(knock(v1, from: source), at: .seconds(1), wallTime: wall).kinds == [.badMAC])
    }

    @Test func validation() {
        var both = Self.rule
        both.spa = SPASettings(openSecret: Secret("opensecret"), closeSecret: Secret("closesecret"))
        #expect(both.problems().contains { $0.field == "spa" && $0.severity == .error })
        var tcp = Self.rule
        tcp.knockSequence = [ServicePort(Port(rawValue: 4500)!, .tcp)]
        #expect(tcp.problems().contains { $0.message == "an SPA v2 rule needs exactly one UDP knock port" })
    }
}
