import KnockCore

/// Small constructors so each test reads like the original's scenario files.
enum Fixture {
    static func name(_ text: String) -> RuleName {
        guard let name = RuleName(rawValue: text) else { fatalError("bad fixture rule name \(text)") }
        return name
    }

    static func port(_ number: UInt16, _ transport: TransportProtocol = .tcp) -> ServicePort {
        guard let port = Port(rawValue: number) else { fatalError("bad fixture port \(number)") }
        return ServicePort(port, transport)
    }

    static func address(_ text: String) -> PeerAddress {
        guard let address = PeerAddress(text) else { fatalError("bad fixture address \(text)") }
        return address
    }

    static func knock(_ source: String, _ number: UInt16, _ transport: TransportProtocol = .tcp, payload: [UInt8] = []) -> Knock {
        Knock(source: address(source), transport: transport, port: port(number, transport).port, payload: payload[...])
    }

    /// A TCP SYN from `sourcePort` with sequence number `sequence`: the same values again are a
    /// retransmission, other values a new connection.
    static func syn(_ source: String, _ number: UInt16, sourcePort: UInt16, sequence: UInt32) -> Knock {
        Knock(
            source: address(source), transport: .tcp, port: port(number).port, sourcePort: Port(rawValue: sourcePort),
            tcpSequenceNumber: sequence)
    }

    /// A UDP datagram from `sourcePort` carrying `payload`.
    static func datagram(_ source: String, _ number: UInt16, sourcePort: UInt16, payload: [UInt8]) -> Knock {
        Knock(source: address(source), transport: .udp, port: port(number, .udp).port, payload: payload[...], sourcePort: Port(rawValue: sourcePort))
    }

    /// The fixed first-knock fingerprint key of the tests.
    static let fingerprintKey = SipHashKey(k0: 0x0706_0504_0302_0100, k1: 0x0f0e_0d0c_0b0a_0908)

    static func sequenceRule(
        _ ruleName: String, _ ports: [UInt16], transport: TransportProtocol = .tcp, time: Duration? = .seconds(10),
        strict: Bool = false, autoclose: Duration? = nil, protect: [UInt16] = [22], maxTracked: Int = Rule.defaultMaxTrackedPeers,
        maxWrongKnocks: Int = 0
    ) -> Rule {
        Rule(
            name: name(ruleName), knockSequence: ports.map { port($0, transport) }, maxKnockGap: time, strict: strict,
            autoclose: autoclose, protectedPorts: protect.map { port($0) }, maxTrackedPeers: maxTracked,
            maxWrongKnocks: maxWrongKnocks)
    }

    static func spaRule(
        _ ruleName: String = "FTP", knockPort: UInt16 = 4000, format: SPAFormat = .sha256, open: String = "opensecret",
        close: String? = "closesecret", autoclose: Duration? = nil, skew: Int = 1
    ) -> Rule {
        Rule(
            name: name(ruleName), knockSequence: [port(knockPort, .udp)], autoclose: autoclose,
            spa: SPASettings(format: format, openSecret: Secret(open), closeSecret: close.map(Secret.init), clockSkewMinutes: skew),
            protectedPorts: [port(21)])
    }

    /// A wall time inside epoch minute `minute`, `second` seconds into it.
    static func wall(minute: Int64, second: Int64 = 30) -> WallTime { WallTime(secondsSinceEpoch: minute * 60 + second) }
}

extension Array where Element == KnockEffect {
    /// The event kinds, in order.
    var kinds: [KnockEvent.Kind] {
        compactMap { if case .event(let event) = $0 { return event.kind } else { return nil } }
    }

    /// The firewall commands, in order.
    var commands: [FirewallCommand] {
        compactMap { if case .firewall(let command) = $0 { return command } else { return nil } }
    }
}
