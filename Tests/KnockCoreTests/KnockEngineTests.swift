import KnockCore
import Testing

/// The original test suite's scenarios (basic sequences, SPA open/close, strict, two rules) and the
/// semantics DESIGN.md fixes, with explicit instants instead of a clock.
@Suite struct KnockEngineSequenceTests {
    let wall = Fixture.wall(minute: 29_300_000)

    @Test func twoPortSequenceOpensAfterTheLastKnock() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001])])
        let first = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(0), wallTime: wall)
        #expect(first.kinds == [.matching(step: 1, of: 2)])
        #expect(first.commands.isEmpty)
        let second = engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(1), wallTime: wall)
        #expect(second.kinds == [.allowed(until: nil)])
        #expect(second.commands == [.allow(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.7"), ttl: nil)])
        #expect(engine.peers(of: Fixture.name("SSH"))?.map(\.state) == [.allowed(until: nil)])
    }

    @Test func onePortRuleOpensOnItsOnlyKnock() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("WEB", [2000], autoclose: .seconds(60))])
        let effects = engine.handle(Fixture.knock("192.0.2.7", 2000), at: .seconds(5), wallTime: wall)
        #expect(effects.kinds == [.allowed(until: .seconds(65))])
        #expect(effects.commands == [.allow(rule: Fixture.name("WEB"), peer: Fixture.address("192.0.2.7"), ttl: .seconds(60))])
    }

    @Test func fivePortSequence() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [3001, 3005, 3002, 3004, 3003])])
        var kinds: [KnockEvent.Kind] = []
        for (second, port) in [3001, 3005, 3002, 3004, 3003].enumerated() {
            kinds += engine.handle(Fixture.knock("192.0.2.7", UInt16(port)), at: .seconds(Int64(second)), wallTime: wall).kinds
        }
        #expect(
            kinds == [
                .matching(step: 1, of: 5), .matching(step: 2, of: 5), .matching(step: 3, of: 5), .matching(step: 4, of: 5),
                .allowed(until: nil),
            ])
    }

    @Test func aKnockOffTheFirstPortCreatesNoPeer() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004], strict: true)])
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(0), wallTime: wall).isEmpty)
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2004), at: .seconds(1), wallTime: wall).isEmpty)
        #expect(engine.peers(of: Fixture.name("SSH")) == [])
        // …and the good sequence afterwards still opens.
        var kinds: [KnockEvent.Kind] = []
        for port: UInt16 in [2002, 2001, 2004] {
            kinds += engine.handle(Fixture.knock("192.0.2.7", port), at: .seconds(2), wallTime: wall).kinds
        }
        #expect(kinds.last == .allowed(until: nil))
    }

    @Test func twoPeersInParallelDoNotDisturbEachOther() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004], strict: true)])
        let alice = "192.0.2.7"
        let bob = "198.51.100.9"
        var aliceKinds: [KnockEvent.Kind] = []
        var bobKinds: [KnockEvent.Kind] = []
        for (index, port) in ([2002, 2001, 2004] as [UInt16]).enumerated() {
            aliceKinds += engine.handle(Fixture.knock(alice, port), at: .seconds(Int64(index)), wallTime: wall).kinds
            bobKinds += engine.handle(Fixture.knock(bob, port), at: .seconds(Int64(index)), wallTime: wall).kinds
        }
        #expect(aliceKinds.last == .allowed(until: nil))
        #expect(bobKinds.last == .allowed(until: nil))
    }

    @Test func wrongKnockWithoutStrictIsIgnored() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004])])
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(0), wallTime: wall)
        let wrong = engine.handle(Fixture.knock("192.0.2.7", 2004), at: .seconds(1), wallTime: wall)
        #expect(wrong.kinds == [.didNotMatch(expected: Fixture.port(2001), reset: false)])
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(2), wallTime: wall).kinds == [.matching(step: 2, of: 3)])
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2004), at: .seconds(3), wallTime: wall).kinds == [.allowed(until: nil)])
    }

    @Test func wrongKnockWithStrictStartsOver() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004], strict: true)])
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(0), wallTime: wall)
        let wrong = engine.handle(Fixture.knock("192.0.2.7", 2004), at: .seconds(1), wallTime: wall)
        #expect(wrong.kinds == [.didNotMatch(expected: Fixture.port(2001), reset: true)])
        // The rest of the old sequence no longer opens.
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(2), wallTime: wall).isEmpty)
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2004), at: .seconds(3), wallTime: wall).isEmpty)
        #expect(engine.peers(of: Fixture.name("SSH")) == [])
    }

    @Test func strictWrongKnockOnTheFirstPortIsConsumed() {
        // As in the original: the wrong packet resets the attempt and starts nothing itself.
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004], strict: true)])
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(0), wallTime: wall)
        _ = engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(1), wallTime: wall)
        let restart = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(2), wallTime: wall)
        #expect(restart.kinds == [.didNotMatch(expected: Fixture.port(2004), reset: true)])
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(3), wallTime: wall).isEmpty)
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(4), wallTime: wall).kinds == [.matching(step: 1, of: 3)])
    }

    @Test func strictCountsAnyOtherPacketOfAPeerMidSequence() {
        // In the original's one-rule form the match saw every NEW packet, the protected port's included.
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001], strict: true)])
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(0), wallTime: wall)
        let toService = engine.handle(Fixture.knock("192.0.2.7", 22), at: .seconds(1), wallTime: wall)
        #expect(toService.kinds == [.didNotMatch(expected: Fixture.port(2001), reset: true)])
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(2), wallTime: wall).isEmpty)
        // Packets of peers not mid-sequence are nobody's business.
        #expect(engine.handle(Fixture.knock("198.51.100.9", 22), at: .seconds(3), wallTime: wall).isEmpty)
    }

    @Test func nonStrictRuleIgnoresOtherTraffic() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001])])
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(0), wallTime: wall)
        #expect(engine.handle(Fixture.knock("192.0.2.7", 22), at: .seconds(1), wallTime: wall).isEmpty)
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(2), wallTime: wall).kinds == [.allowed(until: nil)])
    }

    @Test func aRetransmittedSYNIsNotAKnock() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004], strict: true)])
        _ = engine.handle(Fixture.syn("192.0.2.7", 2002, sourcePort: 40001, sequence: 0x1111_0000), at: .seconds(0), wallTime: wall)
        // The kernel retransmits an unanswered SYN after 1 s, then 3 s: the same source port and sequence.
        #expect(engine.handle(Fixture.syn("192.0.2.7", 2002, sourcePort: 40001, sequence: 0x1111_0000), at: .seconds(1), wallTime: wall).isEmpty)
        _ = engine.handle(Fixture.syn("192.0.2.7", 2001, sourcePort: 40002, sequence: 0x2222_0000), at: .seconds(2), wallTime: wall)
        #expect(engine.handle(Fixture.syn("192.0.2.7", 2001, sourcePort: 40002, sequence: 0x2222_0000), at: .seconds(3), wallTime: wall).isEmpty)
        #expect(engine.handle(Fixture.syn("192.0.2.7", 2004, sourcePort: 40003, sequence: 1), at: .seconds(4), wallTime: wall).kinds == [.allowed(until: nil)])
    }

    @Test func strictRepeatedFirstPortStaysClosed() {
        // issue 12: 9980, 9980, 9981 (two connections to the first port, then the second) stays closed,
        // as in the original's test 03; 9980, 9981 then opens.
        var engine = KnockEngine(rules: [Fixture.sequenceRule("T", [9980, 9981], strict: true)])
        var kinds: [KnockEvent.Kind] = []
        for (second, (port, sourcePort)) in [(9980, 50000), (9980, 50001), (9981, 50002)].enumerated() as EnumeratedSequence<[(UInt16, UInt16)]> {
            kinds +=
                engine.handle(
                    Fixture.syn("192.0.2.7", port, sourcePort: sourcePort, sequence: UInt32(sourcePort) * 7), at: .seconds(Int64(second)), wallTime: wall
                ).kinds
        }
        #expect(kinds == [.matching(step: 1, of: 2), .didNotMatch(expected: Fixture.port(9981), reset: true)])
        #expect(engine.peers(of: Fixture.name("T")) == [])
        kinds = []
        for (second, (port, sourcePort)) in [(9980, 50003), (9981, 50004)].enumerated() as EnumeratedSequence<[(UInt16, UInt16)]> {
            kinds += engine.handle(Fixture.syn("192.0.2.7", port, sourcePort: sourcePort, sequence: 99), at: .seconds(Int64(10 + second)), wallTime: wall).kinds
        }
        #expect(kinds == [.matching(step: 1, of: 2), .allowed(until: nil)])
    }

    @Test(arguments: [
        // (source port, sequence number, seconds after the knock, reset?)
        (UInt16(40001), UInt32(77), Int64(2), false),  // the same SYN: a retransmission
        (UInt16(40002), UInt32(77), Int64(1), true),  // the same port from a new source port: a new connection
        (UInt16(40001), UInt32(78), Int64(1), true),  // a new sequence number: a new connection
        (UInt16(40001), UInt32(77), Int64(4), true),  // the same SYN after the 3 s window: taken as a new knock
    ])
    func strictTellsARetransmissionFromANewConnection(sourcePort: UInt16, sequence: UInt32, after: Int64, reset: Bool) {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004], strict: true)])
        _ = engine.handle(Fixture.syn("192.0.2.7", 2002, sourcePort: 40001, sequence: 77), at: .seconds(10), wallTime: wall)
        _ = engine.handle(Fixture.syn("192.0.2.7", 2001, sourcePort: 40001, sequence: 77), at: .seconds(11), wallTime: wall)
        let again = engine.handle(Fixture.syn("192.0.2.7", 2001, sourcePort: sourcePort, sequence: sequence), at: .seconds(11 + after), wallTime: wall)
        #expect(again.kinds == (reset ? [.didNotMatch(expected: Fixture.port(2004), reset: true)] : []))
        let last = engine.handle(Fixture.syn("192.0.2.7", 2004, sourcePort: 40009, sequence: 1), at: .seconds(11 + after), wallTime: wall)
        #expect(last.kinds == (reset ? [] : [.allowed(until: nil)]))
    }

    @Test func aRepeatedDatagramIsARetransmissionOnlyWithTheSamePayload() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("U", [7000, 7001], transport: .udp, strict: true)])
        _ = engine.handle(Fixture.datagram("192.0.2.7", 7000, sourcePort: 5000, payload: [1, 2, 3]), at: .seconds(0), wallTime: wall)
        #expect(engine.handle(Fixture.datagram("192.0.2.7", 7000, sourcePort: 5000, payload: [1, 2, 3]), at: .seconds(1), wallTime: wall).isEmpty)
        let other = engine.handle(Fixture.datagram("192.0.2.7", 7000, sourcePort: 5000, payload: [1, 2, 4]), at: .seconds(1), wallTime: wall)
        #expect(other.kinds == [.didNotMatch(expected: Fixture.port(7001, .udp), reset: true)])
        #expect(engine.handle(Fixture.datagram("192.0.2.7", 7001, sourcePort: 5000, payload: []), at: .seconds(2), wallTime: wall).isEmpty)
    }

    @Test func protocolIsPartOfTheKnock() {
        var engine = KnockEngine(rules: [
            Rule(name: Fixture.name("MIX"), knockSequence: [Fixture.port(7000, .udp), Fixture.port(8000, .tcp)], protectedPorts: [Fixture.port(22)])
        ])
        #expect(engine.handle(Fixture.knock("192.0.2.7", 7000, .tcp), at: .seconds(0), wallTime: wall).isEmpty)
        #expect(engine.handle(Fixture.knock("192.0.2.7", 7000, .udp), at: .seconds(0), wallTime: wall).kinds == [.matching(step: 1, of: 2)])
        // 8000/udp is no knock port of this non-strict rule: the rule does not see it at all.
        #expect(engine.handle(Fixture.knock("192.0.2.7", 8000, .udp), at: .seconds(1), wallTime: wall).isEmpty)
        #expect(engine.handle(Fixture.knock("192.0.2.7", 8000, .tcp), at: .seconds(1), wallTime: wall).kinds == [.allowed(until: nil)])
    }

    @Test func ipv6SequenceOpens() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001], strict: true, autoclose: .seconds(30))])
        _ = engine.handle(Fixture.knock("2001:db8::7", 2002), at: .seconds(0), wallTime: wall)
        // An IPv4 peer is another peer, even if its bits are the low bits of the IPv6 address.
        #expect(engine.handle(Fixture.knock("0.0.0.7", 2001), at: .seconds(0), wallTime: wall).isEmpty)
        let effects = engine.handle(Fixture.knock("2001:db8::7", 2001), at: .seconds(1), wallTime: wall)
        #expect(effects.commands == [.allow(rule: Fixture.name("SSH"), peer: Fixture.address("2001:db8::7"), ttl: .seconds(30))])
    }
}

@Suite struct KnockEngineTimeTests {
    let wall = Fixture.wall(minute: 29_300_000)

    @Test(arguments: [(Int64(10), true), (Int64(11), false)])
    func timeBetweenKnocksIsEnforced(gapSeconds: Int64, opens: Bool) {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001], time: .seconds(10))])
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(100), wallTime: wall)
        let effects = engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(100 + gapSeconds), wallTime: wall)
        if opens {
            #expect(effects.kinds == [.allowed(until: nil)])
        } else {
            #expect(effects.kinds == [.timeExceeded])
            #expect(effects.commands.isEmpty)
        }
    }

    @Test func timeIsBetweenKnocksNotFromTheFirst() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [1, 2, 3, 4], time: .seconds(10))])
        var kinds: [KnockEvent.Kind] = []
        for (step, port) in ([1, 2, 3, 4] as [UInt16]).enumerated() {
            kinds += engine.handle(Fixture.knock("192.0.2.7", port), at: .seconds(Int64(step) * 9), wallTime: wall).kinds
        }
        #expect(kinds.last == .allowed(until: nil))
    }

    @Test func anExpiredAttemptMayStartOverWithTheFirstPort() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001], time: .seconds(10))])
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(0), wallTime: wall)
        let again = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(30), wallTime: wall)
        #expect(again.kinds == [.timeExceeded, .matching(step: 1, of: 2)])
    }

    @Test func firstKnocksLapseInPlace() {
        // A first knock needs no timer: once past the rule's time its slot is free, and a late second
        // knock finds it lapsed.
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001], time: .seconds(10))])
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(0), wallTime: wall)
        #expect(engine.nextDeadline() == nil)
        #expect(engine.remembersFirstKnock(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.7"), at: .seconds(10)))
        #expect(engine.liveFirstKnocks(at: .seconds(10)) == 1)
        #expect(!engine.remembersFirstKnock(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.7"), at: .seconds(11)))
        #expect(engine.liveFirstKnocks(at: .seconds(11)) == 0)
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(12), wallTime: wall).kinds == [.timeExceeded])
        #expect(engine.handle(Fixture.knock("192.0.2.7", 2001), at: .seconds(13), wallTime: wall).isEmpty)
    }

    @Test func garbageCollectionForgetsStaleAttemptsAndReportsTheDeadline() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2003, 2002, 2001], time: .seconds(10))])
        #expect(engine.nextDeadline() == nil)
        _ = engine.handle(Fixture.knock("192.0.2.7", 2003), at: .seconds(0), wallTime: wall)
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(0), wallTime: wall)
        _ = engine.handle(Fixture.knock("198.51.100.9", 2003), at: .seconds(5), wallTime: wall)
        _ = engine.handle(Fixture.knock("198.51.100.9", 2002), at: .seconds(5), wallTime: wall)
        let deadline = engine.nextDeadline()
        #expect(deadline.map { $0 > .seconds(10) && $0 <= .seconds(11) } == true)
        #expect(engine.expire(at: .seconds(10), wallTime: wall).isEmpty)
        let expired = engine.expire(at: .seconds(12), wallTime: wall)
        #expect(
            expired == [.event(KnockEvent(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.7"), kind: .timeExceeded, knock: nil, time: .seconds(12)))])
        #expect(engine.peerCounts(of: Fixture.name("SSH"))?.matching == 1)
        #expect(engine.expire(at: .seconds(16), wallTime: wall).kinds == [.timeExceeded])
        #expect(engine.nextDeadline() == nil)
    }

    @Test func autocloseEndsAccessAndIsReported() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002], autoclose: .seconds(3600))])
        _ = engine.handle(Fixture.knock("192.0.2.7", 2002), at: .seconds(10), wallTime: wall)
        #expect(engine.nextDeadline() == .seconds(3610))
        #expect(engine.expire(at: .seconds(3609), wallTime: wall).isEmpty)
        let effects = engine.expire(at: .seconds(3610), wallTime: wall)
        #expect(effects.kinds == [.autoclosed])
        #expect(effects.commands.isEmpty, "the set element's kernel timeout already removed access")
        #expect(engine.peers(of: Fixture.name("SSH")) == [])
    }

    @Test func knockingAgainWhileAllowedExtendsAccess() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001], autoclose: .seconds(60))])
        for (time, port) in [(0, 2002), (1, 2001), (50, 2002), (51, 2001)] as [(Int64, UInt16)] {
            _ = engine.handle(Fixture.knock("192.0.2.7", port), at: .seconds(time), wallTime: wall)
        }
        #expect(engine.expire(at: .seconds(100), wallTime: wall).isEmpty)
        #expect(engine.peers(of: Fixture.name("SSH"))?.map(\.state) == [.allowed(until: .seconds(111))])
    }
}

@Suite struct KnockEngineSPATests {
    let minute: Int64 = 29_300_000
    let alice = Fixture.address("192.0.2.7")

    func spaKnock(
        _ secret: String, for source: PeerAddress, minute: Int64, from sender: String = "192.0.2.7", port: UInt16 = 4000,
        format: SPAFormat = .sha256
    ) -> Knock {
        let payload = SPAKey(format: format, secret: Secret(secret)).payload(source: source, epochMinute: minute)
        return Fixture.knock(sender, port, .udp, payload: payload)
    }

    @Test func theOriginalSPAScenario() {
        // trunk test 02: no payload, wrong secret, MAC for another address, the right one, a close knock
        // to any port, then no re-open in the same minute.
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        let wall = Fixture.wall(minute: minute)
        #expect(engine.handle(Fixture.knock("192.0.2.7", 4000, .udp), at: .seconds(0), wallTime: wall).kinds == [.badMAC])
        #expect(engine.handle(spaKnock("wrongsecret", for: alice, minute: minute), at: .seconds(1), wallTime: wall).kinds == [.badMAC])
        #expect(engine.handle(spaKnock("opensecret", for: Fixture.address("198.51.100.9"), minute: minute), at: .seconds(2), wallTime: wall).kinds == [.badMAC])
        let open = engine.handle(spaKnock("opensecret", for: alice, minute: minute), at: .seconds(3), wallTime: wall)
        #expect(open.kinds == [.allowed(until: nil)])
        #expect(open.commands == [.allow(rule: Fixture.name("FTP"), peer: alice, ttl: nil)])
        let close = engine.handle(spaKnock("closesecret", for: alice, minute: minute, port: 9999), at: .seconds(4), wallTime: wall)
        #expect(close.kinds == [.closed])
        #expect(close.commands == [.revoke(rule: Fixture.name("FTP"), peer: alice)])
        let reopen = engine.handle(spaKnock("opensecret", for: alice, minute: minute), at: .seconds(5), wallTime: wall)
        #expect(reopen.kinds == [.blocked])
        #expect(reopen.commands.isEmpty)
        // The next minute opens again.
        let next = engine.handle(spaKnock("opensecret", for: alice, minute: minute + 1), at: .seconds(65), wallTime: Fixture.wall(minute: minute + 1))
        #expect(next.kinds == [.allowed(until: nil)])
    }

    @Test(arguments: [(Int64(0), true), (Int64(-1), true), (Int64(-2), false), (Int64(1), false)])
    func clockWindowIsCurrentAndPreviousMinute(offset: Int64, opens: Bool) {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        let effects = engine.handle(spaKnock("opensecret", for: alice, minute: minute + offset), at: .seconds(0), wallTime: Fixture.wall(minute: minute))
        #expect(effects.kinds == (opens ? [.allowed(until: nil)] : [.badMAC]))
    }

    @Test func aCapturedPacketNeverOpensTwice() {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        let captured = spaKnock("opensecret", for: alice, minute: minute)
        #expect(engine.handle(captured, at: .seconds(0), wallTime: Fixture.wall(minute: minute)).kinds == [.allowed(until: nil)])
        _ = engine.handle(spaKnock("closesecret", for: alice, minute: minute), at: .seconds(1), wallTime: Fixture.wall(minute: minute))
        // Replayed in the next minute, still inside the clock window: blocked, not opened.
        #expect(engine.handle(captured, at: .seconds(61), wallTime: Fixture.wall(minute: minute + 1)).kinds == [.blocked])
        // An older minute than one already used is blocked too.
        _ = engine.handle(spaKnock("opensecret", for: alice, minute: minute + 1), at: .seconds(62), wallTime: Fixture.wall(minute: minute + 1))
        #expect(engine.handle(captured, at: .seconds(63), wallTime: Fixture.wall(minute: minute + 1)).kinds == [.blocked])
    }

    @Test func closeKnockOnlyMattersForAnAllowedPeer() {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        let wall = Fixture.wall(minute: minute)
        #expect(engine.handle(spaKnock("closesecret", for: alice, minute: minute, port: 9999), at: .seconds(0), wallTime: wall).isEmpty)
        #expect(engine.handle(spaKnock("closesecret", for: alice, minute: minute), at: .seconds(0), wallTime: wall).kinds == [.badMAC])
    }

    @Test func md5FormatOpensWithAndWithoutTheExtraByte() {
        var engine = KnockEngine(rules: [Fixture.spaRule(format: .md5, open: "qweasdzxc", close: nil)])
        let wall = Fixture.wall(minute: minute)
        var knock = spaKnock("qweasdzxc", for: alice, minute: minute, format: .md5)
        #expect(knock.payload.count == 33)
        knock.payload = knock.payload.dropLast()
        #expect(engine.handle(knock, at: .seconds(0), wallTime: wall).kinds == [.allowed(until: nil)])
    }

    @Test func ipv6SourcesUseTheSixteenByteAddress() {
        var engine = KnockEngine(rules: [Fixture.spaRule(autoclose: .seconds(240 * 60))])
        let source = Fixture.address("2001:db8::7")
        let wall = Fixture.wall(minute: minute)
        let effects = engine.handle(spaKnock("opensecret", for: source, minute: minute, from: "2001:db8::7"), at: .seconds(0), wallTime: wall)
        #expect(effects.commands == [.allow(rule: Fixture.name("FTP"), peer: source, ttl: .seconds(240 * 60))])
    }

    @Test func twoRuleCheckIPFormGrantsTheNamedRule() {
        // `--knockports 4000 --name FTP --opensecret … -j DROP` + `--checkip --name FTP --dport 21 -j ACCEPT`
        // is one rule whose grant opens port 21; a second rule is untouched.
        var engine = KnockEngine(rules: [Fixture.spaRule(), Fixture.sequenceRule("SSH", [2002, 2001])])
        let effects = engine.handle(spaKnock("opensecret", for: alice, minute: minute), at: .seconds(0), wallTime: Fixture.wall(minute: minute))
        #expect(effects.commands == [.allow(rule: Fixture.name("FTP"), peer: alice, ttl: nil)])
        #expect(engine.peers(of: Fixture.name("SSH")) == [])
        #expect(engine.rules.first?.protectedPorts == [Fixture.port(21)])
    }

    @Test func replayMemoryIsPrunedOutsideTheWindow() {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        _ = engine.handle(spaKnock("opensecret", for: alice, minute: minute), at: .seconds(0), wallTime: Fixture.wall(minute: minute))
        _ = engine.expire(at: .seconds(600), wallTime: Fixture.wall(minute: minute + 10))
        // Still blocked in-window after pruning? The window has moved on; the old packet is simply stale.
        let stale = engine.handle(spaKnock("opensecret", for: alice, minute: minute), at: .seconds(601), wallTime: Fixture.wall(minute: minute + 10))
        #expect(stale.kinds == [.badMAC])
    }
}

@Suite struct KnockEngineFloodTests {
    let wall = Fixture.wall(minute: 29_300_000)

    @Test(arguments: [Int64(1), Int64(5)])
    func aClientKnockingAtHumanSpeedGetsInDuringAMaxRateFlood(gapSeconds: Int64) {
        // issue 12: 250,000 spoofed first knocks a second from distinct sources (1.75M or 3.75M),
        // while a client knocks 2002, 2001, 2004 with `gapSeconds` between knocks. Default table.
        var engine = KnockEngine(
            rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004], time: .seconds(10), strict: true)],
            fingerprintKey: Fixture.fingerprintKey)
        // A peer allowed before the flood keeps its access.
        for port: UInt16 in [2002, 2001, 2004] { _ = engine.handle(Fixture.knock("192.0.2.1", port), at: .zero, wallTime: wall) }
        var legitimate: [KnockEvent.Kind] = []
        let legit = Fixture.address("198.51.100.77")
        let knocks = [0: 2002, 1: 2001, 2: 2004].map { (key: 1_000_000 + $0.key * Int(gapSeconds) * 250_000, port: UInt16($0.value)) }
        for index in 0..<(knocks.map(\.key).max() ?? 0) + 250_000 {
            let now = Instant(nanoseconds: Int64(index) * 4_000)
            let spoofed = Knock(source: PeerAddress(high: 0x2001_0db8_ff00_0000, low: UInt64(index)), transport: .tcp, port: Fixture.port(2002).port)
            engine.handle(spoofed, at: now, wallTime: wall) { _ in }
            if let knock = knocks.first(where: { $0.key == index }) {
                legitimate += engine.handle(Knock(source: legit, transport: .tcp, port: Fixture.port(knock.port).port), at: now, wallTime: wall).kinds
            }
        }
        #expect(legitimate == [.matching(step: 1, of: 3), .matching(step: 2, of: 3), .allowed(until: nil)])
        #expect(engine.peerCounts(of: Fixture.name("SSH"))?.allowed == 2)
        let memory = engine.firstKnockMemory
        #expect(memory.capacity == FirstKnockTable.defaultCapacity)
        #expect(memory.occupied <= memory.capacity)
        #expect(memory.residentBytes <= memory.capacity * 16)
        #expect(memory.evictions == 0, "2.5M live first knocks fit a 4M table without evicting")
    }

    @Test func evictionTakesTheStalestAdvancedAttempt() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2003, 2002, 2001], maxTracked: 2)])
        for (second, peer) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].enumerated() {
            _ = engine.handle(Fixture.knock(peer, 2003), at: .seconds(Int64(second)), wallTime: wall)
        }
        _ = engine.handle(Fixture.knock("192.0.2.1", 2002), at: .seconds(3), wallTime: wall)
        _ = engine.handle(Fixture.knock("192.0.2.2", 2002), at: .seconds(4), wallTime: wall)
        let third = engine.handle(Fixture.knock("192.0.2.3", 2002), at: .seconds(5), wallTime: wall)
        #expect(
            third == [
                .event(KnockEvent(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.1"), kind: .evicted, knock: nil, time: .seconds(5))),
                .event(
                    KnockEvent(
                        rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.3"), kind: .matching(step: 2, of: 3), knock: Fixture.port(2002),
                        time: .seconds(5))),
            ])
        #expect(engine.handle(Fixture.knock("192.0.2.2", 2001), at: .seconds(6), wallTime: wall).kinds == [.allowed(until: nil)])
    }

    @Test func firstKnocksCannotEvictAnAdvancedAttempt() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004], maxTracked: 2)], firstKnockCapacity: 1024)
        _ = engine.handle(Fixture.knock("192.0.2.1", 2002), at: .seconds(0), wallTime: wall)
        _ = engine.handle(Fixture.knock("192.0.2.1", 2001), at: .seconds(1), wallTime: wall)
        for index in 0..<100_000 as Range<UInt64> {
            _ = engine.handle(
                Knock(source: PeerAddress(high: 0x2001_0db8_0000_0000, low: index), transport: .tcp, port: Fixture.port(2002).port), at: .seconds(2),
                wallTime: wall)
        }
        #expect(engine.peerCounts(of: Fixture.name("SSH"))?.matching == 1)
        #expect(engine.firstKnockMemory.occupied == 1024)
        #expect(engine.handle(Fixture.knock("192.0.2.1", 2004), at: .seconds(3), wallTime: wall).kinds == [.allowed(until: nil)])
    }

    @Test func fullAllowedTableRefusesRatherThanEvicts() {
        var rule = Fixture.sequenceRule("SSH", [2002], autoclose: .seconds(60))
        rule.maxAllowedPeers = 1
        var engine = KnockEngine(rules: [rule])
        _ = engine.handle(Fixture.knock("192.0.2.1", 2002), at: .seconds(0), wallTime: wall)
        #expect(engine.handle(Fixture.knock("192.0.2.2", 2002), at: .seconds(1), wallTime: wall).kinds == [.refusedFull])
        // Once the first grant lapses there is room again.
        #expect(engine.handle(Fixture.knock("192.0.2.2", 2002), at: .seconds(61), wallTime: wall).kinds == [.autoclosed, .allowed(until: .seconds(121))])
    }
}

@Suite struct KnockEngineReloadTests {
    let wall = Fixture.wall(minute: 29_300_000)

    @Test func reloadKeepsAllowedPeersOfRulesThatRemain() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002]), Fixture.sequenceRule("WEB", [3000], protect: [443])])
        _ = engine.handle(Fixture.knock("192.0.2.1", 2002), at: .seconds(0), wallTime: wall)
        _ = engine.handle(Fixture.knock("192.0.2.2", 3000), at: .seconds(0), wallTime: wall)
        let reloaded = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2003, 2004])], carryingOverFrom: engine)
        #expect(reloaded.peers(of: Fixture.name("SSH"))?.map(\.peer) == [Fixture.address("192.0.2.1")])
        #expect(reloaded.peers(of: Fixture.name("WEB")) == nil)
    }

    @Test func administratorOpenAndCloseWithTheirOwnDuration() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002], autoclose: .seconds(60))])
        var effects: [KnockEffect] = []
        #expect(engine.allow(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.9"), for: .seconds(600), at: .seconds(0)) { effects.append($0) })
        _ = engine.handle(Fixture.knock("192.0.2.1", 2002), at: .seconds(1), wallTime: wall)
        #expect(effects.commands == [.allow(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.9"), ttl: .seconds(600))])
        #expect(engine.nextDeadline() == .seconds(61))
        #expect(engine.expire(at: .seconds(61), wallTime: wall).kinds == [.autoclosed], "the knocked grant lapses though it is fresher")
        #expect(engine.expire(at: .seconds(600), wallTime: wall).kinds == [.autoclosed])
        effects = []
        #expect(engine.revoke(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.1"), at: .seconds(700)) { effects.append($0) })
        #expect(effects == [.firewall(.revoke(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.1")))])
        #expect(!engine.allow(rule: Fixture.name("NOPE"), peer: Fixture.address("192.0.2.1"), for: nil, at: .zero) { _ in })
    }

    @Test func adoptedPeersAreListedAndExpire() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002], autoclose: .seconds(60))])
        engine.adoptAllowed(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.9"), until: .seconds(30))
        #expect(engine.peers(of: Fixture.name("SSH"))?.map(\.state) == [.allowed(until: .seconds(30))])
        #expect(engine.expire(at: .seconds(30), wallTime: wall).kinds == [.autoclosed])
    }
}
