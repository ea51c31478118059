/// A client allowed to send SPA v2 packets.
public struct SPAv2Client: Sendable, Equatable {
    /// The client id packets carry.
    public var id: String
    /// How its packets are checked.
    public var key: SPAv2.VerificationKey
    /// The rules it may open.
    public var rules: Set<RuleName>
    /// Whether its packets may ask to open an address other than their source (clients behind NAT).
    public var mayNameAddress: Bool

    /// Makes a client entry.
    public init(id: String, key: SPAv2.VerificationKey, rules: Set<RuleName>, mayNameAddress: Bool = false) {
        self.id = id
        self.key = key
        self.rules = rules
        self.mayNameAddress = mayNameAddress
    }

    public static func == (lhs: SPAv2Client, rhs: SPAv2Client) -> Bool {
        lhs.id == rhs.id && lhs.rules == rhs.rules && lhs.mayNameAddress == rhs.mayNameAddress
            && lhs.key.rawKeyBytes == rhs.key.rawKeyBytes && lhs.key.kind == rhs.key.kind
    }
}

/// Checks SPA v2 packets: who sent them, whether they are fresh and new, and what they may open.
///
/// Freshness: the timestamp must be within `clockWindow` of the server's wall clock, either way.
/// Replay: every nonce of a valid packet is remembered until its timestamp leaves the window, so a
/// packet opens at most once; at most `maximumPacketsPerWindow` valid packets per client are
/// accepted per window (the per-client rate limit, which also bounds the memory). Packets that fail
/// authentication leave no state. Not safe for concurrent use; owned by the engine.
///
/// Order of checks: the cheap ones that need no key (format, client, clock window, rule, address)
/// come before the authenticator, the expensive one (an Ed25519 verification costs tens of
/// microseconds); state (nonce memory, rate limit) is read and changed only after it. All
/// arithmetic on the packet's timestamp is overflow-checked: any Int64 is refused or accepted,
/// never a trap.
public struct SPAv2Verifier: Sendable {
    /// What a valid packet asks for.
    public struct Grant: Equatable, Sendable {
        /// The client.
        public var clientID: String
        /// The rule to open.
        public var rule: RuleName
        /// The address to allow.
        public var address: PeerAddress
        /// The packet's nonce (a fleet replicates it as the replay key).
        public var nonce: [UInt8]

        /// Makes a grant.
        public init(clientID: String, rule: RuleName, address: PeerAddress, nonce: [UInt8] = []) {
            self.clientID = clientID
            self.rule = rule
            self.address = address
            self.nonce = nonce
        }

        /// Compares what the grant asks for (client, rule, address); the nonce only travels with it.
        public static func == (lhs: Grant, rhs: Grant) -> Bool {
            lhs.clientID == rhs.clientID && lhs.rule == rhs.rule && lhs.address == rhs.address
        }
    }

    /// Why a packet opens nothing.
    public enum Rejection: Error, Equatable, Sendable {
        /// Not a v2 packet, or malformed.
        case malformed(SPAv2.DecodingError)
        /// No such client (never configured, or revoked).
        case unknownClient(String)
        /// The tag or signature does not verify with the client's key.
        case badAuthenticator(client: String)
        /// The timestamp is further from the server's clock than the window; `skew` is packet − server, in seconds.
        case outsideClockWindow(client: String, skew: Int64)
        /// This nonce was already used: a replay.
        case replayed(client: String)
        /// The client sent more valid packets in one window than it may.
        case rateLimited(client: String)
        /// The client may not open this rule.
        case ruleNotAllowed(client: String, rule: RuleName)
        /// The packet names an address other than its source, and the client or rule does not allow that.
        case addressNotAllowed(client: String)
    }

    /// One remembered nonce.
    public struct SeenNonce: Equatable, Sendable, Codable {
        /// The client that used it.
        public var clientID: String
        /// The nonce.
        public var nonce: [UInt8]
        /// The packet's timestamp.
        public var timestamp: Int64
    }

    /// How far a timestamp may be from the server's clock.
    public let clockWindow: Duration
    /// Valid packets accepted per client per window.
    public let maximumPacketsPerWindow: Int
    private var clients: [String: SPAv2Client]
    private var seen: [String: [(nonce: [UInt8], timestamp: Int64)]] = [:]
    /// The latest cutoff any prune used: nonces with older timestamps may be forgotten.
    private var prunedBefore = Int64.min
    /// The oldest timestamp accepted after a reload that widened the window (Int64.min: no limit).
    ///
    /// Older packets are refused because the previous window's pruning may have forgotten their
    /// nonces. Cleared once the window has moved past it, so it never outlives the reload's old window.
    private var forgottenBefore = Int64.min

    /// Makes a verifier; `clockWindow` defaults to 60 s.
    public init(clients: [SPAv2Client], clockWindow: Duration = .seconds(60), maximumPacketsPerWindow: Int = 30) {
        self.clients = Dictionary(clients.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.clockWindow = clockWindow
        self.maximumPacketsPerWindow = maximumPacketsPerWindow
    }

    /// Makes the verifier of a reload: `clients` and `clockWindow` are the new configuration's, and
    /// `previous`'s nonce memory is kept for every client that still exists, whatever else changed
    /// (window, keys, rules), then pruned by the new window at the next packet or ``prune(now:)``.
    ///
    /// A wider window does not re-admit packets whose nonces `previous` already forgot: timestamps
    /// older than what `previous` still remembers stay refused until the new window has moved past them.
    public init(
        clients: [SPAv2Client], clockWindow: Duration, maximumPacketsPerWindow: Int = 30, carryingOverFrom previous: SPAv2Verifier
    ) {
        self.init(clients: clients, clockWindow: clockWindow, maximumPacketsPerWindow: maximumPacketsPerWindow)
        seen = previous.seen.filter { self.clients[$0.key] != nil }
        prunedBefore = previous.prunedBefore
        forgottenBefore = max(previous.forgottenBefore, previous.prunedBefore)
    }

    /// The window in whole seconds, never negative.
    private var windowSeconds: Int64 { max(0, clockWindow.wholeSeconds) }

    /// `packet − now` in seconds, saturated to the range of Int64 instead of overflowing.
    static func skew(_ timestamp: Int64, from now: WallTime) -> Int64 {
        timestamp.subtractingSaturating(now.secondsSinceEpoch)
    }

    /// The oldest timestamp still inside the window at `now` (saturating).
    private func oldestInWindow(_ now: WallTime) -> Int64 {
        now.secondsSinceEpoch.subtractingSaturating(windowSeconds)
    }

    /// Replaces the client list (a reload: added clients work at once, removed ones are refused);
    /// the nonce memory of clients that remain is kept.
    public mutating func replaceClients(_ newClients: [SPAv2Client]) {
        clients = Dictionary(newClients.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        seen = seen.filter { clients[$0.key] != nil }
    }

    /// Checks `bytes`, which arrived from `source` at wall time `now`, for rule `rule`
    /// (the rule whose knock port it reached); `ruleAllowsAddress` says whether that rule lets
    /// packets name another address.
    public mutating func verify(
        _ bytes: some Collection<UInt8>, source: PeerAddress, rule: RuleName, ruleAllowsAddress: Bool, now: WallTime
    ) -> Result<Grant, Rejection> {
        let packet: SPAv2.Packet
        switch SPAv2.decode(bytes) {
        case .success(let decoded): packet = decoded
        case .failure(let error): return .failure(.malformed(error))
        }
        let message = packet.message
        guard let client = clients[message.clientID] else { return .failure(.unknownClient(message.clientID)) }
        // Cheap checks first: an unauthenticated packet may end here, but it changes nothing.
        let skew = Self.skew(message.timestamp, from: now)
        guard skew.magnitude <= UInt64(windowSeconds), message.timestamp >= forgottenBefore else {
            return .failure(.outsideClockWindow(client: client.id, skew: skew))
        }
        guard message.rule == rule, client.rules.contains(rule) else {
            return .failure(.ruleNotAllowed(client: client.id, rule: message.rule))
        }
        var address = source
        if let named = message.address, named != source {
            guard client.mayNameAddress && ruleAllowsAddress else { return .failure(.addressNotAllowed(client: client.id)) }
            address = named
        }
        guard client.key.isValid(packet) else { return .failure(.badAuthenticator(client: client.id)) }
        // Authenticated from here on: only now may the packet touch the nonce memory and the rate limit.
        prune(clientID: client.id, now: now)
        var used = seen[client.id] ?? []
        if used.contains(where: { $0.nonce == message.nonce }) { return .failure(.replayed(client: client.id)) }
        guard used.count < maximumPacketsPerWindow else { return .failure(.rateLimited(client: client.id)) }
        used.append((message.nonce, message.timestamp))
        seen[client.id] = used
        return .success(Grant(clientID: client.id, rule: rule, address: address, nonce: message.nonce))
    }

    /// Forgets nonces whose timestamps have left the window (they can no longer pass the clock check).
    public mutating func prune(now: WallTime) {
        let oldest = oldestInWindow(now)
        markPruned(oldest)
        for clientID in seen.keys { prune(clientID: clientID, oldest: oldest) }
    }

    private mutating func prune(clientID: String, now: WallTime) {
        let oldest = oldestInWindow(now)
        markPruned(oldest)
        prune(clientID: clientID, oldest: oldest)
    }

    private mutating func markPruned(_ oldest: Int64) {
        prunedBefore = max(prunedBefore, oldest)
        // Once the window has moved past the mark, the clock check alone refuses what it refused.
        if oldest >= forgottenBefore { forgottenBefore = Int64.min }
    }

    private mutating func prune(clientID: String, oldest: Int64) {
        seen[clientID]?.removeAll { $0.timestamp < oldest }
        if seen[clientID]?.isEmpty == true { seen[clientID] = nil }
    }

    /// The remembered nonces, for persisting across restarts.
    public var seenNonces: [SeenNonce] {
        seen.flatMap { client, entries in entries.map { SeenNonce(clientID: client, nonce: $0.nonce, timestamp: $0.timestamp) } }
            .sorted { ($0.timestamp, $0.clientID) < ($1.timestamp, $1.clientID) }
    }

    /// Restores remembered nonces (after a restart), dropping those outside the window.
    public mutating func restore(_ nonces: [SeenNonce], now: WallTime) {
        for entry in nonces where clients[entry.clientID] != nil {
            seen[entry.clientID, default: []].append((entry.nonce, entry.timestamp))
        }
        prune(now: now)
    }
}
