import KnockCore
import Testing

/// A captured SPA packet replayed in the same minute, the next minute, and after a restart (the
/// engine's replay memory exported and restored) never opens twice.
@Suite struct ReplayStateTests {
    let minute: Int64 = 29_400_000
    let alice = Fixture.address("192.0.2.7")
    let bob = Fixture.address("2001:db8::9")
    let ftp = Fixture.name("FTP")

    func spaKnock(_ source: PeerAddress, minute: Int64, secret: String = "opensecret") -> Knock {
        let payload = SPAKey(format: .sha256, secret: Secret(secret)).payload(source: source, epochMinute: minute)
        return Knock(source: source, transport: .udp, port: Fixture.port(4000, .udp).port, payload: payload[...])
    }

    @Test func aReplayInTheSameAndTheNextMinuteIsBlocked() {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        let captured = spaKnock(alice, minute: minute)
        #expect(engine.handle(captured, at: .seconds(0), wallTime: Fixture.wall(minute: minute, second: 5)).commands.count == 1)
        #expect(engine.handle(captured, at: .seconds(50), wallTime: Fixture.wall(minute: minute, second: 55)).kinds == [.blocked])
        // The next minute: still inside clock_skew = 1, so it verifies, and is blocked.
        #expect(engine.handle(captured, at: .seconds(70), wallTime: Fixture.wall(minute: minute + 1, second: 15)).kinds == [.blocked])
        // Two minutes on it no longer verifies at all.
        #expect(engine.handle(captured, at: .seconds(130), wallTime: Fixture.wall(minute: minute + 2, second: 15)).kinds == [.badMAC])
    }

    @Test(arguments: [Int64(0), 1])
    func aReplayAfterARestartIsBlockedWhenTheStateIsRestored(minutesLater: Int64) {
        var before = KnockEngine(rules: [Fixture.spaRule()])
        let captured = spaKnock(alice, minute: minute)
        _ = before.handle(captured, at: .seconds(0), wallTime: Fixture.wall(minute: minute, second: 10))
        let saved = before.spaReplayState(at: Fixture.wall(minute: minute, second: 10))
        #expect(saved == [SPAReplayEntry(rule: ftp, peer: alice, epochMinute: minute)])

        let later = Fixture.wall(minute: minute + minutesLater, second: 40)
        var restarted = KnockEngine(rules: [Fixture.spaRule()])
        #expect(restarted.restoreSPAReplayState(saved, at: later) == 1)
        #expect(restarted.handle(captured, at: .seconds(0), wallTime: later).kinds == [.blocked])

        // Without the restored state the same packet would open again: what the store prevents.
        var forgetful = KnockEngine(rules: [Fixture.spaRule()])
        #expect(forgetful.handle(captured, at: .seconds(0), wallTime: later).commands.count == 1)
    }

    @Test func aFreshPacketAfterARestartStillOpens() {
        var restarted = KnockEngine(rules: [Fixture.spaRule()])
        restarted.restoreSPAReplayState([SPAReplayEntry(rule: ftp, peer: alice, epochMinute: minute)], at: Fixture.wall(minute: minute + 1))
        let fresh = restarted.handle(spaKnock(alice, minute: minute + 1), at: .seconds(0), wallTime: Fixture.wall(minute: minute + 1))
        #expect(fresh.commands == [.allow(rule: ftp, peer: alice, ttl: nil)])
        #expect(restarted.spaReplayState(at: Fixture.wall(minute: minute + 1)).map(\.epochMinute) == [minute + 1])
    }

    @Test func exportKeepsOnlyTheClockWindowAndSPARules() {
        var engine = KnockEngine(rules: [Fixture.sequenceRule("SSH", [4000], transport: .udp), Fixture.spaRule(skew: 1)])
        _ = engine.handle(spaKnock(alice, minute: minute), at: .seconds(0), wallTime: Fixture.wall(minute: minute))
        _ = engine.handle(spaKnock(bob, minute: minute + 1), at: .seconds(60), wallTime: Fixture.wall(minute: minute + 1))
        #expect(
            engine.spaReplayState(at: Fixture.wall(minute: minute + 1)) == [
                SPAReplayEntry(rule: ftp, peer: alice, epochMinute: minute),
                SPAReplayEntry(rule: ftp, peer: bob, epochMinute: minute + 1),
            ])
        // At minute + 2 alice's minute is outside the window (skew 1): it can no longer verify.
        #expect(engine.spaReplayState(at: Fixture.wall(minute: minute + 2)).map(\.peer) == [bob])
    }

    @Test func restoreDropsUnknownRulesStaleAndFarFutureEntries() {
        var engine = KnockEngine(rules: [Fixture.spaRule(skew: 1), Fixture.sequenceRule("SSH", [2002, 2001])])
        let now = Fixture.wall(minute: minute)
        let adopted = engine.restoreSPAReplayState(
            [
                SPAReplayEntry(rule: Fixture.name("GONE"), peer: alice, epochMinute: minute),
                SPAReplayEntry(rule: Fixture.name("SSH"), peer: alice, epochMinute: minute),
                SPAReplayEntry(rule: ftp, peer: alice, epochMinute: minute - 2),
                SPAReplayEntry(rule: ftp, peer: bob, epochMinute: minute + KnockEngine.spaReplayFutureToleranceMinutes + 1),
                SPAReplayEntry(rule: ftp, peer: Fixture.address("203.0.113.5"), epochMinute: minute - 1),
            ], at: now)
        #expect(adopted == 1)
        #expect(engine.spaReplayState(at: now) == [SPAReplayEntry(rule: ftp, peer: Fixture.address("203.0.113.5"), epochMinute: minute - 1)])
        // Alice's stale entry was dropped, so her packet for the current minute opens.
        #expect(engine.handle(spaKnock(alice, minute: minute), at: .seconds(0), wallTime: now).commands.count == 1)
    }

    @Test func aMinuteAheadOfAClockSteppedBackStaysBlocked() {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        // Saved at minute + 5, restored after the clock was stepped back to minute.
        engine.restoreSPAReplayState([SPAReplayEntry(rule: ftp, peer: alice, epochMinute: minute + 5)], at: Fixture.wall(minute: minute))
        let replay = engine.handle(spaKnock(alice, minute: minute + 5), at: .seconds(300), wallTime: Fixture.wall(minute: minute + 5))
        #expect(replay.kinds == [.blocked])
    }

    @Test func restoreKeepsTheLaterMinuteOfAPeer() {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        let now = Fixture.wall(minute: minute)
        _ = engine.handle(spaKnock(alice, minute: minute), at: .seconds(0), wallTime: now)
        #expect(engine.restoreSPAReplayState([SPAReplayEntry(rule: ftp, peer: alice, epochMinute: minute - 1)], at: now) == 0)
        #expect(engine.spaReplayState(at: now) == [SPAReplayEntry(rule: ftp, peer: alice, epochMinute: minute)])
    }

    // MARK: Close packets (issue 11 item 6)

    @Test func aReplayedCloseAfterTheClientReopenedClosesNothing() {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        let now = Fixture.wall(minute: minute, second: 5)
        #expect(engine.handle(spaKnock(alice, minute: minute), at: .seconds(0), wallTime: now).commands.count == 1)
        let capturedClose = spaKnock(alice, minute: minute, secret: "closesecret")
        #expect(
            engine.handle(capturedClose, at: .seconds(10), wallTime: Fixture.wall(minute: minute, second: 15)).commands
                == [.revoke(rule: ftp, peer: alice)])
        // The client reopens in the next minute; the close captured a minute ago still verifies
        // (clock_skew = 1) but is refused as a replay: access stays.
        let reopen = Fixture.wall(minute: minute + 1, second: 5)
        #expect(engine.handle(spaKnock(alice, minute: minute + 1), at: .seconds(65), wallTime: reopen).commands.count == 1)
        let replay = engine.handle(capturedClose, at: .seconds(70), wallTime: Fixture.wall(minute: minute + 1, second: 10))
        #expect(replay.kinds == [.blocked])
        #expect(replay.commands.isEmpty)
        #expect(engine.peerCounts(of: ftp)?.allowed == 1)
        // A fresh close of the new minute still works.
        #expect(
            engine.handle(spaKnock(alice, minute: minute + 1, secret: "closesecret"), at: .seconds(75), wallTime: reopen).commands
                == [.revoke(rule: ftp, peer: alice)])
    }

    @Test func aCloseReplayedInTheSameMinuteClosesOnce() {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        let now = Fixture.wall(minute: minute, second: 5)
        _ = engine.handle(spaKnock(alice, minute: minute), at: .seconds(0), wallTime: now)
        let close = spaKnock(alice, minute: minute, secret: "closesecret")
        #expect(engine.handle(close, at: .seconds(1), wallTime: now).commands == [.revoke(rule: ftp, peer: alice)])
        // An administrator re-allows alice in the same minute; the replayed close must not undo that.
        engine.allow(rule: ftp, peer: alice, for: nil, at: .seconds(2)) { _ in }
        #expect(engine.handle(close, at: .seconds(3), wallTime: now).kinds == [.blocked])
        #expect(engine.peerCounts(of: ftp)?.allowed == 1)
    }

    @Test func closesAreExportedRestoredAndKeptAcrossAReload() {
        var engine = KnockEngine(rules: [Fixture.spaRule()])
        let now = Fixture.wall(minute: minute, second: 5)
        _ = engine.handle(spaKnock(alice, minute: minute), at: .seconds(0), wallTime: now)
        _ = engine.handle(spaKnock(alice, minute: minute, secret: "closesecret"), at: .seconds(1), wallTime: now)
        let saved = engine.spaReplayState(at: now)
        #expect(
            saved == [
                SPAReplayEntry(rule: ftp, peer: alice, epochMinute: minute),
                SPAReplayEntry(rule: ftp, peer: alice, epochMinute: minute, kind: .close),
            ])
        let later = Fixture.wall(minute: minute + 1, second: 5)
        let close = spaKnock(alice, minute: minute, secret: "closesecret")
        // Restored after a restart, and carried over by a reload: either way the close is remembered.
        var restarted = KnockEngine(rules: [Fixture.spaRule()])
        #expect(restarted.restoreSPAReplayState(saved, at: later) == 2)
        var reloaded = KnockEngine(rules: [Fixture.spaRule()], carryingOverFrom: engine)
        for var next in [restarted, reloaded] {
            next.allow(rule: ftp, peer: alice, for: nil, at: .seconds(60)) { _ in }
            #expect(next.handle(close, at: .seconds(61), wallTime: later).kinds == [.blocked])
        }
        // Without the memory the same packet closes again: what the memory prevents.
        var forgetful = KnockEngine(rules: [Fixture.spaRule()])
        forgetful.allow(rule: ftp, peer: alice, for: nil, at: .seconds(60)) { _ in }
        #expect(forgetful.handle(close, at: .seconds(61), wallTime: later).commands == [.revoke(rule: ftp, peer: alice)])
        // Two minutes on, the close memory has left the window and is no longer exported.
        _ = reloaded.expire(at: .seconds(130), wallTime: Fixture.wall(minute: minute + 2))
        #expect(reloaded.spaReplayState(at: Fixture.wall(minute: minute + 2)).isEmpty)
        // A rule without a close secret adopts no close entries.
        var openOnly = KnockEngine(rules: [Fixture.spaRule(close: nil)])
        #expect(openOnly.restoreSPAReplayState([saved[1]], at: later) == 0)
    }
}
