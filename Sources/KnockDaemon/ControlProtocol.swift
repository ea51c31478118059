import Foundation
import KnockCore

// The control socket's JSON-lines protocol (Docs/control-protocol.md): one JSON object per line in
// each direction. Everything here is pure: parsing, encoding, and the text renderings `pknock` prints.

/// The longest request line the daemon reads; longer lines get an error reply and the connection closes.
public let controlMaximumLineLength = 4096

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

    private struct Wire: Codable {
        var command: String
        var rule: String?
        var peer: String?
        var seconds: Int64?
    }

    /// Parses one request line (without its newline); the error text is what the reply carries.
    public init(parsing line: some Collection<UInt8>) throws(ControlProtocolError) {
        guard line.count <= controlMaximumLineLength else { throw ControlProtocolError("request line too long") }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(line))
        } catch {
            throw ControlProtocolError("not a JSON request object with a \"command\" string")
        }
        func rule() throws(ControlProtocolError) -> RuleName {
            guard let text = wire.rule else { throw ControlProtocolError("\"\(wire.command)\" needs \"rule\"") }
            guard let name = RuleName(rawValue: text) else { throw ControlProtocolError("invalid rule name") }
            return name
        }
        func peer() throws(ControlProtocolError) -> PeerAddress {
            guard let text = wire.peer else { throw ControlProtocolError("\"\(wire.command)\" needs \"peer\"") }
            guard let address = PeerAddress(text) else { throw ControlProtocolError("invalid peer address") }
            return address
        }
        switch wire.command {
        case "status":
            self = .status(rule: wire.rule == nil ? nil : try rule())
        case "events":
            self = .events
        case "open":
            var duration: Duration?
            if let seconds = wire.seconds {
                guard seconds > 0, seconds <= 366 * 86_400 else {
                    throw ControlProtocolError("\"seconds\" must be 1 to \(366 * 86_400)")
                }
                duration = .seconds(seconds)
            }
            self = .open(rule: try rule(), peer: try peer(), duration: duration)
        case "close":
            self = .close(rule: try rule(), peer: try peer())
        default:
            throw ControlProtocolError("unknown command; known: status, events, open, close")
        }
    }

    /// The request as one JSON line, without the newline.
    public var line: String {
        let wire: Wire
        switch self {
        case .status(let rule): wire = Wire(command: "status", rule: rule?.rawValue)
        case .events: wire = Wire(command: "events")
        case .open(let rule, let peer, let duration):
            wire = Wire(command: "open", rule: rule.rawValue, peer: "\(peer)", seconds: duration?.wholeSeconds)
        case .close(let rule, let peer): wire = Wire(command: "close", rule: rule.rawValue, peer: "\(peer)")
        }
        return ControlJSON.encode(wire)
    }
}

/// Why a control request was refused; the text goes into the error reply.
public struct ControlProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// Makes an error.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// One tracked peer in a status reply.
public struct PeerStatusReport: Codable, Equatable, Sendable {
    /// The peer's address.
    public var peer: String
    /// "tcp" or "udp": the protocol of its last knock.
    public var transport: String
    /// "matching" or "allowed".
    public var status: String
    /// Correct knocks so far (the sequence's length once allowed).
    public var knocks: Int
    /// The next knock expected (matching only), for example "2001:tcp".
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
        peer: String, transport: String, status: String, knocks: Int, nextPort: String? = nil, nextPortIndex: Int? = nil,
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
                peer: "\(status.peer)", transport: "\(status.transport)", status: "matching", knocks: done,
                nextPort: "\(next)", nextPortIndex: done, expiresIn: expires.map(secondsLeft))
        case .allowed(let until):
            self.init(
                peer: "\(status.peer)", transport: "\(status.transport)", status: "allowed", knocks: sequenceLength,
                autocloseIn: until.map(secondsLeft))
        }
    }

    /// The original's `/proc/net/xt_pknock/NAME` line: `src=… proto=TCP status=MATCHING
    /// accepted_knock_count=1 expir_time=9 next_port_id=1 next_port=2001:tcp`, or for an allowed peer
    /// `… status=ALLOWED accepted_knock_count=3 autoclose_time=57`.
    ///
    /// Times are seconds left; a field is
    /// left out when the rule has no such limit.
    public var procLine: String {
        var line = "src=\(peer) proto=\(transport.uppercased()) status=\(status.uppercased()) accepted_knock_count=\(knocks)"
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
    /// Its knock sequence, for example ["2002:tcp", "2001:tcp"].
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

/// A reply on the control socket: `{"ok":true,…}` or `{"ok":false,"error":"…"}`.
public struct ControlReply: Codable, Equatable, Sendable {
    /// Whether the request succeeded.
    public var ok: Bool
    /// Why it did not.
    public var error: String?
    /// For `status`: the rules asked about.
    public var rules: [RuleStatusReport]?
    /// For `open`/`close`: what was done, in words.
    public var result: String?
    /// For `events`: true when events follow on this connection.
    public var following: Bool?

    /// Makes a reply.
    public init(ok: Bool, error: String? = nil, rules: [RuleStatusReport]? = nil, result: String? = nil, following: Bool? = nil) {
        self.ok = ok
        self.error = error
        self.rules = rules
        self.result = result
        self.following = following
    }

    /// An error reply.
    public static func failure(_ message: String) -> ControlReply { ControlReply(ok: false, error: message) }

    /// The reply as one JSON line, without the newline.
    public var line: String { ControlJSON.encode(self) }

    /// Parses a reply line.
    public init(parsing line: some Collection<UInt8>) throws(ControlProtocolError) {
        do {
            self = try ControlJSON.decoder.decode(ControlReply.self, from: Data(line))
        } catch {
            throw ControlProtocolError("unreadable reply from pknockd")
        }
    }
}

/// One event on the stream, as a JSON line: `{"event":"allowed","rule":"SSH","peer":"192.0.2.7",
/// "protocol":"tcp","port":2004,"time":"2025-09-16T05:20:00Z","autoclose_in":60}`; a laggard also
/// gets `{"event":"dropped","count":N}` for the events it missed.
public struct EventReport: Codable, Equatable, Sendable {
    /// matching, allowed, didnt_match, time_exceeded, blocked, bad_mac, closed, autoclosed, evicted,
    /// refused_full; or dropped.
    public var event: String
    /// The rule.
    public var rule: String?
    /// The peer.
    public var peer: String?
    /// The protocol of the knock that caused it.
    public var transport: String?
    /// The port knocked (absent for timer-driven and administrator events).
    public var port: Int?
    /// Wall-clock time, ISO 8601 UTC.
    public var time: String?
    /// matching: knocks done and the sequence's length.
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
        self.event = Self.name(of: event.kind)
        rule = event.rule.rawValue
        peer = "\(event.peer)"
        transport = event.knock.map { "\($0.transport)" }
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
        event = "dropped"
        count = droppedCount
    }

    /// The event kind's wire name.
    public static func name(of kind: KnockEvent.Kind) -> String {
        switch kind {
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
        }
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
    public var line: String { ControlJSON.encode(self) }

    /// Parses an event line.
    public init(parsing line: some Collection<UInt8>) throws(ControlProtocolError) {
        do {
            self = try ControlJSON.decoder.decode(EventReport.self, from: Data(line))
        } catch {
            throw ControlProtocolError("unreadable event from pknockd")
        }
    }

    /// The line `pknock events` prints: `TIME RULE src=PEER proto=TCP port=2004 event=MATCHING step=1/3`.
    public var text: String {
        if event == "dropped" { return "-- \(count ?? 0) events dropped: this reader fell behind" }
        var line = "\(time ?? "-") \(rule ?? "-") src=\(peer ?? "-")"
        if let transport { line += " proto=\(transport.uppercased())" }
        if let port { line += " port=\(port)" }
        line += " event=\(event.uppercased())"
        if let step, let of { line += " step=\(step)/\(of)" }
        if let expected { line += " expected=\(expected)" }
        if let reset, reset { line += " reset" }
        if let autocloseIn { line += " autoclose_time=\(autocloseIn)" }
        if let client { line += " client=\(client)" }
        return line
    }
}

/// The JSON coding every control message uses: snake_case keys, sorted, no nulls.
enum ControlJSON {
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own plain structs cannot fail.
        guard let data = try? encoder.encode(value) else { return #"{"ok":false,"error":"internal encoding error"}"# }
        return String(decoding: data, as: UTF8.self)
    }
}
