import KnockCore
import Testing

/// The original's checkentry refusals and ours, each with the field it names.
@Suite struct RuleValidationTests {
    func errors(_ rules: [Rule]) -> [String] {
        rules.problems().filter { $0.severity == .error }.map { "\($0.field): \($0.message)" }
    }

    func warnings(_ rules: [Rule]) -> [String] {
        rules.problems().filter { $0.severity == .warning }.map { "\($0.field): \($0.message)" }
    }

    @Test func aGoodRuleHasNoProblems() {
        #expect(errors([Fixture.sequenceRule("SSH", [2002, 2001, 2004], strict: true, autoclose: .seconds(3600))]).isEmpty)
        #expect(errors([Fixture.spaRule()]).isEmpty)
        #expect(warnings([Fixture.spaRule()]).isEmpty)
    }

    @Test(arguments: ["", String(repeating: "a", count: 32), "SSH RULE", "ssh/1", "ü"])
    func badNames(text: String) {
        #expect(RuleName(rawValue: text) == nil)
        #expect(RuleName.problem(with: text) != nil)
    }

    @Test(arguments: ["SSH", "a", "ssh_2-b", String(repeating: "a", count: 31)])
    func goodNames(text: String) {
        #expect(RuleName(rawValue: text) != nil)
    }

    @Test func portZeroAndOutOfRangeAreNotPorts() {
        #expect(Port(rawValue: 0) == nil)
        #expect(Port("0") == nil)
        #expect(Port("65536") == nil)
        #expect(Port("-1") == nil)
        #expect(Port("22x") == nil)
        #expect(Port("65535")?.rawValue == 65535)
    }

    @Test func knockPortCount() {
        #expect(errors([Fixture.sequenceRule("SSH", [])]) == ["knock: a rule needs at least one knock port"])
        #expect(errors([Fixture.sequenceRule("SSH", Array(2001...2015))]).isEmpty)
        #expect(errors([Fixture.sequenceRule("SSH", Array(2001...2016))]) == ["knock: at most 15 knock ports are allowed, found 16"])
    }

    @Test func repeatedKnockInARowIsRefused() {
        #expect(errors([Fixture.sequenceRule("SSH", [2001, 2001, 2002])]).count == 1)
        #expect(errors([Fixture.sequenceRule("SSH", [2001, 2002, 2001])]).isEmpty)
    }

    @Test func spaNeedsExactlyOneUDPPort() {
        var rule = Fixture.spaRule()
        rule.knockSequence = [Fixture.port(4000, .udp), Fixture.port(4001, .udp)]
        #expect(errors([rule]) == ["knock: an SPA rule (open_secret) needs exactly one knock port, found 2"])
        rule.knockSequence = [Fixture.port(4000, .tcp)]
        #expect(errors([rule]) == ["knock: SPA knocks are UDP only"])
    }

    @Test func secretsGoTogetherAndDiffer() {
        #expect(errors([Fixture.spaRule(close: nil)]) == ["close_secret: open_secret and close_secret go together"])
        #expect(errors([Fixture.spaRule(format: .md5, close: nil)]).isEmpty, "the original --secure had no close secret")
        #expect(errors([Fixture.spaRule(open: "samesecret", close: "samesecret")]) == ["close_secret: the open and close secrets must differ"])
    }

    @Test func emptySecretIsAnErrorAndAShortOneAWarning() {
        #expect(errors([Fixture.spaRule(open: "")]) == ["open_secret: the secret is empty"])
        #expect(errors([Fixture.spaRule(open: "short")]).isEmpty)
        #expect(warnings([Fixture.spaRule(open: "short")]) == ["open_secret: the secret is shorter than 8 bytes and easy to guess"])
        #expect(warnings([Fixture.spaRule(close: "tiny")]).count == 1)
    }

    @Test func secretsNeverAppearInProblemsOrDescriptions() {
        let rule = Fixture.spaRule(open: "hunter2", close: "hunter2")
        let text = rule.problems().map(\.description).joined() + "\(rule)" + String(reflecting: rule)
        #expect(!text.contains("hunter2"))
    }

    @Test func protectedPortThatIsAlsoAKnockPort() {
        #expect(errors([Fixture.sequenceRule("SSH", [2002, 22])]) == ["protect: port 22:tcp is both a knock port and a protected port"])
        // Another protocol is another port.
        #expect(errors([Fixture.sequenceRule("SSH", [2002, 22], transport: .udp)]).isEmpty)
        #expect(
            errors([Fixture.sequenceRule("SSH", [2002]), Fixture.sequenceRule("WEB", [22], protect: [443])])
                == ["protect: port 22:tcp is a knock port of rule WEB"])
    }

    @Test func duplicateNames() {
        #expect(errors([Fixture.sequenceRule("SSH", [2002]), Fixture.sequenceRule("SSH", [3002])]) == ["name: duplicate rule name"])
    }

    @Test func durationsAndCaps() {
        #expect(errors([Fixture.sequenceRule("SSH", [2002], time: .zero)]) == ["time: the time between knocks must be positive"])
        #expect(errors([Fixture.sequenceRule("SSH", [2002], autoclose: .zero)]).count == 1)
        #expect(errors([Fixture.sequenceRule("SSH", [2002], maxTracked: 0)]) == ["max_tracked_peers: must be at least 1"])
        #expect(errors([Fixture.spaRule(skew: 61)]) == ["clock_skew: clock_skew must be 0 to 60 minutes"])
    }

    @Test func aRuleProtectingNothingIsAWarning() {
        #expect(warnings([Fixture.sequenceRule("SSH", [2002], protect: [])]).count == 1)
    }
}

@Suite struct PeerTableTests {
    @Test func engineStatusListsMatchingThenAllowed() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [2002, 2001, 2004], time: .seconds(10))])
        let wall = Fixture.wall(minute: 1)
        _ = engine.handle(Fixture.knock("192.0.2.1", 2002), at: .seconds(0), wallTime: wall)
        _ = engine.handle(Fixture.knock("192.0.2.2", 2002), at: .seconds(1), wallTime: wall)
        _ = engine.handle(Fixture.knock("192.0.2.2", 2001), at: .seconds(2), wallTime: wall)
        // 192.0.2.1 made only the first knock: it is a fingerprint in the first-knock table, not listed.
        let peers = engine.peers(of: Fixture.name("SSH")) ?? []
        #expect(peers.map(\.peer) == [Fixture.address("192.0.2.2")])
        #expect(peers.map(\.state) == [.matching(knocksDone: 2, next: Fixture.port(2004), expires: .seconds(12))])
        #expect(engine.remembersFirstKnock(rule: Fixture.name("SSH"), peer: Fixture.address("192.0.2.1"), at: .seconds(2)))
        #expect(engine.peers(of: Fixture.name("NOPE")) == nil)
    }
}

@Suite struct SweepOrderWarningTests {
    func warnings(_ ports: [UInt16]) -> [String] {
        Fixture.sequenceRule("S", ports).problems().filter { $0.severity == .warning }.map(\.message)
    }

    @Test func ascendingAndDescendingSequencesAreWarnedAbout() {
        #expect(warnings([3001, 3002, 3004]).contains { $0.contains("ascending order") })
        #expect(warnings([3004, 3002, 3001]).contains { $0.contains("descending order") })
        #expect(warnings([3002, 3001, 3004]).isEmpty)
        #expect(warnings([3002]).isEmpty, "one port has no order")
    }
}
