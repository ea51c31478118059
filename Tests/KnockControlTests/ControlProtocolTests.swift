import KnockControl
import KnockCore
import Testing

/// The control protocol's types against the wire format of Docs/control-protocol.md.
@Suite struct ControlProtocolTests {
    static let peer = PeerStatusReport(peer: "192.0.2.7", transport: .udp, status: .allowed, knocks: 2, autocloseIn: 30)

    @Test(arguments: [
        (ControlReply.status([]), #"{"ok":true,"rules":[]}"#),
        (
            .status([RuleStatusReport(rule: "SSH", sequence: ["2002:tcp"], peers: [peer])]),
            #"{"ok":true,"rules":[{"peers":[{"autoclose_in":30,"knocks":2,"peer":"192.0.2.7","protocol":"udp","status":"allowed"}],"rule":"SSH","sequence":["2002:tcp"]}]}"#
        ),
        (.done("allowed 192.0.2.7 under SSH"), #"{"ok":true,"result":"allowed 192.0.2.7 under SSH"}"#),
        (.following, #"{"following":true,"ok":true}"#),
        (.failure("no rule named NOPE"), #"{"error":"no rule named NOPE","ok":false}"#),
    ])
    func repliesHaveTheDocumentedWireForm(reply: ControlReply, line: String) throws {
        #expect(reply.line == line)
        #expect(try ControlReply(parsing: Array(line.utf8)) == reply)
        #expect(try ControlReply(parsing: Array((line + "\r").utf8)) == reply, "a trailing CR is ignored")
    }

    @Test(arguments: [
        (#"{"ok":false}"#, ControlReply.failure("pknockd refused the request")),
        (#"{"ok":true,"result":"x","version":2}"#, .done("x")),
        (#"{"ok":false,"error":"busy","rules":[]}"#, .failure("busy")),
    ])
    func repliesFromOtherDaemonsStillParse(line: String, reply: ControlReply) throws {
        #expect(try ControlReply(parsing: Array(line.utf8)) == reply)
    }

    @Test(arguments: [#"{"ok":true}"#, #"{"ok":true,"following":false}"#, "[]", "ok", #"{"result":"x"}"#])
    func repliesThatSayNothingAreUnreadable(line: String) {
        #expect(throws: ControlProtocolError("unreadable reply from pknockd")) { try ControlReply(parsing: Array(line.utf8)) }
    }

    @Test func everyCommandNameRoundTrips() throws {
        let rule = try #require(RuleName(rawValue: "SSH"))
        let peer = try #require(PeerAddress("2001:db8::1"))
        let requests: [ControlRequest] = [
            .status(rule: nil), .events, .open(rule: rule, peer: peer, duration: nil), .close(rule: rule, peer: peer),
        ]
        #expect(requests.map(\.command) == ControlCommand.allCases)
        for request in requests {
            #expect(request.line.hasPrefix(#"{"command":"\#(request.command.rawValue)""#))
            #expect(try ControlRequest(parsing: Array(request.line.utf8)) == request)
        }
    }

    @Test func eventKindsHaveTheDocumentedNames() {
        #expect(
            EventKind.allCases.map(\.rawValue) == [
                "matching", "allowed", "didnt_match", "time_exceeded", "blocked", "bad_mac", "closed", "autoclosed", "evicted",
                "refused_full", "dropped",
            ])
        #expect(EventKind(KnockEvent.Kind.didNotMatch(expected: ServicePort(Port(rawValue: 1)!, .tcp), reset: true)) == .didNotMatch)
        #expect(EventKind(KnockEvent.Kind.refusedFull) == .refusedFull)
    }

    @Test func anEventOfANewerKindIsKeptByName() throws {
        let report = try EventReport(parsing: Array(#"{"event":"rebooted","rule":"SSH","peer":"192.0.2.7"}"#.utf8))
        #expect(report.event == .other("rebooted"))
        #expect(report.text == "- SSH src=192.0.2.7 event=REBOOTED")
        #expect(report.line == #"{"event":"rebooted","peer":"192.0.2.7","rule":"SSH"}"#)
        for kind in EventKind.allCases { #expect(EventKind(rawValue: kind.rawValue) == kind) }
    }

    @Test func anEventThatIsNotOneIsRefused() {
        #expect(throws: ControlProtocolError.self) { try EventReport(parsing: Array(#"{"event":"closed","protocol":"sctp"}"#.utf8)) }
        #expect(throws: ControlProtocolError.self) { try EventReport(parsing: Array(#"{"rule":"SSH"}"#.utf8)) }
        #expect(throws: ControlProtocolError.self) { try EventReport(parsing: Array(#"{"event":7}"#.utf8)) }
    }

    @Test func theDroppedNoticeHasOnlyItsCount() throws {
        let notice = EventReport(droppedCount: 7)
        #expect(notice.line == #"{"count":7,"event":"dropped"}"#)
        #expect(notice.text == "-- 7 events dropped: this reader fell behind")
        #expect(try EventReport(parsing: Array(notice.line.utf8)) == notice)
    }

    @Test(arguments: [("  \t", true), ("\r", true), (" \r", true), ("", true), ("{}", false), ("\r ", false)])
    func blankLinesAreRecognised(line: String, blank: Bool) {
        #expect(ControlFraming.isBlank(Array(line.utf8)) == blank)
    }
}
