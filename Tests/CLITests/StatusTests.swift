import ArgumentParser
import KnockCore
import KnockDaemon
import Testing

@testable import pknock

/// Parsing of `pknock status|events|open|close`; their output formats are tested in KnockDaemonTests.
@Suite struct StatusTests {
    @Test func statusTakesAnOptionalRuleJSONAndASocket() throws {
        let status = try #require(try Pknock.parseAsRoot(["status", "SSH", "--json", "--control-socket", "/tmp/x.sock"]) as? Status)
        #expect(status.rule == "SSH" && status.json && status.socket.path == "/tmp/x.sock")
        #expect(throws: (any Error).self) { try Pknock.parseAsRoot(["status", "bad name!"]) }
    }

    @Test func openParsesDurations() throws {
        let open = try #require(try Pknock.parseAsRoot(["open", "SSH", "192.0.2.7", "--for", "10m"]) as? Open)
        #expect(try open.parsedRequest() == .open(rule: RuleName(rawValue: "SSH")!, peer: PeerAddress("192.0.2.7")!, duration: .seconds(600)))
        #expect(Open.parseDuration("90") == .seconds(90))
        #expect(Open.parseDuration("2h") == .seconds(7200))
        #expect(Open.parseDuration("1d") == .seconds(86_400))
        for bad in ["", "0", "-5", "5x", "367d", "m"] { #expect(Open.parseDuration(bad) == nil, "\(bad)") }
        #expect(throws: (any Error).self) { try Pknock.parseAsRoot(["open", "SSH", "192.0.2.7", "--for", "soon"]) }
        #expect(throws: (any Error).self) { try Pknock.parseAsRoot(["open", "SSH", "not-an-address"]) }
    }

    @Test func closeNeedsARuleAndAnAddress() throws {
        let close = try #require(try Pknock.parseAsRoot(["close", "SSH", "2001:db8::1"]) as? Close)
        #expect(try close.parsedRequest() == .close(rule: RuleName(rawValue: "SSH")!, peer: PeerAddress("2001:db8::1")!))
        #expect(throws: (any Error).self) { try Pknock.parseAsRoot(["close", "SSH"]) }
    }
}

/// `pknock events` parsing.
@Suite struct EventsCommandTests {
    @Test func eventsTakesJSONAndACount() throws {
        let events = try #require(try Pknock.parseAsRoot(["events", "--json", "--count", "3"]) as? Events)
        #expect(events.json && events.count == 3)
        #expect(throws: (any Error).self) { try Pknock.parseAsRoot(["events", "--count", "0"]) }
    }

    @Test func withoutADaemonTheCommandsFailClearly() throws {
        let run = try CheckCommandTests.run(["status", "--control-socket", "/nonexistent/pknock.sock"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("pknockd is not running"))
    }
}
