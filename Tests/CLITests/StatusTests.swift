import ArgumentParser
import KnockControl
import KnockCore
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
        #expect(try Open.parseDuration("90").get() == .seconds(90))
        #expect(try Open.parseDuration("2h").get() == .seconds(7200))
        #expect(try Open.parseDuration("1d").get() == .seconds(86_400))
        #expect(try Open.parseDuration("366d").get() == .seconds(366 * 86_400))
        for bad in ["", "0", "0s", "-5", "+5", "5x", "367d", "m", " 5", "1.5h"] {
            #expect((try? Open.parseDuration(bad).get()) == nil, "\(bad)")
        }
        #expect(throws: (any Error).self) { try Pknock.parseAsRoot(["open", "SSH", "192.0.2.7", "--for", "soon"]) }
        #expect(throws: (any Error).self) { try Pknock.parseAsRoot(["open", "SSH", "not-an-address"]) }
    }

    @Test(arguments: [
        ("soon", "--for: invalid duration \"soon\": use a whole number, optionally with s, m, h or d, such as \"90s\" or \"2h\""),
        ("+5", "--for: invalid duration \"+5\": use a whole number, optionally with s, m, h or d, such as \"90s\" or \"2h\""),
        ("0", "--for: the duration 0 is not between 1 second and 366 days"),
        ("367d", "--for: the duration 367d is not between 1 second and 366 days"),
        ("99999d", "--for: the duration 99999d is longer than ten years"),
    ])
    func openDurationErrorsSayWhatIsWrong(duration: String, message: String) {
        #expect {
            try Pknock.parseAsRoot(["open", "SSH", "192.0.2.7", "--for", duration])
        } throws: { error in
            Pknock.exitCode(for: error) == .validationFailure && Pknock.message(for: error) == message
        }
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

/// pknockd's `--table` goes through the same table-name rule as `daemon.table`.
@Suite struct DaemonTableOptionTests {
    @Test(arguments: [
        ("my-table", "--table: the table name may only contain letters, digits and '_'"),
        ("1table", "--table: the table name must start with a letter or '_'"),
    ])
    func aBadTableNameIsAUsageError(name: String, message: String) throws {
        let run = try CheckCommandTests.runBinary("pknockd", ["--table", name, "--teardown"])
        #expect(run.status == 64)
        #expect(run.stderr.contains(message))
    }
}
