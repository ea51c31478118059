/// What the engine asks of the world after a knock or a timer: an event to report, or a firewall change.
public enum KnockEffect: Equatable, Sendable {
    /// Something happened to a peer: log it, stream it, run hooks.
    case event(KnockEvent)
    /// The kernel's view of who is allowed must change.
    case firewall(FirewallCommand)
}

/// Where a tracked peer stands in a rule, for listings like the original's `/proc/net/xt_pknock/NAME`.
public struct PeerStatus: Equatable, Sendable {
    /// The state of a tracked peer.
    public enum State: Equatable, Sendable {
        /// Mid-sequence: `knocksDone` correct knocks so far, the next expected knock, and when the attempt
        /// lapses (nil: the rule has no time limit).
        case matching(knocksDone: Int, next: ServicePort, expires: Instant?)
        /// Allowed until `until` (nil: no autoclose).
        case allowed(until: Instant?)
    }

    /// The peer's address.
    public var peer: PeerAddress
    /// The protocol of the peer's last knock.
    public var transport: TransportProtocol
    /// Matching or allowed.
    public var state: State
}

/// How full the first-knock table is (see ``FirstKnockTable``), for status and metrics.
public struct FirstKnockMemory: Equatable, Sendable {
    /// Entries the table holds at most.
    public var capacity: Int
    /// Slots holding an entry, lapsed ones included (they are reused in place).
    public var occupied: Int
    /// Live entries evicted to make room since the table was made.
    public var evictions: Int
    /// Bytes of entry storage touched so far (16 per slot of every chunk written).
    public var residentBytes: Int
}

/// The knock state machine of every rule: xt_pknock's semantics as a pure value.
///
/// Peers are tracked per (rule, source address): INIT (untracked) → MATCHING → ALLOWED. Inputs are
/// knocks and the time; outputs are ``KnockEffect`` values passed to `emit`. No I/O, no clock.
/// Not safe for concurrent use: owned by one actor in the daemon.
///
/// A first knock leaves only a keyed fingerprint in the ``FirstKnockTable`` shared by all rules;
/// from the second correct knock on, an attempt is kept by full address.
public struct KnockEngine {
    /// How long after a knock the same SYN (same source port and sequence number) or the same
    /// datagram (same source port and payload) counts as its retransmission rather than a new knock.
    public static let retransmissionWindow: Duration = .seconds(3)

    /// One attempt past its first knock; fixed size, no heap storage.
    struct Attempt {
        var knocksDone: UInt8
        var wrongKnocks: UInt8
        var transport: TransportProtocol
        /// ``Knock/retransmissionFingerprint`` of the last correct knock.
        var retransmission: UInt32
        var lastKnock: Instant
    }

    /// An attempt in progress wherever it is kept: the first-knock table or the advanced peers.
    private struct Progress {
        var knocksDone: Int
        var wrongKnocks: Int
        var retransmission: UInt32
        /// When the last correct knock came (to about a millisecond for a first knock).
        var lastKnock: Instant
        var transport: TransportProtocol
        /// The slot in the first-knock table; nil for an advanced attempt.
        var firstKnockSlot: Int?
        /// Whether the rule's time between knocks has run out.
        var lapsed: Bool
    }

    /// One peer's access; fixed size.
    struct Grant {
        var until: Instant?
        var transport: TransportProtocol
    }

    /// The state of one rule.
    struct RuleState {
        let rule: Rule
        let openKey: SPAKey?
        let closeKey: SPAKey?
        /// The rule's part of every first-knock fingerprint: from its name and sequence, so entries
        /// carry over a reload that keeps both, and no other rule's entries match.
        let key: UInt64
        /// How long a first knock is remembered, in first-knock table ticks.
        let firstKnockLifetime: Int64
        /// Peers that made two or more correct knocks: a flood of first knocks cannot evict them.
        var advanced: PeerTable<Attempt>
        var allowed: PeerTable<Grant>
        /// The last epoch minute each peer opened with SPA, so a (peer, minute) opens at most once.
        var spaOpenedMinute: PeerTable<Int64>
        /// The last epoch minute each peer closed with SPA, so a captured close packet closes at most once.
        var spaClosedMinute: PeerTable<Int64>
        /// Whether some grant has another duration than the rule's autoclose (an administrator's
        /// `open --for`), so grants no longer lapse in recency order and expiry must look at all.
        var hasIrregularGrants = false

        init(rule: Rule) {
            self.rule = rule
            self.openKey = rule.spa.map { SPAKey(format: $0.format, secret: $0.openSecret) }
            self.closeKey = rule.spa.flatMap { spa in spa.closeSecret.map { SPAKey(format: spa.format, secret: $0) } }
            var identity: [UInt8] = Array(rule.name.rawValue.utf8)
            for port in rule.knockSequence {
                identity += [0, UInt8(port.port.rawValue >> 8), UInt8(port.port.rawValue & 0xFF), port.transport.rawValue]
            }
            self.key = SipHash.hash64(identity, key: SipHashKey(k0: 0, k1: 0))
            self.firstKnockLifetime = rule.maxKnockGap.map(FirstKnockTable.ticks) ?? FirstKnockTable.unlimitedTicks
            self.advanced = PeerTable(capacity: max(1, rule.maxTrackedPeers))
            self.allowed = PeerTable(capacity: max(1, rule.maxAllowedPeers))
            self.spaOpenedMinute = PeerTable(capacity: max(1, rule.maxAllowedPeers))
            self.spaClosedMinute = PeerTable(capacity: rule.spa?.closeSecret == nil ? 1 : max(1, rule.maxAllowedPeers))
        }

        /// Every attempt past its first knock, stalest first.
        var attempts: [(address: PeerAddress, value: Attempt)] { advanced.entries }
    }

    private var states: [RuleState]
    /// First knocks of every sequence rule.
    private var firstKnocks: FirstKnockTable
    /// Rules indexed by the knock ports they listen on.
    private let rulesByKnockPort: [ServicePort: [Int]]
    /// Rules that must see every packet of a peer mid-sequence (strict, or with a wrong-knock budget)
    /// or of an allowed peer (close knock).
    private let watchingRules: [Int]
    private let closeRules: [Int]
    /// Checks SPA v2 packets for every v2 rule: clients, keys, clock window, nonce memory.
    private var spa2Verifier: SPAv2Verifier
    /// Checks fwknop packets for every fwknop rule: client keys, clock window, replay memory.
    private var fwknopVerifier: FwknopVerifier

    /// How a rule takes the packets on its knock port.
    enum RuleKind {
        case sequence
        case spa
        case spa2(SPAv2RuleSettings)
        case fwknop(FwknopRuleSettings)
    }

    /// Each rule's kind, by index: the knock path reads this small array, not the rule.
    private let kinds: [RuleKind]

    /// The rules, in configuration order.
    public var rules: [Rule] { states.map(\.rule) }

    /// Makes an engine for `rules`, which must be valid (see ``Rule/problems()``).
    ///
    /// When `previous` is given (a reload), allowed peers and SPA replay memory of rules with the same
    /// name are kept, and attempts in progress are kept for rules whose sequence did not change.
    ///
    /// `clients` are the SPA v2 clients (Docs/spa-v2.md), whose packets `spa2ClockWindow` bounds in
    /// time; on a reload their nonce memory is kept whatever changed (the window included, re-pruned
    /// by the new one), and removed clients are refused at once.
    ///
    /// First knocks go to a ``FirstKnockTable`` of `firstKnockCapacity` entries keyed with
    /// `fingerprintKey`: pass a random key in production (the default draws one from
    /// `SystemRandomNumberGenerator`), a fixed one in tests. A reload keeps the previous table and its
    /// key when the capacity is the same, so first knocks of unchanged rules carry over.
    ///
    /// `fwknopClients` are the clients of `spa = "fwknop"` rules, whose packets `fwknopClockWindow`
    /// bounds in time; their replay memory is kept by a reload for the clients that remain.
    public init(
        rules: [Rule], clients: [SPAv2Client] = [], spa2ClockWindow: Duration = .seconds(60),
        fwknopClients: [FwknopClient] = [], fwknopClockWindow: Duration = .seconds(120),
        firstKnockCapacity: Int = FirstKnockTable.defaultCapacity, fingerprintKey: SipHashKey = .random(),
        carryingOverFrom previous: KnockEngine? = nil
    ) {
        var states = rules.map(RuleState.init(rule:))
        var byPort: [ServicePort: [Int]] = [:]
        for (index, rule) in rules.enumerated() {
            for port in Set(rule.knockSequence) { byPort[port, default: []].append(index) }
        }
        if let previous {
            for index in states.indices {
                guard let old = previous.states.first(where: { $0.rule.name == states[index].rule.name }) else { continue }
                for (peer, grant) in old.allowed.entries where !states[index].allowed.isFull {
                    states[index].allowed.upsert(peer, grant)
                }
                for (peer, minute) in old.spaOpenedMinute.entries { states[index].spaOpenedMinute.upsert(peer, minute) }
                for (peer, minute) in old.spaClosedMinute.entries { states[index].spaClosedMinute.upsert(peer, minute) }
                if old.rule.knockSequence == states[index].rule.knockSequence {
                    for (peer, attempt) in old.advanced.entries { states[index].advanced.upsert(peer, attempt) }
                }
            }
        }
        // The nonce memory outlives any reload (a changed clock window included) for clients that remain.
        self.spa2Verifier =
            previous.map { SPAv2Verifier(clients: clients, clockWindow: spa2ClockWindow, carryingOverFrom: $0.spa2Verifier) }
            ?? SPAv2Verifier(clients: clients, clockWindow: spa2ClockWindow)
        self.kinds = rules.map { rule in
            if rule.spa != nil { return .spa }
            if let settings = rule.spa2 { return .spa2(settings) }
            if let settings = rule.fwknop { return .fwknop(settings) }
            return .sequence
        }
        self.fwknopVerifier =
            previous.map { FwknopVerifier(clients: fwknopClients, clockWindow: fwknopClockWindow, carryingOverFrom: $0.fwknopVerifier) }
            ?? FwknopVerifier(clients: fwknopClients, clockWindow: fwknopClockWindow)
        if let previous, previous.firstKnocks.capacity == FirstKnockTable.capacity(forRequested: firstKnockCapacity) {
            self.firstKnocks = previous.firstKnocks
        } else {
            self.firstKnocks = FirstKnockTable(capacity: firstKnockCapacity, key: previous?.firstKnocks.key ?? fingerprintKey)
        }
        self.states = states
        self.rulesByKnockPort = byPort
        self.watchingRules = rules.indices.filter { rules[$0].watchesPeers }
        self.closeRules = rules.indices.filter { rules[$0].spa?.closeSecret != nil }
    }

    // MARK: - Knocks

    /// Feeds one packet to every rule that cares about it.
    ///
    /// `now` is the monotonic time the packet arrived; `wallTime` serves SPA freshness only.
    public mutating func handle(_ knock: Knock, at now: Instant, wallTime: WallTime, emit: (KnockEffect) -> Void) {
        let service = knock.servicePort
        let knockRules = rulesByKnockPort[service]
        if let knockRules {
            for index in knockRules {
                switch kinds[index] {
                case .spa: handleSPA(index, knock, onKnockPort: true, now: now, wallTime: wallTime, emit: emit)
                case .spa2(let settings): handleSPAv2(index, knock, settings: settings, now: now, wallTime: wallTime, emit: emit)
                case .fwknop(let settings): handleFwknop(index, knock, settings: settings, now: now, wallTime: wallTime, emit: emit)
                case .sequence: handleSequence(index, knock, now: now, emit: emit)
                }
            }
        }
        // The original's one-rule form saw every NEW packet: for a watching rule, a packet elsewhere
        // from a peer mid-sequence is a wrong knock (it resets a strict attempt, and counts against
        // the budget of a non-strict one).
        for index in watchingRules where knockRules?.contains(index) != true {
            // A knock on another rule's port comes from any source, the flood's included; for a
            // non-strict rule only its attempts past the first knock pay for a look (the budget is
            // against sweeps, whose other packets come from watched sources and are all counted).
            let attempt: Progress?
            if knockRules != nil && !states[index].rule.strict {
                attempt = states[index].advanced[knock.source] == nil ? nil : progress(index, knock.source, now: now)
            } else {
                attempt = progress(index, knock.source, now: now)
            }
            guard let attempt else { continue }
            if attempt.lapsed {
                removeAttempt(index, knock.source, attempt)
                emit(.event(event(index, knock.source, .timeExceeded, service, now)))
                continue
            }
            wrongKnock(index, knock.source, attempt, service, now: now, emit: emit)
        }
        // A close knock may go to any UDP port the rule covers.
        if knock.transport == .udp {
            for index in closeRules where knockRules?.contains(index) != true {
                guard states[index].allowed[knock.source] != nil,
                    states[index].closeKey?.hasPayloadLength(knock.payload.count) == true
                else { continue }
                handleSPA(index, knock, onKnockPort: false, now: now, wallTime: wallTime, emit: emit)
            }
        }
    }

    private func isTimeExceeded(_ index: Int, lastKnock: Instant, now: Instant) -> Bool {
        guard let gap = states[index].rule.maxKnockGap else { return false }
        return now - lastKnock > gap
    }

    /// The peer's attempt in progress at rule `index`, wherever it is kept.
    private func progress(_ index: Int, _ peer: PeerAddress, now: Instant) -> Progress? {
        var place: FirstKnockTable.Place?
        return progress(index, peer, now: now, place: &place)
    }

    /// ``progress(_:_:now:)``, leaving in `place` where a first knock of `peer` would go when the
    /// first-knock table was looked at.
    private func progress(_ index: Int, _ peer: PeerAddress, now: Instant, place: inout FirstKnockTable.Place?) -> Progress? {
        if let attempt = states[index].advanced[peer] {
            return Progress(
                knocksDone: Int(attempt.knocksDone), wrongKnocks: Int(attempt.wrongKnocks), retransmission: attempt.retransmission,
                lastKnock: attempt.lastKnock, transport: attempt.transport, firstKnockSlot: nil,
                lapsed: isTimeExceeded(index, lastKnock: attempt.lastKnock, now: now))
        }
        let sequence = states[index].rule.knockSequence
        guard sequence.count > 1 else { return nil }
        let found = firstKnocks.place(rule: states[index].key, source: peer)
        place = found
        guard let entry = firstKnocks.find(found, now: now) else { return nil }
        let knockTicks = entry.deadline &- states[index].firstKnockLifetime
        return Progress(
            knocksDone: 1, wrongKnocks: Int(entry.wrongKnocks), retransmission: entry.retransmission,
            lastKnock: Instant(nanoseconds: knockTicks &<< FirstKnockTable.tickShift), transport: sequence[0].transport,
            firstKnockSlot: entry.slot, lapsed: entry.lapsed)
    }

    private mutating func removeAttempt(_ index: Int, _ peer: PeerAddress, _ attempt: Progress) {
        if let slot = attempt.firstKnockSlot {
            firstKnocks.remove(slot)
        } else {
            states[index].advanced.remove(peer)
        }
    }

    /// A knock on another port than the next one.
    ///
    /// Strict: the attempt is over, and the knock is
    /// consumed (it starts nothing, as in the original). Not strict: it counts against the rule's
    /// wrong-knock budget, past which the attempt is dropped.
    private mutating func wrongKnock(
        _ index: Int, _ peer: PeerAddress, _ attempt: Progress, _ service: ServicePort, now: Instant, emit: (KnockEffect) -> Void
    ) {
        let rule = states[index].rule
        let wrong = attempt.wrongKnocks + 1
        let drop = rule.strict || (rule.maxWrongKnocks > 0 && wrong > rule.maxWrongKnocks)
        emit(.event(event(index, peer, .didNotMatch(expected: rule.knockSequence[attempt.knocksDone], reset: drop), service, now)))
        if drop {
            removeAttempt(index, peer, attempt)
            return
        }
        let count = UInt8(min(wrong, Rule.maximumWrongKnocks))
        if let slot = attempt.firstKnockSlot {
            firstKnocks.update(slot, wrongKnocks: count)
        } else if var advanced = states[index].advanced[peer] {
            advanced.wrongKnocks = count
            states[index].advanced.update(peer, advanced)
        }
    }

    private mutating func handleSequence(_ index: Int, _ knock: Knock, now: Instant, emit: (KnockEffect) -> Void) {
        let sequence = states[index].rule.knockSequence
        let service = knock.servicePort
        var place: FirstKnockTable.Place?
        if let attempt = progress(index, knock.source, now: now, place: &place) {
            if attempt.lapsed {
                removeAttempt(index, knock.source, attempt)
                emit(.event(event(index, knock.source, .timeExceeded, service, now)))
                // Carry on below: the knock may start a new attempt.
            } else {
                let done = attempt.knocksDone
                // The same SYN or datagram again is not a knock at all; a new one to that port is.
                let fingerprint = knock.retransmissionFingerprint
                if service == sequence[done - 1], fingerprint != 0, fingerprint == attempt.retransmission,
                    now - attempt.lastKnock <= Self.retransmissionWindow
                {
                    return
                }
                if service == sequence[done] {
                    removeAttempt(index, knock.source, attempt)
                    if done + 1 == sequence.count {
                        grant(index, knock.source, knock.transport, knock: service, now: now, emit: emit)
                    } else {
                        let next = Attempt(
                            knocksDone: UInt8(done + 1), wrongKnocks: UInt8(attempt.wrongKnocks), transport: knock.transport,
                            retransmission: fingerprint, lastKnock: now)
                        if let evicted = states[index].advanced.upsert(knock.source, next) {
                            emit(.event(event(index, evicted.address, .evicted, nil, now)))
                        }
                        emit(.event(event(index, knock.source, .matching(step: done + 1, of: sequence.count), service, now)))
                    }
                    return
                }
                wrongKnock(index, knock.source, attempt, service, now: now, emit: emit)
                return
            }
        }
        guard service == sequence[0] else { return }
        if sequence.count == 1 {
            grant(index, knock.source, knock.transport, knock: service, now: now, emit: emit)
            return
        }
        // A live first knock evicted here has no address to report: the table counts it.
        firstKnocks.insert(
            place ?? firstKnocks.place(rule: states[index].key, source: knock.source),
            deadline: FirstKnockTable.ticks(now) &+ states[index].firstKnockLifetime,
            retransmission: knock.retransmissionFingerprint, now: now)
        emit(.event(event(index, knock.source, .matching(step: 1, of: sequence.count), service, now)))
    }

    private mutating func handleSPA(
        _ index: Int, _ knock: Knock, onKnockPort: Bool, now: Instant, wallTime: WallTime, emit: (KnockEffect) -> Void
    ) {
        guard let spa = states[index].rule.spa else { return }
        let service = knock.servicePort
        let current = wallTime.epochMinute
        let oldest = current.subtractingSaturating(Int64(spa.clockSkewMinutes))
        if onKnockPort, let openKey = states[index].openKey {
            var minute = current
            while minute >= oldest {
                if openKey.verify(knock.payload, source: knock.source, epochMinute: minute) {
                    if let last = states[index].spaOpenedMinute[knock.source], last >= minute {
                        emit(.event(event(index, knock.source, .blocked, service, now)))
                        return
                    }
                    states[index].spaOpenedMinute.upsert(knock.source, minute)
                    grant(index, knock.source, knock.transport, knock: service, now: now, replayKey: .spa1(epochMinute: minute), emit: emit)
                    return
                }
                if minute == oldest { break }
                minute -= 1
            }
        }
        if let closeKey = states[index].closeKey, states[index].allowed[knock.source] != nil {
            var minute = current
            while minute >= oldest {
                if closeKey.verify(knock.payload, source: knock.source, epochMinute: minute) {
                    // A captured close packet replayed later (after the peer reopened) closes nothing.
                    if let last = states[index].spaClosedMinute[knock.source], last >= minute {
                        emit(.event(event(index, knock.source, .blocked, service, now)))
                        return
                    }
                    states[index].spaClosedMinute.upsert(knock.source, minute)
                    states[index].allowed.remove(knock.source)
                    emit(.firewall(.revoke(rule: states[index].rule.name, peer: knock.source)))
                    emit(.event(event(index, knock.source, .closed, service, now)))
                    return
                }
                if minute == oldest { break }
                minute -= 1
            }
        }
        if onKnockPort {
            emit(.event(event(index, knock.source, .badMAC, service, now)))
        }
    }

    private mutating func handleSPAv2(
        _ index: Int, _ knock: Knock, settings: SPAv2RuleSettings, now: Instant, wallTime: WallTime, emit: (KnockEffect) -> Void
    ) {
        let rule = states[index].rule.name
        switch spa2Verifier.verify(
            knock.payload, source: knock.source, rule: rule, ruleAllowsAddress: settings.allowNamedAddress, now: wallTime)
        {
        case .success(let verified):
            grant(
                index, verified.address, knock.transport, knock: knock.servicePort, now: now, client: verified.clientID,
                replayKey: .spa2(nonce: verified.nonce), emit: emit)
        case .failure(let rejection):
            let kind: KnockEvent.Kind
            let client: String?
            switch rejection {
            case .replayed(let id), .rateLimited(let id):
                (kind, client) = (.blocked, id)
            case .badAuthenticator(let id), .outsideClockWindow(let id, _), .ruleNotAllowed(let id, _), .addressNotAllowed(let id):
                (kind, client) = (.badMAC, id)
            case .unknownClient, .malformed:
                (kind, client) = (.badMAC, nil)
            }
            var rejected = event(index, knock.source, kind, knock.servicePort, now)
            rejected.client = client
            rejected.spa2Rejection = rejection
            emit(.event(rejected))
        }
    }

    private mutating func handleFwknop(
        _ index: Int, _ knock: Knock, settings: FwknopRuleSettings, now: Instant, wallTime: WallTime, emit: (KnockEffect) -> Void
    ) {
        let rule = states[index].rule
        switch fwknopVerifier.verify(knock.payload, source: knock.source, rule: rule, settings: settings, now: wallTime) {
        case .success(let verified):
            // The client's timeout, capped by the rule's autoclose.
            var duration = rule.autoclose
            if let asked = verified.clientTimeout { duration = rule.autoclose.map { min($0, asked) } ?? asked }
            grant(
                index, verified.address, knock.transport, knock: knock.servicePort, now: now, client: verified.clientID, duration: duration,
                replayKey: .fwknop(digest: verified.digest), emit: emit)
        case .failure(let rejection):
            let kind: KnockEvent.Kind
            switch rejection {
            case .replayed, .rateLimited: kind = .blocked
            default: kind = .badMAC
            }
            var rejected = event(index, knock.source, kind, knock.servicePort, now)
            rejected.client = rejection.client
            rejected.fwknopRejection = rejection
            emit(.event(rejected))
        }
    }

    private mutating func grant(
        _ index: Int, _ peer: PeerAddress, _ transport: TransportProtocol, knock: ServicePort?, now: Instant,
        client: String? = nil, duration: Duration?? = nil, replayKey: ReplayKey? = nil, emit: (KnockEffect) -> Void
    ) {
        let rule = states[index].rule
        // `duration` (when given) replaces the rule's autoclose for this grant.
        let ttl = duration ?? rule.autoclose
        if ttl != rule.autoclose { states[index].hasIrregularGrants = true }
        let until = ttl.map { now + $0 }
        if states[index].allowed[peer] == nil && states[index].allowed.isFull {
            // Make room only from grants that have already lapsed; never evict a live grant.
            expireGrants(index, now: now, emit: emit)
            if states[index].allowed.isFull {
                emit(.event(event(index, peer, .refusedFull, knock, now)))
                return
            }
        }
        states[index].allowed.upsert(peer, Grant(until: until, transport: transport))
        emit(.firewall(.allow(rule: rule.name, peer: peer, ttl: ttl)))
        var allowed = event(index, peer, .allowed(until: until), knock, now)
        allowed.client = client
        allowed.replayKey = replayKey
        emit(.event(allowed))
    }

    // MARK: - Timers

    /// Forgets attempts past their rule's time limit and grants past autoclose, and prunes SPA replay
    /// memory older than the clock window.
    ///
    /// Call at ``nextDeadline()`` (or any time; it is cheap).
    public mutating func expire(at now: Instant, wallTime: WallTime, emit: (KnockEffect) -> Void) {
        spa2Verifier.prune(now: wallTime)
        fwknopVerifier.prune(now: wallTime)
        for index in states.indices {
            if let gap = states[index].rule.maxKnockGap {
                // First knocks lapse in place: a lapsed entry is a free slot of the first-knock table.
                let lapsed = states[index].advanced.removeStalest { _, attempt in now - attempt.lastKnock > gap }
                for (peer, _) in lapsed {
                    emit(.event(event(index, peer, .timeExceeded, nil, now)))
                }
            }
            expireGrants(index, now: now, emit: emit)
            if let spa = states[index].rule.spa {
                let oldest = wallTime.epochMinute.subtractingSaturating(Int64(spa.clockSkewMinutes))
                _ = states[index].spaOpenedMinute.removeStalest { _, minute in minute < oldest }
                _ = states[index].spaClosedMinute.removeStalest { _, minute in minute < oldest }
            }
        }
    }

    private mutating func expireGrants(_ index: Int, now: Instant, emit: (KnockEffect) -> Void) {
        var lapsed: [(address: PeerAddress, value: Grant)]
        if states[index].hasIrregularGrants {
            lapsed = states[index].allowed.entries.filter { $0.value.until.map { $0 <= now } ?? false }
            for (peer, _) in lapsed { states[index].allowed.remove(peer) }
        } else {
            // Grants of a rule share one autoclose, so the stalest grant lapses first.
            lapsed = states[index].allowed.removeStalest { _, grant in grant.until.map { $0 <= now } ?? false }
        }
        for (peer, _) in lapsed {
            // The kernel's element timeout removes access by itself; this only records it.
            emit(.event(event(index, peer, .autoclosed, nil, now)))
        }
    }

    /// The earliest time at which ``expire(at:wallTime:emit:)`` has something to do, if any.
    ///
    /// The daemon asks on every wake, so it reads the rules' fields in place: a `for state in
    /// states` loop copied each rule's whole state (and retained everything in it) per wake.
    public func nextDeadline() -> Instant? {
        var earliest: Instant?
        func consider(_ instant: Instant) {
            if earliest.map({ instant < $0 }) ?? true { earliest = instant }
        }
        for index in states.indices {
            if let gap = states[index].rule.maxKnockGap, let lastKnock = states[index].advanced.stalestEntry?.value.lastKnock {
                consider(lastKnock + gap + .nanoseconds(1))
            }
            if states[index].hasIrregularGrants {
                for (_, grant) in states[index].allowed.entries { if let until = grant.until { consider(until) } }
            } else if let until = states[index].allowed.stalestEntry?.value.until {
                consider(until)
            }
        }
        return earliest
    }

    // MARK: - Administration and listing

    /// Records that `peer` is already allowed by `rule` until `until` (nil: no autoclose), for example from the
    /// kernel's set after a restart.
    ///
    /// Emits nothing: the firewall already says so.
    public mutating func adoptAllowed(rule name: RuleName, peer: PeerAddress, until: Instant?) {
        guard let index = states.firstIndex(where: { $0.rule.name == name }), !states[index].allowed.isFull else { return }
        states[index].hasIrregularGrants = true
        states[index].allowed.upsert(peer, Grant(until: until, transport: states[index].rule.knockSequence.first?.transport ?? .tcp))
    }

    /// Grants `peer` access under rule `name` for `duration` (nil: the rule's autoclose), as an
    /// administrator's `pknock open` does.
    ///
    /// Returns false for an unknown rule.
    @discardableResult
    public mutating func allow(
        rule name: RuleName, peer: PeerAddress, for duration: Duration?, at now: Instant, emit: (KnockEffect) -> Void
    ) -> Bool {
        guard let index = states.firstIndex(where: { $0.rule.name == name }) else { return false }
        let rule = states[index].rule
        let ttl = duration ?? rule.autoclose
        if ttl != rule.autoclose { states[index].hasIrregularGrants = true }
        if states[index].allowed[peer] == nil && states[index].allowed.isFull {
            expireGrants(index, now: now, emit: emit)
            if states[index].allowed.isFull {
                emit(.event(event(index, peer, .refusedFull, nil, now)))
                return true
            }
        }
        if let attempt = progress(index, peer, now: now) { removeAttempt(index, peer, attempt) }
        let until = ttl.map { now + $0 }
        states[index].allowed.upsert(peer, Grant(until: until, transport: rule.knockSequence.first?.transport ?? .tcp))
        emit(.firewall(.allow(rule: name, peer: peer, ttl: ttl)))
        emit(.event(event(index, peer, .allowed(until: until), nil, now)))
        return true
    }

    /// Takes rule `name`'s access away from `peer`, as an administrator's `pknock close` does.
    ///
    /// Returns false for an unknown rule; revoking a peer that has no access still clears the kernel.
    @discardableResult
    public mutating func revoke(rule name: RuleName, peer: PeerAddress, at now: Instant, emit: (KnockEffect) -> Void) -> Bool {
        guard let index = states.firstIndex(where: { $0.rule.name == name }) else { return false }
        let wasAllowed = states[index].allowed.remove(peer) != nil
        emit(.firewall(.revoke(rule: name, peer: peer)))
        if wasAllowed { emit(.event(event(index, peer, .closed, nil, now))) }
        return true
    }

    /// The SPA v2 nonces seen within the clock window, for keeping across restarts.
    public var spa2SeenNonces: [SPAv2Verifier.SeenNonce] { spa2Verifier.seenNonces }

    /// What the SPA v2 nonce memory may have forgotten, saved beside ``spa2SeenNonces``.
    public var spa2ReplayHorizon: ReplayHorizon { spa2Verifier.horizon }

    /// Restores SPA v2 nonces saved by an earlier run (those outside the window are dropped), with
    /// the saved memory's horizon when the file has one.
    public mutating func restoreSPAv2Nonces(_ nonces: [SPAv2Verifier.SeenNonce], horizon: ReplayHorizon? = nil, at wallTime: WallTime) {
        spa2Verifier.restore(nonces, horizon: horizon, now: wallTime)
    }

    /// The digests of fwknop packets accepted within the clock window, for keeping across restarts.
    public var fwknopSeenDigests: [FwknopVerifier.SeenDigest] { fwknopVerifier.seenDigests }

    /// What the fwknop digest memory may have forgotten, saved beside ``fwknopSeenDigests``.
    public var fwknopReplayHorizon: ReplayHorizon { fwknopVerifier.horizon }

    /// Restores fwknop packet digests saved by an earlier run (those outside the window are dropped),
    /// with the saved memory's horizon when the file has one.
    public mutating func restoreFwknopDigests(_ digests: [FwknopVerifier.SeenDigest], horizon: ReplayHorizon? = nil, at wallTime: WallTime) {
        fwknopVerifier.restore(digests, horizon: horizon, now: wallTime)
    }

    /// The tracked peers of rule `name`, attempts then grants, stalest first; nil for an unknown rule.
    ///
    /// Peers that made only the first knock are not listed: the first-knock table keeps no addresses
    /// (see ``firstKnockMemory``).
    public func peers(of name: RuleName) -> [PeerStatus]? {
        guard let state = states.first(where: { $0.rule.name == name }) else { return nil }
        var result: [PeerStatus] = []
        for (peer, attempt) in state.attempts {
            let done = Int(attempt.knocksDone)
            let expires = state.rule.maxKnockGap.map { attempt.lastKnock + $0 }
            result.append(
                PeerStatus(
                    peer: peer, transport: attempt.transport,
                    state: .matching(knocksDone: done, next: state.rule.knockSequence[done], expires: expires)))
        }
        for (peer, grant) in state.allowed.entries {
            result.append(PeerStatus(peer: peer, transport: grant.transport, state: .allowed(until: grant.until)))
        }
        return result
    }

    /// How many peers rule `name` tracks past their first knock, and allows.
    public func peerCounts(of name: RuleName) -> (matching: Int, allowed: Int)? {
        guard let state = states.first(where: { $0.rule.name == name }) else { return nil }
        return (state.advanced.count, state.allowed.count)
    }

    /// The first-knock table's size and use (shared by all rules).
    public var firstKnockMemory: FirstKnockMemory {
        FirstKnockMemory(
            capacity: firstKnocks.capacity, occupied: firstKnocks.occupied, evictions: firstKnocks.evictions,
            residentBytes: firstKnocks.residentBytes)
    }

    /// How many first knocks are live at `now`, all rules together (scans the table: not per knock).
    public func liveFirstKnocks(at now: Instant) -> Int { firstKnocks.liveCount(at: now) }

    /// Whether rule `name` remembers a live first knock of `peer` at `now`.
    public func remembersFirstKnock(rule name: RuleName, peer: PeerAddress, at now: Instant) -> Bool {
        guard let index = states.firstIndex(where: { $0.rule.name == name }) else { return false }
        return progress(index, peer, now: now).map { $0.firstKnockSlot != nil && !$0.lapsed } ?? false
    }

    private func event(
        _ index: Int, _ peer: PeerAddress, _ kind: KnockEvent.Kind, _ knock: ServicePort?, _ now: Instant
    ) -> KnockEvent {
        KnockEvent(rule: states[index].rule.name, peer: peer, kind: kind, knock: knock, time: now)
    }
}

extension KnockEngine {
    /// Feeds one packet and returns its effects in order (convenient in tests and tools; allocates).
    public mutating func handle(_ knock: Knock, at now: Instant, wallTime: WallTime) -> [KnockEffect] {
        var effects: [KnockEffect] = []
        handle(knock, at: now, wallTime: wallTime) { effects.append($0) }
        return effects
    }

    /// Runs the timers and returns their effects in order (allocates).
    public mutating func expire(at now: Instant, wallTime: WallTime) -> [KnockEffect] {
        var effects: [KnockEffect] = []
        expire(at: now, wallTime: wallTime) { effects.append($0) }
        return effects
    }
}

// MARK: - SPA replay memory across restarts

/// One remembered SPA open or close: `peer` opened (or closed) rule `rule` with a MAC for epoch
/// minute `epochMinute`, so open (or close) packets for that minute or earlier from `peer` do nothing again.
public struct SPAReplayEntry: Hashable, Sendable {
    /// Which secret's packet was used.
    public enum Kind: String, Hashable, Sendable {
        /// An open-secret packet.
        case open
        /// A close-secret packet.
        case close
    }

    /// The SPA rule.
    public var rule: RuleName
    /// The peer that opened or closed.
    public var peer: PeerAddress
    /// The epoch minute of the MAC.
    public var epochMinute: Int64
    /// Open or close.
    public var kind: Kind

    /// Makes an entry.
    public init(rule: RuleName, peer: PeerAddress, epochMinute: Int64, kind: Kind = .open) {
        self.rule = rule
        self.peer = peer
        self.epochMinute = epochMinute
        self.kind = kind
    }
}

extension KnockEngine {
    /// How far ahead of the wall clock a restored replay minute may be (a day): see
    /// ``restoreSPAReplayState(_:at:)``.
    public static let spaReplayFutureToleranceMinutes: Int64 = 24 * 60

    /// The SPA replay memory still relevant at `wallTime`: per SPA rule, each peer's last opened
    /// minute, then each peer's last closed minute, that lie inside the rule's clock window (older
    /// minutes are refused anyway).
    ///
    /// Rules in configuration order, peers stalest first; at most `max_allowed_peers` opens and as
    /// many closes per rule.
    /// What a daemon persists so a captured SPA packet cannot open again after a restart.
    public func spaReplayState(at wallTime: WallTime) -> [SPAReplayEntry] {
        var entries: [SPAReplayEntry] = []
        for state in states {
            guard let spa = state.rule.spa else { continue }
            let oldest = wallTime.epochMinute.subtractingSaturating(Int64(spa.clockSkewMinutes))
            for (peer, minute) in state.spaOpenedMinute.entries where minute >= oldest {
                entries.append(SPAReplayEntry(rule: state.rule.name, peer: peer, epochMinute: minute))
            }
            for (peer, minute) in state.spaClosedMinute.entries where minute >= oldest {
                entries.append(SPAReplayEntry(rule: state.rule.name, peer: peer, epochMinute: minute, kind: .close))
            }
        }
        return entries
    }

    /// Adopts persisted SPA replay memory, for example at start: entries of SPA rules this engine has and
    /// inside the rule's clock window at `wallTime` are kept; a peer already remembered keeps the
    /// later of the two minutes.
    ///
    /// Emits nothing.
    ///
    /// Minutes ahead of `wallTime` (the clock was stepped back since they were saved) are kept up to
    /// ``spaReplayFutureToleranceMinutes``, so the packet stays blocked when the clock catches up;
    /// anything further ahead is dropped rather than lock the peer out for longer.
    ///
    /// Returns how many entries were adopted. Entries beyond a rule's capacity evict the stalest.
    @discardableResult
    public mutating func restoreSPAReplayState(_ entries: [SPAReplayEntry], at wallTime: WallTime) -> Int {
        var adopted = 0
        let current = wallTime.epochMinute
        for entry in entries {
            guard let index = states.firstIndex(where: { $0.rule.name == entry.rule }),
                let spa = states[index].rule.spa,
                entry.epochMinute >= current.subtractingSaturating(Int64(spa.clockSkewMinutes)),
                entry.epochMinute <= current.addingSaturating(Self.spaReplayFutureToleranceMinutes)
            else { continue }
            switch entry.kind {
            case .open:
                if let known = states[index].spaOpenedMinute[entry.peer], known >= entry.epochMinute { continue }
                states[index].spaOpenedMinute.upsert(entry.peer, entry.epochMinute)
            case .close:
                guard spa.closeSecret != nil else { continue }
                if let known = states[index].spaClosedMinute[entry.peer], known >= entry.epochMinute { continue }
                states[index].spaClosedMinute.upsert(entry.peer, entry.epochMinute)
            }
            adopted += 1
        }
        return adopted
    }
}
