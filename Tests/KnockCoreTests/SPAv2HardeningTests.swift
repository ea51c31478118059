import Crypto
import KnockCore
import Testing

/// Issue 11 items 1 and 7: timestamps at the ends of Int64 with valid authenticators, the order of
/// checks (cheap ones before the signature, no state before it), and the nonce memory across reloads.
@Suite struct SPAv2HardeningTests {
    static let ssh = SPAv2Tests.ssh
    static let signing = Curve25519.Signing.PrivateKey()
    static let hmacKey = SymmetricKey(data: SPAv2Tests.hmacKey)
    let now = WallTime(secondsSinceEpoch: SPAv2Tests.timestamp)
    let source = PeerAddress("192.0.2.7")!

    static func clients() -> [SPAv2Client] {
        [
            SPAv2Client(id: "laptop", key: .ed25519(signing.publicKey), rules: [ssh]),
            SPAv2Client(id: "phone", key: .hmac(hmacKey), rules: [ssh]),
        ]
    }

    static func packet(_ client: String, timestamp: Int64, nonce: UInt8 = 1, rule: RuleName = ssh) throws -> [UInt8] {
        let message = SPAv2.Message(clientID: client, timestamp: timestamp, nonce: Array(repeating: nonce, count: 16), rule: rule)
        return try SPAv2.encode(message, key: client == "laptop" ? .ed25519(signing) : .hmac(hmacKey))
    }

    /// Used to trap in `timestamp - now` and `abs(skew)`; now refused as outside the clock window.
    @Test(arguments: ["laptop", "phone"], [Int64.min, Int64.min + 1, Int64.max, Int64.max - 1, -1, 0])
    func extremeTimestampsWithValidAuthenticatorsAreRefused(client: String, timestamp: Int64) throws {
        var verifier = SPAv2Verifier(clients: Self.clients())
        let bytes = try Self.packet(client, timestamp: timestamp)
        guard
            case .failure(.outsideClockWindow(client, let skew)) = verifier.verify(
                bytes, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
        else {
            Issue.record("timestamp \(timestamp) was not refused as outside the window")
            return
        }
        // The skew saturates instead of wrapping: its sign is the packet's direction.
        #expect((skew < 0) == (timestamp < now.secondsSinceEpoch))
        // The same at the ends of the server's clock: accepted exactly when within 60 s (in wide arithmetic).
        for serverTime in [Int64.min, Int64.min + 30, Int64.max - 30, Int64.max] {
            var fresh = SPAv2Verifier(clients: Self.clients())
            let result = fresh.verify(bytes, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: WallTime(secondsSinceEpoch: serverTime))
            let distance = (Int128(timestamp) - Int128(serverTime)).magnitude
            #expect((result == .success(.init(clientID: client, rule: Self.ssh, address: source))) == (distance <= 60))
            fresh.prune(now: WallTime(secondsSinceEpoch: serverTime))
        }
    }

    @Test func extremeTimestampsThroughTheEngineEmitARefusal() throws {
        let rule = Rule(
            name: Self.ssh, knockSequence: [ServicePort(Port(rawValue: 4500)!, .udp)], autoclose: .seconds(60),
            spa2: SPAv2RuleSettings(), protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])
        var engine = KnockEngine(rules: [rule], clients: Self.clients())
        for timestamp in [Int64.min, Int64.max] {
            let bytes = try Self.packet("phone", timestamp: timestamp)
            let knock = Knock(source: source, transport: .udp, port: Port(rawValue: 4500)!, payload: bytes[...])
            let effects = engine.handle(knock, at: .seconds(1), wallTime: now)
            #expect(effects.kinds == [.badMAC])
            #expect(effects.commands.isEmpty)
        }
    }

    @Test func cheapChecksComeBeforeTheAuthenticator() throws {
        var verifier = SPAv2Verifier(clients: Self.clients())
        // A forged packet (signature of other bytes) is refused for its timestamp or rule, which need no key.
        var stale = try Self.packet("laptop", timestamp: now.secondsSinceEpoch - 3600)
        stale[stale.count - 1] ^= 1
        #expect(
            verifier.verify(stale, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                == .failure(.outsideClockWindow(client: "laptop", skew: -3600)))
        var otherRule = try Self.packet("laptop", timestamp: now.secondsSinceEpoch, rule: SPAv2Tests.ftp)
        otherRule[otherRule.count - 1] ^= 1
        #expect(
            verifier.verify(otherRule, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                == .failure(.ruleNotAllowed(client: "laptop", rule: SPAv2Tests.ftp)))
        // Everything else right: only then is the signature checked.
        var forged = try Self.packet("laptop", timestamp: now.secondsSinceEpoch)
        forged[forged.count - 1] ^= 1
        #expect(
            verifier.verify(forged, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                == .failure(.badAuthenticator(client: "laptop")))
    }

    @Test func forgedPacketsChangeNoState() throws {
        var verifier = SPAv2Verifier(clients: Self.clients(), maximumPacketsPerWindow: 2)
        // Forgeries carrying the nonces the client will use, more of them than the rate limit allows.
        for nonce in UInt8(1)...5 {
            var forged = try Self.packet("phone", timestamp: now.secondsSinceEpoch, nonce: nonce)
            forged[forged.count - 1] ^= 1
            #expect(
                verifier.verify(forged, source: source, rule: Self.ssh, ruleAllowsAddress: false, now: now)
                    == .failure(.badAuthenticator(client: "phone")))
        }
        #expect(verifier.seenNonces.isEmpty)
        for nonce in UInt8(1)...2 {
            #expect(
                verifier.verify(
                    try Self.packet("phone", timestamp: now.secondsSinceEpoch, nonce: nonce), source: source,
                    rule: Self.ssh, ruleAllowsAddress: false, now: now) == .success(.init(clientID: "phone", rule: Self.ssh, address: source)))
        }
        #expect(verifier.seenNonces.count == 2)
    }

    // MARK: Reloads (item 7)

    static let rule = Rule(
        name: ssh, knockSequence: [ServicePort(Port(rawValue: 4500)!, .udp)], autoclose: .seconds(60),
        spa2: SPAv2RuleSettings(), protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])

    func knock(_ bytes: [UInt8]) -> Knock {
        Knock(source: source, transport: .udp, port: Port(rawValue: 4500)!, payload: bytes[...])
    }

    @Test(arguments: [Duration.seconds(30), .seconds(60), .seconds(300)])
    func aReloadThatChangesTheWindowKeepsTheNonceMemory(window: Duration) throws {
        var engine = KnockEngine(rules: [Self.rule], clients: Self.clients(), spa2ClockWindow: .seconds(60))
        let captured = knock(try Self.packet("laptop", timestamp: now.secondsSinceEpoch))
        #expect(engine.handle(captured, at: .seconds(1), wallTime: now).commands.count == 1)
        var reloaded = KnockEngine(rules: [Self.rule], clients: Self.clients(), spa2ClockWindow: window, carryingOverFrom: engine)
        #expect(reloaded.spa2SeenNonces.count == 1)
        let replay = reloaded.handle(captured, at: .seconds(2), wallTime: WallTime(secondsSinceEpoch: now.secondsSinceEpoch + 5))
        #expect(replay.kinds == [.blocked])
        #expect(replay.commands.isEmpty)
        // Re-pruned by the new window: once it has passed, the nonce is forgotten.
        let past = WallTime(secondsSinceEpoch: now.secondsSinceEpoch + window.wholeSeconds + 1)
        _ = reloaded.expire(at: .seconds(400), wallTime: past)
        #expect(reloaded.spa2SeenNonces.isEmpty)
    }

    @Test func aReloadThatChangesTheClientsKeyKeepsItsNonces() throws {
        var engine = KnockEngine(rules: [Self.rule], clients: Self.clients())
        let captured = knock(try Self.packet("phone", timestamp: now.secondsSinceEpoch))
        #expect(engine.handle(captured, at: .seconds(1), wallTime: now).commands.count == 1)
        // The phone now also may name addresses: a changed client entry, same id and key.
        var changed = Self.clients()
        changed[1].mayNameAddress = true
        var reloaded = KnockEngine(rules: [Self.rule], clients: changed, spa2ClockWindow: .seconds(120), carryingOverFrom: engine)
        #expect(reloaded.handle(captured, at: .seconds(2), wallTime: now).kinds == [.blocked])
        // A removed client's memory goes with it.
        let without = KnockEngine(rules: [Self.rule], clients: [changed[0]], carryingOverFrom: reloaded)
        #expect(without.spa2SeenNonces.isEmpty)
    }

    @Test func aWiderWindowDoesNotReadmitForgottenNonces() throws {
        var engine = KnockEngine(rules: [Self.rule], clients: Self.clients(), spa2ClockWindow: .seconds(60))
        let captured = knock(try Self.packet("laptop", timestamp: now.secondsSinceEpoch))
        #expect(engine.handle(captured, at: .seconds(1), wallTime: now).commands.count == 1)
        // 90 s later the 60 s window has forgotten the nonce; the reload widens the window to 300 s.
        let later = WallTime(secondsSinceEpoch: now.secondsSinceEpoch + 90)
        _ = engine.expire(at: .seconds(90), wallTime: later)
        #expect(engine.spa2SeenNonces.isEmpty)
        var reloaded = KnockEngine(rules: [Self.rule], clients: Self.clients(), spa2ClockWindow: .seconds(300), carryingOverFrom: engine)
        let replay = reloaded.handle(captured, at: .seconds(91), wallTime: later)
        #expect(replay.commands.isEmpty)
        #expect(replay.kinds == [.badMAC])
        // Also a packet never seen, as old: its nonce could have been forgotten too.
        let old = knock(try Self.packet("laptop", timestamp: later.secondsSinceEpoch - 100, nonce: 8))
        #expect(reloaded.handle(old, at: .seconds(92), wallTime: later).commands.isEmpty)
        // Packets younger than what the old window remembered open under the wider window.
        let recent = knock(try Self.packet("laptop", timestamp: later.secondsSinceEpoch - 50, nonce: 9))
        #expect(reloaded.handle(recent, at: .seconds(93), wallTime: later).commands.count == 1)
    }

    // MARK: Time arithmetic at the ends of the range

    static let minuteCases: [(seconds: Int64, minute: Int64)] = [
        (Int64.min, Int64.min / 60 - 1), (Int64.min + 68, -153_722_867_280_912_929), (Int64.min + 67, -153_722_867_280_912_930),
        (-61, -2), (-60, -1), (-1, -1), (0, 0), (59, 0), (60, 1), (Int64.max, Int64.max / 60),
    ]

    @Test(arguments: minuteCases)
    func epochMinuteFloorsWithoutOverflow(seconds: Int64, minute: Int64) {
        #expect(WallTime(secondsSinceEpoch: seconds).epochMinute == minute)
    }

    @Test func instantArithmeticSaturates() {
        let low = Instant(nanoseconds: Int64.min)
        let high = Instant(nanoseconds: Int64.max)
        #expect((high - low).nanosecondsClamped == Int64.max)
        #expect((low - high).nanosecondsClamped == Int64.min)
        #expect(high + .seconds(1) == high)
        #expect(Instant.seconds(Int64.max) == high)
        #expect(Instant.seconds(Int64.min) == low)
        #expect(Instant.seconds(3) - Instant.seconds(1) == .seconds(2))
    }

    @Test func anSPAv1RuleAtTheEndsOfTheWallClockDoesNotTrap() {
        let rule = Rule(
            name: RuleName(rawValue: "FTP")!, knockSequence: [ServicePort(Port(rawValue: 4000)!, .udp)],
            spa: SPASettings(openSecret: Secret("opensecret"), closeSecret: Secret("closesecret"), clockSkewMinutes: 60),
            protectedPorts: [ServicePort(Port(rawValue: 21)!, .tcp)])
        for seconds in [Int64.min, Int64.max] {
            var engine = KnockEngine(rules: [rule])
            let wall = WallTime(secondsSinceEpoch: seconds)
            let payload = SPAKey(format: .sha256, secret: Secret("opensecret")).payload(source: source, epochMinute: wall.epochMinute)
            let knock = Knock(source: source, transport: .udp, port: Port(rawValue: 4000)!, payload: payload[...])
            #expect(engine.handle(knock, at: .zero, wallTime: wall).commands.count == 1)
            #expect(engine.handle(knock, at: .zero, wallTime: wall).kinds == [.blocked])
            _ = engine.expire(at: .zero, wallTime: wall)
            #expect(engine.restoreSPAReplayState(engine.spaReplayState(at: wall), at: wall) == 0)
        }
    }
}
