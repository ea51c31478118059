/// One packet the daemon saw that may be a knock: who sent it, where to, and its payload.
public struct Knock: Equatable, Sendable {
    /// The packet's source address.
    public var source: PeerAddress
    /// TCP or UDP.
    public var transport: TransportProtocol
    /// The destination port.
    public var port: Port
    /// The transport payload (UDP data; empty for a TCP SYN).
    ///
    /// SPA rules read it; sequence rules only
    /// fingerprint it to recognize a retransmitted datagram.
    public var payload: ArraySlice<UInt8>
    /// The source port; nil when unknown (such a knock is never taken for a retransmission).
    public var sourcePort: Port?
    /// The TCP sequence number of the SYN; nil for UDP or when unknown.
    public var tcpSequenceNumber: UInt32?

    /// Makes a knock.
    public init(
        source: PeerAddress, transport: TransportProtocol, port: Port, payload: ArraySlice<UInt8> = [],
        sourcePort: Port? = nil, tcpSequenceNumber: UInt32? = nil
    ) {
        self.source = source
        self.transport = transport
        self.port = port
        self.payload = payload
        self.sourcePort = sourcePort
        self.tcpSequenceNumber = tcpSequenceNumber
    }

    /// What tells a retransmission from a new knock, in 24 bits (0: nothing to tell by): the same TCP
    /// SYN again has the same source port and sequence number; the same UDP datagram again has the
    /// same source port and payload.
    ///
    /// A new connection or datagram differs with probability 1 − 2⁻²⁴.
    public var retransmissionFingerprint: UInt32 {
        guard let sourcePort else { return 0 }
        let detail: UInt32
        switch transport {
        case .tcp:
            guard let tcpSequenceNumber else { return 0 }
            detail = tcpSequenceNumber
        case .udp:
            detail = PacketParser.payloadFingerprint(payload)
        }
        // A 64-bit finalizer (MurmurHash3's fmix64) spreads both fields over the bits kept.
        var mixed = UInt64(sourcePort.rawValue) << 32 | UInt64(detail)
        mixed ^= mixed >> 33
        mixed &*= 0xff51_afd7_ed55_8ccd
        mixed ^= mixed >> 33
        mixed &*= 0xc4ce_b9fe_1a85_ec53
        mixed ^= mixed >> 33
        let fingerprint = UInt32(truncatingIfNeeded: mixed) & 0x00FF_FFFF
        return fingerprint == 0 ? 1 : fingerprint
    }

    /// The port and protocol knocked.
    public var servicePort: ServicePort { ServicePort(port, transport) }
}

/// A change the firewall must make.
///
/// The closed set of things the core may ask of the kernel.
public enum FirewallCommand: Equatable, Sendable {
    /// Let `peer` reach the rule's protected ports for `ttl` (nil: until revoked), replacing any
    /// earlier timeout.
    case allow(rule: RuleName, peer: PeerAddress, ttl: Duration?)
    /// Take the rule's access away from `peer` (no error if it has none).
    case revoke(rule: RuleName, peer: PeerAddress)
}

/// What makes one SPA open unique across gateways.
public enum ReplayKey: Hashable, Sendable {
    /// SPA v1: the peer may open once per epoch minute.
    case spa1(epochMinute: Int64)
    /// SPA v2: the packet's nonce.
    case spa2(nonce: [UInt8])
    /// fwknop: SHA-256 of the packet.
    case fwknop(digest: [UInt8])
}

/// What happened to a peer of a rule: the event stream, and the original's debug messages.
public struct KnockEvent: Equatable, Sendable {
    /// What kind of transition, and why.
    public enum Kind: Equatable, Sendable {
        /// A correct knock moved the peer forward; `step` knocks of `of` are done (the original's MATCHING).
        case matching(step: Int, of: Int)
        /// The peer completed the sequence or sent a valid SPA open; access lasts until `until` (nil: no autoclose).
        case allowed(until: Instant?)
        /// A knock on the wrong port (the original's DIDN'T MATCH); `reset` when strict made the peer start over.
        case didNotMatch(expected: ServicePort, reset: Bool)
        /// The peer waited longer than the rule's time between knocks; its attempt is forgotten.
        case timeExceeded
        /// A valid SPA open for an epoch minute this peer already opened in, or a replay (the original's BLOCKED).
        case blocked
        /// An SPA packet whose MAC matched neither secret for any accepted minute, or was malformed.
        case badMAC
        /// A valid close knock revoked access.
        case closed
        /// Access ended because its autoclose time passed.
        case autoclosed
        /// The peer's attempt was dropped to make room under the rule's tracked-peer cap.
        case evicted
        /// Access was refused because the rule already has its maximum of allowed peers.
        case refusedFull
    }

    /// The rule.
    public var rule: RuleName
    /// The peer.
    public var peer: PeerAddress
    /// What happened.
    public var kind: Kind
    /// The knock that caused it (nil for timer-driven events: expiry, autoclose).
    public var knock: ServicePort?
    /// When it happened.
    public var time: Instant
    /// The SPA v2 client the packet named, when it was one (for allowed, blocked and refused v2 packets).
    public var client: String?
    /// Why an SPA v2 packet was refused, for logs and events; nil otherwise.
    public var spa2Rejection: SPAv2Verifier.Rejection?
    /// Why an fwknop packet was refused, for logs and events; nil otherwise.
    public var fwknopRejection: FwknopVerifier.Rejection?
    /// What makes an SPA open unique (for `allowed` events of SPA rules).
    ///
    /// A fleet puts it in etcd so the same packet opens nothing at another gateway. Nil for knock sequences and `pknock open`.
    public var replayKey: ReplayKey?

    /// Makes an event.
    public init(
        rule: RuleName, peer: PeerAddress, kind: Kind, knock: ServicePort?, time: Instant, client: String? = nil,
        spa2Rejection: SPAv2Verifier.Rejection? = nil, fwknopRejection: FwknopVerifier.Rejection? = nil
    ) {
        self.rule = rule
        self.peer = peer
        self.kind = kind
        self.knock = knock
        self.time = time
        self.client = client
        self.spa2Rejection = spa2Rejection
        self.fwknopRejection = fwknopRejection
    }
}
