import Crypto
import Foundation

/// A client allowed to send fwknop packets: its keys and the `spa = "fwknop"` rules it may open.
public struct FwknopClient: Sendable, Equatable {
    /// A name for logs and the replay memory (fwknop packets carry no client id outside the encryption).
    public var id: String
    /// Its keys.
    public var keys: Fwknop.Keys
    /// The rules it may open.
    public var rules: Set<RuleName>

    /// Makes a client entry.
    public init(id: String, keys: Fwknop.Keys, rules: Set<RuleName>) {
        self.id = id
        self.keys = keys
        self.rules = rules
    }
}

/// The fwknop settings of a rule (`spa = "fwknop"`).
public struct FwknopRuleSettings: Equatable, Sendable {
    /// Refuse packets that ask for `0.0.0.0` (fwknopd's REQUIRE_SOURCE_ADDRESS): the client must
    /// name the address to open (`fwknop -a` or `-R`), which binds the packet to it.
    public var requireSourceAddress: Bool
    /// Whether a packet may name an address other than its source.
    public var allowNamedAddress: Bool

    /// Makes fwknop settings.
    public init(requireSourceAddress: Bool = false, allowNamedAddress: Bool = false) {
        self.requireSourceAddress = requireSourceAddress
        self.allowNamedAddress = allowNamedAddress
    }
}

/// Checks fwknop packets for the rules that take them: HMAC first (refused before any decryption),
/// then the encryption, the fields, the clock window, the replay memory and the access request.
///
/// The client is found by its HMAC: the keys of every client that may open the rule are tried.
/// Replay: the SHA-256 of every accepted packet's wire bytes is remembered until its timestamp
/// leaves the window, so a packet opens at most once; at most `maximumPacketsPerWindow` packets per
/// client and window are accepted, which bounds the memory. Packets that fail leave no state.
/// Not safe for concurrent use; owned by the engine.
public struct FwknopVerifier: Sendable {
    /// What a valid packet asks for.
    public struct Grant: Equatable, Sendable {
        /// The client whose keys verified it.
        public var clientID: String
        /// The user name inside the packet.
        public var user: String
        /// The address to allow.
        public var address: PeerAddress
        /// The ports it asked for (all of them protected by the rule).
        public var access: [ServicePort]
        /// The timeout the client asked for, if any (the engine caps it by the rule's autoclose).
        public var clientTimeout: Duration?
        /// SHA-256 of the packet (a fleet replicates it as the replay key).
        public var digest: [UInt8] = []

        /// Makes a grant.
        public init(clientID: String, user: String, address: PeerAddress, access: [ServicePort], clientTimeout: Duration?) {
            self.clientID = clientID
            self.user = user
            self.address = address
            self.access = access
            self.clientTimeout = clientTimeout
        }

        /// Compares what the grant asks for; the packet's digest only travels with it.
        public static func == (lhs: Grant, rhs: Grant) -> Bool {
            lhs.clientID == rhs.clientID && lhs.user == rhs.user && lhs.address == rhs.address && lhs.access == rhs.access
                && lhs.clientTimeout == rhs.clientTimeout
        }
    }

    /// Why a packet opens nothing.
    public enum Rejection: Error, Equatable, Sendable, CustomStringConvertible {
        /// Not an fwknop packet with an HMAC on the outside (length, alphabet).
        case malformed(Fwknop.DecodingError)
        /// No HMAC key of a client that may open the rule verifies it: wrong keys, or a packet
        /// without an HMAC (fwknop without `--use-hmac`), refused before decryption.
        case badHMAC
        /// Authenticated, but the encryption key or the message is wrong.
        case undecodable(client: String, Fwknop.DecodingError)
        /// The timestamp is further from the server's clock than the window; `skew` is packet − server, in seconds.
        case outsideClockWindow(client: String, skew: Int64)
        /// The same packet was accepted before: a replay.
        case replayed(client: String)
        /// The client sent more valid packets in one window than it may.
        case rateLimited(client: String)
        /// A command or NAT message, which pknockd does not honour.
        case unsupportedMessage(client: String, type: Int)
        /// A port asked for that the rule does not protect.
        case portNotProtected(client: String, port: ServicePort)
        /// The packet asks for `0.0.0.0` and the rule requires the address.
        case sourceAddressRequired(client: String)
        /// The packet names another address than its source, and the rule does not allow it.
        case addressNotAllowed(client: String, address: PeerAddress)

        /// The client, when the packet authenticated.
        public var client: String? {
            switch self {
            case .malformed, .badHMAC: nil
            case .undecodable(let id, _), .outsideClockWindow(let id, _), .replayed(let id), .rateLimited(let id),
                .unsupportedMessage(let id, _), .portNotProtected(let id, _), .sourceAddressRequired(let id),
                .addressNotAllowed(let id, _):
                id
            }
        }

        public var description: String {
            switch self {
            case .malformed(let error): "malformed: \(error)"
            case .badHMAC: "bad HMAC: no client key of this rule verifies it (wrong HMAC key, or a packet without HMAC)"
            case .undecodable(_, let error): "undecodable: \(error)"
            case .outsideClockWindow(_, let skew): "outside clock window: the packet's timestamp is \(skew) s off the server's clock"
            case .replayed: "replayed: this packet was accepted before"
            case .rateLimited: "rate limited: too many packets from this client in the clock window"
            case .unsupportedMessage(_, let type): "unsupported message type \(type) (only access requests are honoured)"
            case .portNotProtected(_, let port): "port \(port.transport)/\(port.port) asked for is not protected by this rule"
            case .sourceAddressRequired: "the packet asks for 0.0.0.0 and the rule requires the address (fwknop -a ADDR or -R)"
            case .addressNotAllowed(_, let address): "the packet names \(address), not its source, and the rule does not allow that"
            }
        }
    }

    /// One remembered packet digest.
    public struct SeenDigest: Equatable, Sendable, Codable {
        /// The client whose packet it was.
        public var clientID: String
        /// SHA-256 of the packet, lowercase hex.
        public var digest: String
        /// The packet's timestamp.
        public var timestamp: Int64

        /// Makes an entry.
        public init(clientID: String, digest: String, timestamp: Int64) {
            self.clientID = clientID
            self.digest = digest
            self.timestamp = timestamp
        }
    }

    /// How far a timestamp may be from the server's clock (default 120 s, as fwknopd).
    public let clockWindow: Duration
    /// Valid packets accepted per client per window.
    public let maximumPacketsPerWindow: Int
    private var clients: [FwknopClient]
    private var seen: [String: [(digest: [UInt8], timestamp: Int64)]] = [:]

    /// Makes a verifier.
    public init(clients: [FwknopClient], clockWindow: Duration = .seconds(120), maximumPacketsPerWindow: Int = 30) {
        self.clients = clients
        self.clockWindow = clockWindow
        self.maximumPacketsPerWindow = maximumPacketsPerWindow
    }

    /// Makes the verifier of a reload, keeping `previous`'s replay memory for clients that remain.
    public init(clients: [FwknopClient], clockWindow: Duration, carryingOverFrom previous: FwknopVerifier) {
        self.init(clients: clients, clockWindow: clockWindow, maximumPacketsPerWindow: previous.maximumPacketsPerWindow)
        let ids = Set(clients.map(\.id))
        seen = previous.seen.filter { ids.contains($0.key) }
    }

    private var windowSeconds: Int64 { max(0, clockWindow.wholeSeconds) }

    /// Checks `bytes`, which arrived from `source` at wall time `now` on the knock port of `rule`.
    public mutating func verify(
        _ bytes: some Collection<UInt8>, source: PeerAddress, rule: Rule, settings: FwknopRuleSettings, now: WallTime
    ) -> Result<Grant, Rejection> {
        if let problem = Fwknop.outerProblem(bytes) { return .failure(.malformed(problem)) }
        let packet = Array(bytes)
        // Encrypt-then-MAC: nothing is decrypted before an HMAC verifies.
        guard let client = clients.first(where: { $0.rules.contains(rule.name) && Fwknop.hasValidHMAC(packet, hmacKey: $0.keys.hmacKey) })
        else { return .failure(.badHMAC) }
        let message: Fwknop.Message
        switch Fwknop.open(packet, encryptionKey: client.keys.encryptionKey) {
        case .success(let opened): message = opened
        case .failure(let error): return .failure(.undecodable(client: client.id, error))
        }
        let skew = message.timestamp.subtractingSaturating(now.secondsSinceEpoch)
        guard skew.magnitude <= UInt64(windowSeconds) else { return .failure(.outsideClockWindow(client: client.id, skew: skew)) }
        prune(clientID: client.id, oldest: now.secondsSinceEpoch.subtractingSaturating(windowSeconds))
        let digest = Array(SHA256.hash(data: packet))
        var used = seen[client.id] ?? []
        if used.contains(where: { $0.digest == digest }) { return .failure(.replayed(client: client.id)) }
        guard message.type == .access || message.type == .clientTimeoutAccess else {
            return .failure(.unsupportedMessage(client: client.id, type: message.type.rawValue))
        }
        for port in message.access where !rule.protectedPorts.contains(port) {
            return .failure(.portNotProtected(client: client.id, port: port))
        }
        var address = source
        if let named = message.address {
            if named != source {
                guard settings.allowNamedAddress else { return .failure(.addressNotAllowed(client: client.id, address: named)) }
                address = named
            }
        } else if settings.requireSourceAddress {
            return .failure(.sourceAddressRequired(client: client.id))
        }
        guard used.count < maximumPacketsPerWindow else { return .failure(.rateLimited(client: client.id)) }
        used.append((digest, message.timestamp))
        seen[client.id] = used
        var grant = Grant(
            clientID: client.id, user: message.user, address: address, access: message.access,
            clientTimeout: message.clientTimeout.map { .seconds($0) })
        grant.digest = digest
        return .success(grant)
    }

    /// Forgets digests whose timestamps have left the window.
    public mutating func prune(now: WallTime) {
        let oldest = now.secondsSinceEpoch.subtractingSaturating(windowSeconds)
        for clientID in seen.keys { prune(clientID: clientID, oldest: oldest) }
    }

    private mutating func prune(clientID: String, oldest: Int64) {
        seen[clientID]?.removeAll { $0.timestamp < oldest }
        if seen[clientID]?.isEmpty == true { seen[clientID] = nil }
    }

    /// The remembered digests, for persisting across restarts.
    public var seenDigests: [SeenDigest] {
        seen.flatMap { client, entries in
            entries.map { SeenDigest(clientID: client, digest: $0.digest.map { String(format: "%02x", $0) }.joined(), timestamp: $0.timestamp) }
        }
        .sorted { ($0.timestamp, $0.clientID, $0.digest) < ($1.timestamp, $1.clientID, $1.digest) }
    }

    /// Restores remembered digests (after a restart), dropping those of unknown clients and outside the window.
    public mutating func restore(_ digests: [SeenDigest], now: WallTime) {
        let ids = Set(clients.map(\.id))
        for entry in digests where ids.contains(entry.clientID) {
            guard let bytes = Self.bytes(hex: entry.digest), bytes.count == 32 else { continue }
            seen[entry.clientID, default: []].append((bytes, entry.timestamp))
        }
        prune(now: now)
    }

    private static func bytes(hex: String) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let byte = UInt8(String(decoding: utf8[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            result.append(byte)
            index += 2
        }
        return result
    }
}
