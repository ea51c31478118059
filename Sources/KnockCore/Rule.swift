/// A transport protocol a knock can use.
public enum TransportProtocol: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// TCP; a knock is a SYN.
    case tcp = 6
    /// UDP; a knock is a datagram.
    case udp = 17

    /// The lowercase name: `tcp` or `udp`.
    public var description: String { self == .tcp ? "tcp" : "udp" }

    /// Parses `tcp` or `udp` in any case.
    public init?(name: some StringProtocol) {
        switch name.lowercased() {
        case "tcp": self = .tcp
        case "udp": self = .udp
        default: return nil
        }
    }
}

/// A TCP or UDP port number, 1 through 65535.
public struct Port: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The port number.
    public var rawValue: UInt16

    /// Wraps a port number; port 0 is not a port a knock can use, so it is refused.
    public init?(rawValue: UInt16) {
        guard rawValue != 0 else { return nil }
        self.rawValue = rawValue
    }

    /// Parses decimal text of 1 through 65535.
    public init?(_ text: some StringProtocol) {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
            let value = Int(text), (1...65535).contains(value)
        else { return nil }
        self.rawValue = UInt16(value)
    }

    public var description: String { String(rawValue) }

    public static func < (lhs: Port, rhs: Port) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A port together with its protocol, written `2002:tcp` (knockd's form).
public struct ServicePort: Hashable, Sendable, CustomStringConvertible {
    /// The port number.
    public var port: Port
    /// The protocol.
    public var transport: TransportProtocol

    /// Makes a service port.
    public init(_ port: Port, _ transport: TransportProtocol) {
        self.port = port
        self.transport = transport
    }

    /// `2002:tcp`.
    public var description: String { "\(port):\(transport)" }
}

/// A rule name: 1 to 31 letters, digits, `_` or `-` (the original's limit and alphabet).
public struct RuleName: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The most characters a name may have, as in xt_pknock.
    public static let maximumLength = 31

    /// The name.
    public let rawValue: String

    /// Validates `rawValue`; nil when it is empty, too long or has other characters.
    public init?(rawValue: String) {
        guard Self.problem(with: rawValue) == nil else { return nil }
        self.rawValue = rawValue
    }

    /// Why `text` is not a valid rule name, or nil when it is.
    public static func problem(with text: String) -> String? {
        if text.isEmpty { return "a rule name is required" }
        if text.utf8.count > maximumLength {
            return "rule name \"\(text)\" is longer than \(maximumLength) characters"
        }
        let allowed = text.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-"
        }
        return allowed ? nil : "rule name \"\(text)\" may only contain letters, digits, '_' and '-'"
    }

    public var description: String { rawValue }

    public static func < (lhs: RuleName, rhs: RuleName) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Secret key bytes.
///
/// Never printed: its descriptions and mirror are redacted.
public struct Secret: Equatable, Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The key bytes.
    public let bytes: [UInt8]

    /// Wraps key bytes.
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Wraps the UTF-8 bytes of `text`.
    public init(_ text: String) { self.bytes = Array(text.utf8) }

    public var description: String { "<secret, \(bytes.count) bytes>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

/// The wire format of an SPA knock, as the original computed it.
public enum SPAFormat: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// xt_pknock `--opensecret/--closesecret`: 64 lowercase hex digits of
    /// HMAC-SHA256(secret, source address ‖ epoch minute as UInt32 little-endian), then one byte.
    case sha256
    /// The original `--secure`: 32 lowercase hex digits of
    /// HMAC-MD5(secret, source address ‖ epoch minute as UInt64 little-endian), then optionally one byte.
    case md5

    public var description: String { rawValue }
}

/// The single-packet-authorization settings of a rule.
public struct SPASettings: Equatable, Sendable {
    /// How MACs are computed.
    public var format: SPAFormat
    /// The secret whose MAC opens access.
    public var openSecret: Secret
    /// The secret whose MAC revokes access; nil when the rule has no close knock.
    public var closeSecret: Secret?
    /// How many epoch minutes before the current one a MAC may be for (default 1: current and previous).
    public var clockSkewMinutes: Int

    /// Makes SPA settings.
    public init(format: SPAFormat = .sha256, openSecret: Secret, closeSecret: Secret?, clockSkewMinutes: Int = 1) {
        self.format = format
        self.openSecret = openSecret
        self.closeSecret = closeSecret
        self.clockSkewMinutes = clockSkewMinutes
    }
}

/// The SPA v2 settings of a rule (see Docs/spa-v2.md): which clients may open it is said per client.
public struct SPAv2RuleSettings: Equatable, Sendable {
    /// Whether a packet may ask to open an address other than its source (clients behind NAT);
    /// the client must be allowed to as well.
    public var allowNamedAddress: Bool

    /// Makes v2 settings.
    public init(allowNamedAddress: Bool = false) {
        self.allowNamedAddress = allowNamedAddress
    }
}

/// One knock rule: what a peer must send, and what it may reach afterwards.
///
/// The original's one-rule form (`--knockports … --dport 22 -j ACCEPT`) and its two-rule form
/// (a knock rule plus a `--checkip` rule of the same name) both become one `Rule`.
public struct Rule: Equatable, Sendable {
    /// The most knock ports a sequence may have, as in xt_pknock.
    public static let maximumKnockPorts = 15
    /// The default cap on peers tracked mid-sequence per rule.
    public static let defaultMaxTrackedPeers = 65_536
    /// The default cap on peers allowed at once per rule.
    public static let defaultMaxAllowedPeers = 65_536
    /// The wrong-knock budget of a non-strict rule in pknock.toml when it sets none.
    public static let defaultMaxWrongKnocks = 8
    /// The largest wrong-knock budget (the count is kept in 8 bits).
    public static let maximumWrongKnocks = 255

    /// The rule's name.
    public var name: RuleName
    /// The knock sequence; for SPA rules, the one port SPA packets go to.
    public var knockSequence: [ServicePort]
    /// The longest gap allowed between two knocks (`--time`); nil for no limit.
    public var maxKnockGap: Duration?
    /// Whether a wrong knock makes the peer start over (`--strict`).
    public var strict: Bool
    /// How long access lasts once granted (`--autoclose`); nil for as long as the set keeps it.
    public var autoclose: Duration?
    /// SPA settings (the original formats); nil for a plain port sequence.
    public var spa: SPASettings?
    /// SPA v2 settings; nil unless the rule is opened by v2 packets from configured clients.
    public var spa2: SPAv2RuleSettings?
    /// fwknop settings; nil unless the rule is opened by fwknop clients' packets (`spa = "fwknop"`).
    public var fwknop: FwknopRuleSettings?
    /// The ports allowed peers may reach.
    public var protectedPorts: [ServicePort]
    /// The most peers tracked by address after two or more correct knocks (and the size of a
    /// watching rule's kernel set of sources mid-sequence); when full, the stalest such attempt is
    /// evicted.
    ///
    /// First knocks are not counted here: they live in the engine's first-knock table,
    /// shared by all rules, so a flood of spoofed first knocks never evicts a later-stage attempt.
    public var maxTrackedPeers: Int
    /// The most peers allowed at once; beyond it new grants are refused.
    public var maxAllowedPeers: Int
    /// How many wrong knocks an attempt of a non-strict rule may make before it is dropped (0: no
    /// limit, the original's behaviour and the default of a rule made in code; pknock.toml's default is
    /// ``defaultMaxWrongKnocks``).
    ///
    /// Strict rules drop an attempt at its first wrong knock anyway.
    public var maxWrongKnocks: Int

    /// Whether the daemon must see every new connection of a peer mid-sequence, not only its knocks:
    /// a strict rule (any such packet resets the attempt) or a non-strict one with a wrong-knock
    /// budget (any such packet counts against it).
    ///
    /// SPA rules have no sequence; a non-strict one-port
    /// rule has no peer mid-sequence to watch.
    public var watchesPeers: Bool {
        spa == nil && spa2 == nil && fwknop == nil && (strict || (maxWrongKnocks > 0 && knockSequence.count > 1))
    }

    /// Makes a rule; call ``validate()`` to check it.
    public init(
        name: RuleName,
        knockSequence: [ServicePort],
        maxKnockGap: Duration? = nil,
        strict: Bool = false,
        autoclose: Duration? = nil,
        spa: SPASettings? = nil,
        spa2: SPAv2RuleSettings? = nil,
        fwknop: FwknopRuleSettings? = nil,
        protectedPorts: [ServicePort] = [],
        maxTrackedPeers: Int = Rule.defaultMaxTrackedPeers,
        maxAllowedPeers: Int = Rule.defaultMaxAllowedPeers,
        maxWrongKnocks: Int = 0
    ) {
        self.name = name
        self.knockSequence = knockSequence
        self.maxKnockGap = maxKnockGap
        self.strict = strict
        self.autoclose = autoclose
        self.spa = spa
        self.spa2 = spa2
        self.fwknop = fwknop
        self.protectedPorts = protectedPorts
        self.maxTrackedPeers = maxTrackedPeers
        self.maxAllowedPeers = maxAllowedPeers
        self.maxWrongKnocks = maxWrongKnocks
    }
}
