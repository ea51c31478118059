import KnockCore

// FoundationEssentials where there is one (JSON coding needs no ICU), else Foundation (Darwin).
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// The control socket's messages (Docs/control-protocol.md) as Swift types: requests and their
// command names, typed replies, status reports and events. Everything here is pure: parsing,
// encoding, and the text renderings `pknock` prints. The framing is ``ControlFraming``.

/// A command name on the wire: the `command` field of a request.
public enum ControlCommand: String, Codable, CaseIterable, Sendable {
    /// The tracked peers of one rule or of all.
    case status
    /// Follow the event stream.
    case events
    /// Allow a peer without knocking.
    case open
    /// Revoke a peer's access.
    case close
}

/// A request a client sends on the control socket.
public enum ControlRequest: Equatable, Sendable {
    /// The tracked peers of one rule, or of every rule when nil.
    case status(rule: RuleName?)
    /// Follow the event stream until the client hangs up.
    case events
    /// Allow `peer` under `rule` for `duration` (nil: the rule's autoclose).
    case open(rule: RuleName, peer: PeerAddress, duration: Duration?)
    /// Revoke `peer`'s access under `rule`.
    case close(rule: RuleName, peer: PeerAddress)

    /// The longest `open` a request may ask for, in seconds (366 days).
    public static let maximumOpenSeconds: Int64 = 366 * 86_400

    private struct Wire: Codable {
        // A string, not a ControlCommand: an unknown command gets its own error message.
        var command: String
        var rule: String?
        var peer: String?
        var seconds: Int64?
    }

    /// The request's command name.
    public var command: ControlCommand {
        switch self {
        case .status: .status
        case .events: .events
        case .open: .open
        case .close: .close
        }
    }

    /// Parses one request line (without its newline); the error text is what the reply carries.
    public init(parsing line: some Collection<UInt8>) throws(ControlProtocolError) {
        guard line.count <= ControlFraming.maximumRequestLength else { throw ControlProtocolError("request line too long") }
        guard let wire = ControlFraming.decode(Wire.self, from: line) else {
            throw ControlProtocolError("not a JSON request object with a \"command\" string")
        }
        guard let command = ControlCommand(rawValue: wire.command) else {
            let known = ControlCommand.allCases.map(\.rawValue).joined(separator: ", ")
            throw ControlProtocolError("unknown command; known: \(known)")
        }
        func rule() throws(ControlProtocolError) -> RuleName {
            guard let text = wire.rule else { throw ControlProtocolError("\"\(command.rawValue)\" needs \"rule\"") }
            guard let name = RuleName(rawValue: text) else { throw ControlProtocolError("invalid rule name") }
            return name
        }
        func peer() throws(ControlProtocolError) -> PeerAddress {
            guard let text = wire.peer else { throw ControlProtocolError("\"\(command.rawValue)\" needs \"peer\"") }
            guard let address = PeerAddress(text) else { throw ControlProtocolError("invalid peer address") }
            return address
        }
        switch command {
        case .status:
            self = .status(rule: wire.rule == nil ? nil : try rule())
        case .events:
            self = .events
        case .open:
            var duration: Duration?
            if let seconds = wire.seconds {
                guard seconds > 0, seconds <= Self.maximumOpenSeconds else {
                    throw ControlProtocolError("\"seconds\" must be 1 to \(Self.maximumOpenSeconds)")
                }
                duration = .seconds(seconds)
            }
            self = .open(rule: try rule(), peer: try peer(), duration: duration)
        case .close:
            self = .close(rule: try rule(), peer: try peer())
        }
    }

    /// The request as one JSON line, without the newline.
    public var line: String {
        let name = command.rawValue
        let wire: Wire
        switch self {
        case .status(let rule): wire = Wire(command: name, rule: rule?.rawValue)
        case .events: wire = Wire(command: name)
        case .open(let rule, let peer, let duration):
            wire = Wire(command: name, rule: rule.rawValue, peer: "\(peer)", seconds: duration?.wholeSeconds)
        case .close(let rule, let peer): wire = Wire(command: name, rule: rule.rawValue, peer: "\(peer)")
        }
        return ControlFraming.encode(wire)
    }
}

/// Why a control request or reply was refused; the text goes into the error reply.
public struct ControlProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// Makes an error.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// A reply on the control socket, one per request.
///
/// On the wire: `{"ok":true,"rules":[…]}`, `{"ok":true,"result":"…"}`, `{"following":true,"ok":true}`
/// or `{"error":"…","ok":false}`.
public enum ControlReply: Equatable, Sendable {
    /// `status`: the rules asked about, and the fleet's state when the gateway is in one.
    case status([RuleStatusReport], fleet: FleetStatusReport? = nil)
    /// `open`/`close`: what was done, in words.
    case done(String)
    /// `events`: events follow on this connection.
    case following
    /// The request failed, and why.
    case failure(String)

    private struct Wire: Codable {
        var ok: Bool
        var error: String?
        var rules: [RuleStatusReport]?
        var fleet: FleetStatusReport?
        var result: String?
        var following: Bool?
    }

    /// The reply as one JSON line, without the newline.
    public var line: String {
        switch self {
        case .status(let rules, let fleet): ControlFraming.encode(Wire(ok: true, rules: rules, fleet: fleet))
        case .done(let result): ControlFraming.encode(Wire(ok: true, result: result))
        case .following: ControlFraming.encode(Wire(ok: true, following: true))
        case .failure(let message): ControlFraming.encode(Wire(ok: false, error: message))
        }
    }

    /// Parses a reply line; fields a newer daemon may add are ignored.
    public init(parsing line: some Collection<UInt8>) throws(ControlProtocolError) {
        guard let wire = ControlFraming.decode(Wire.self, from: line) else {
            throw ControlProtocolError("unreadable reply from pknockd")
        }
        if !wire.ok {
            self = .failure(wire.error ?? "pknockd refused the request")
        } else if let rules = wire.rules {
            self = .status(rules, fleet: wire.fleet)
        } else if let result = wire.result {
            self = .done(result)
        } else if wire.following == true {
            self = .following
        } else {
            throw ControlProtocolError("unreadable reply from pknockd")
        }
    }
}

/// The fleet's state in a status reply (`"fleet"`), for gateways with `[fleet]`.
public struct FleetStatusReport: Codable, Equatable, Sendable {
    /// This gateway's node name.
    public var node: String
    /// Whether etcd answers.
    public var connected: Bool
    /// The last etcd revision seen.
    public var revision: Int64
    /// This node's last commit to its arrival through the watch, in milliseconds.
    public var watchLagMs: Int64?
    /// Seconds since etcd stopped answering (not connected only).
    public var unreachableForSeconds: Int64?
    /// Why it is unreachable (not connected only).
    public var reason: String?

    /// Makes a report.
    public init(
        node: String, connected: Bool, revision: Int64, watchLagMs: Int64? = nil, unreachableForSeconds: Int64? = nil, reason: String? = nil
    ) {
        self.node = node
        self.connected = connected
        self.revision = revision
        self.watchLagMs = watchLagMs
        self.unreachableForSeconds = unreachableForSeconds
        self.reason = reason
    }

    /// The `fleet:` line of `pknock status`: "fleet: node gw-a, connected, revision 1234, watch lag 3 ms"
    /// or "fleet: node gw-a, unreachable since 12 s (REASON)".
    public var text: String {
        if connected {
            return "fleet: node \(node), connected, revision \(revision), watch lag \(watchLagMs.map { "\($0) ms" } ?? "-")"
        }
        return "fleet: node \(node), unreachable since \(unreachableForSeconds ?? 0) s (\(reason ?? "not connected yet"))"
    }
}

/// One tracked peer in a status reply.
public struct PeerStatusReport: Codable, Equatable, Sendable {
    /// Where a peer stands: `matching` (mid-sequence) or `allowed`.
    public enum State: String, Codable, Sendable, CaseIterable {
        /// Mid-sequence.
        case matching
        /// Allowed through the rule's ports.
        case allowed
    }

    /// The peer's address.
    public var peer: String
    /// The protocol of its last knock.
    public var transport: TransportProtocol
    /// Matching or allowed.
    public var status: State
    /// Correct knocks so far (the sequence's length once allowed).
    public var knocks: Int
    /// The next knock expected (matching only), such as "2001:tcp".
    public var nextPort: String?
    /// The index in the sequence of the next knock expected (matching only).
    public var nextPortIndex: Int?
    /// Seconds left before the attempt lapses (matching with a time limit only).
    public var expiresIn: Int64?
    /// Seconds left before access ends (allowed with autoclose only).
    public var autocloseIn: Int64?

    enum CodingKeys: String, CodingKey {
        case peer, transport = "protocol", status, knocks, nextPort, nextPortIndex, expiresIn, autocloseIn
    }

    /// Makes a report.
    public init(
        peer: String, transport: TransportProtocol, status: State, knocks: Int, nextPort: String? = nil, nextPortIndex: Int? = nil,
        expiresIn: Int64? = nil, autocloseIn: Int64? = nil
    ) {
        self.peer = peer
        self.transport = transport
        self.status = status
        self.knocks = knocks
        self.nextPort = nextPort
        self.nextPortIndex = nextPortIndex
        self.expiresIn = expiresIn
        self.autocloseIn = autocloseIn
    }

    /// Reports `status` as of `now`; remaining times are rounded up to whole seconds.
    public init(_ status: PeerStatus, sequenceLength: Int, now: Instant) {
        func secondsLeft(_ instant: Instant) -> Int64 {
            let nanoseconds = max(0, (instant - now).nanosecondsClamped)
            return (nanoseconds + 999_999_999) / 1_000_000_000
        }
        switch status.state {
        case .matching(let done, let next, let expires):
            self.init(
                peer: "\(status.peer)", transport: status.transport, status: .matching, knocks: done,
                nextPort: "\(next)", nextPortIndex: done, expiresIn: expires.map(secondsLeft))
        case .allowed(let until):
            self.init(
                peer: "\(status.peer)", transport: status.transport, status: .allowed, knocks: sequenceLength,
                autocloseIn: until.map(secondsLeft))
        }
    }

    /// The original's `/proc/net/xt_pknock/NAME` line.
    ///
    /// `src=… proto=TCP status=MATCHING
    /// accepted_knock_count=1 expir_time=9 next_port_id=1 next_port=2001:tcp`, or for an allowed peer
    /// `… status=ALLOWED accepted_knock_count=3 autoclose_time=57`. Times are seconds left; a field is
    /// left out when the rule has no such limit.
    public var procLine: String {
        var line =
            "src=\(peer) proto=\(transport.description.uppercased()) status=\(status.rawValue.uppercased()) accepted_knock_count=\(knocks)"
        if let expiresIn { line += " expir_time=\(expiresIn)" }
        if let nextPortIndex { line += " next_port_id=\(nextPortIndex)" }
        if let nextPort { line += " next_port=\(nextPort)" }
        if let autocloseIn { line += " autoclose_time=\(autocloseIn)" }
        return line
    }
}

/// One rule in a status reply.
public struct RuleStatusReport: Codable, Equatable, Sendable {
    /// The rule's name.
    public var rule: String
    /// Its knock sequence, such as ["2002:tcp", "2001:tcp"].
    public var sequence: [String]
    /// The peers it tracks: attempts then grants, stalest first.
    public var peers: [PeerStatusReport]

    /// Makes a report.
    public init(rule: String, sequence: [String], peers: [PeerStatusReport]) {
        self.rule = rule
        self.sequence = sequence
        self.peers = peers
    }

    /// Reports rule `rule` of `engine` as of `now`; nil when the engine has no such rule.
    public init?(_ rule: Rule, engine: KnockEngine, now: Instant) {
        guard let peers = engine.peers(of: rule.name) else { return nil }
        self.init(
            rule: rule.name.rawValue, sequence: rule.knockSequence.map(\.description),
            peers: peers.map { PeerStatusReport($0, sequenceLength: rule.knockSequence.count, now: now) })
    }

    /// The text `pknock status` prints: a `rule NAME` header, then one ``PeerStatusReport/procLine`` per peer.
    public static func text(_ reports: [RuleStatusReport]) -> String {
        var out = ""
        for report in reports {
            out += "rule \(report.rule) (\(report.peers.count) peer\(report.peers.count == 1 ? "" : "s"))\n"
            for peer in report.peers { out += peer.procLine + "\n" }
        }
        return out
    }
}

/// The kind of an event on the stream: the `event` field, such as `allowed` or `didnt_match`.
///
/// Kinds may be added (Docs/control-protocol.md): one this client does not know arrives as
/// ``other(_:)`` with its wire name, so `pknock events` still shows it.
public enum EventKind: Hashable, Sendable, CaseIterable, Codable {
    /// A correct knock, not the last.
    case matching
    /// Sequence completed, SPA open, or `pknock open`.
    case allowed
    /// A knock on the wrong port.
    case didNotMatch
    /// Too long between knocks.
    case timeExceeded
    /// A second SPA open in the same minute (replay).
    case blocked
    /// An SPA packet no secret verifies.
    case badMAC
    /// A close knock or `pknock close`.
    case closed
    /// Access ran out.
    case autoclosed
    /// An attempt dropped under `max_tracked_peers`.
    case evicted
    /// A grant refused under `max_allowed_peers`.
    case refusedFull
    /// This reader fell behind and missed events (not an engine event).
    case dropped
    /// A kind from a newer pknockd, by its wire name.
    case other(String)

    /// The kinds this version knows, in the order of Docs/control-protocol.md.
    public static let allCases: [EventKind] = [
        .matching, .allowed, .didNotMatch, .timeExceeded, .blocked, .badMAC, .closed, .autoclosed, .evicted, .refusedFull,
        .dropped,
    ]

    /// The wire name, such as `didnt_match`.
    public var rawValue: String {
        switch self {
        case .matching: "matching"
        case .allowed: "allowed"
        case .didNotMatch: "didnt_match"
        case .timeExceeded: "time_exceeded"
        case .blocked: "blocked"
        case .badMAC: "bad_mac"
        case .closed: "closed"
        case .autoclosed: "autoclosed"
        case .evicted: "evicted"
        case .refusedFull: "refused_full"
        case .dropped: "dropped"
        case .other(let name): name
        }
    }

    /// The kind named `rawValue`; ``other(_:)`` for a name this version does not know.
    public init(rawValue: String) {
        self = Self.allCases.first { $0.rawValue == rawValue } ?? .other(rawValue)
    }

    /// The wire kind of an engine event.
    public init(_ kind: KnockEvent.Kind) {
        switch kind {
        case .matching: self = .matching
        case .allowed: self = .allowed
        case .didNotMatch: self = .didNotMatch
        case .timeExceeded: self = .timeExceeded
        case .blocked: self = .blocked
        case .badMAC: self = .badMAC
        case .closed: self = .closed
        case .autoclosed: self = .autoclosed
        case .evicted: self = .evicted
        case .refusedFull: self = .refusedFull
        }
    }

    /// Reads the wire name.
    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    /// Writes the wire name.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// One event on the stream, as a JSON line: `{"event":"allowed","rule":"SSH","peer":"192.0.2.7",
/// "protocol":"tcp","port":2004,"time":"2025-09-16T05:20:00Z","autoclose_in":60}`; a laggard also
/// gets `{"event":"dropped","count":N}` for the events it missed.
///
/// Which of the optional fields are present depends on ``event`` (see Docs/control-protocol.md).
public struct EventReport: Codable, Equatable, Sendable {
    /// What happened.
    public var event: EventKind
    /// The rule.
    public var rule: String?
    /// The peer.
    public var peer: String?
    /// The protocol of the knock that caused it.
    public var transport: TransportProtocol?
    /// The port knocked (absent for timer-driven and administrator events).
    public var port: Int?
    /// Wall-clock time, ISO 8601 UTC.
    public var time: String?
    /// matching: knocks done.
    public var step: Int?
    /// matching: the sequence's length.
    public var of: Int?
    /// didnt_match: the knock expected.
    public var expected: String?
    /// didnt_match: whether the peer must start over.
    public var reset: Bool?
    /// allowed: seconds of access (absent: no autoclose).
    public var autocloseIn: Int64?
    /// dropped: how many events this reader missed because it fell behind.
    public var count: Int?
    /// The SPA v2 client the packet named (allowed, blocked, bad_mac of v2 rules).
    public var client: String?

    enum CodingKeys: String, CodingKey {
        case event, rule, peer, transport = "protocol", port, time, step, of, expected, reset, autocloseIn, count, client
    }

    /// A report of `event`, which happened at wall-clock `wallTime`.
    public init(_ event: KnockEvent, wallTime: WallTime) {
        self.event = EventKind(event.kind)
        rule = event.rule.rawValue
        peer = "\(event.peer)"
        transport = event.knock?.transport
        port = event.knock.map { Int($0.port.rawValue) }
        time = Self.iso8601(wallTime)
        client = event.client
        switch event.kind {
        case .matching(let done, let total): (step, of) = (done, total)
        case .didNotMatch(let expectedPort, let resetAttempt): (expected, reset) = ("\(expectedPort)", resetAttempt)
        case .allowed(let until): autocloseIn = until.map { max(0, ($0 - event.time).wholeSeconds) }
        default: break
        }
    }

    /// The notice a reader gets after missing `count` events.
    public init(droppedCount: Int) {
        event = .dropped
        count = droppedCount
    }

    /// `wallTime` as `YYYY-MM-DDTHH:MM:SSZ`.
    public static func iso8601(_ wallTime: WallTime) -> String {
        // Civil-from-days (Howard Hinnant's algorithm), so no locale or time zone is involved.
        let seconds = wallTime.secondsSinceEpoch
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))Z"
    }

    /// The event as one JSON line, without the newline.
    public var line: String { ControlFraming.encode(self) }

    /// Parses an event line; an unknown kind is kept as ``EventKind/other(_:)``.
    public init(parsing line: some Collection<UInt8>) throws(ControlProtocolError) {
        guard let report = ControlFraming.decode(EventReport.self, from: line) else {
            throw ControlProtocolError("unreadable event from pknockd")
        }
        self = report
    }

    /// The line `pknock events` prints: `TIME RULE src=PEER proto=TCP port=2004 event=MATCHING step=1/3`.
    public var text: String {
        if event == .dropped { return "-- \(count ?? 0) events dropped: this reader fell behind" }
        var line = "\(time ?? "-") \(rule ?? "-") src=\(peer ?? "-")"
        if let transport { line += " proto=\(transport.description.uppercased())" }
        if let port { line += " port=\(port)" }
        line += " event=\(event.rawValue.uppercased())"
        if let step, let of { line += " step=\(step)/\(of)" }
        if let expected { line += " expected=\(expected)" }
        if let reset, reset { line += " reset" }
        if let autocloseIn { line += " autoclose_time=\(autocloseIn)" }
        if let client { line += " client=\(client)" }
        return line
    }
}
