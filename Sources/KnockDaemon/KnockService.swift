import Foundation
import KnockConfig
import KnockControl
import KnockCore
import Logging
import Netfilter

/// pknockd's work between the kernel edges: packets in, engine decisions, firewall batches out.
///
/// The firewall is reached only through an ``NFTExecutor`` and time only through the arguments, so
/// tests drive it with a recording executor and explicit instants. Not safe for concurrent use: the
/// daemon's single intake loop owns it.
public final class KnockService {
    /// Counts of what the service saw and did since it started.
    public struct Counters: Equatable, Sendable {
        /// Packets NFLOG delivered.
        public var packets = 0
        /// Packets that were not well-formed TCP/UDP over IPv4/IPv6 (ignored).
        public var malformedPackets = 0
        /// Peers allowed (sequence completed or SPA opened).
        public var allowed = 0
        /// Knocks that moved a peer forward.
        public var matching = 0
        /// Rejected knocks: wrong port, bad MAC, replayed SPA, refused for a full table.
        public var rejected = 0
        /// Attempts forgotten for time exceeded, or evicted under the tracked-peer cap.
        public var expired = 0
        /// Grants ended by close knocks or autoclose.
        public var closed = 0
        /// Grant and revoke batches the kernel applied.
        public var firewallBatches = 0
        /// Firewall batches the kernel refused.
        public var firewallErrors = 0
        /// Failures to save state (the SPA replay memory) to the state directory.
        public var stateErrors = 0
        /// Changes to the table by other processes that were seen (watch mode).
        public var foreignTableChanges = 0
        /// Times the table was put back after others changed or deleted it (watch mode).
        public var tableRepairs = 0
        /// Grants refused because the rule already allowed its `max_allowed_peers` (also in `rejected`).
        public var refusedGrants = 0
        /// Grants refused because the fleet could not commit them (etcd unreachable, or the SPA packet
        /// already opened at another gateway); also in `rejected`.
        public var fleetRefusedGrants = 0
        /// Creates zeroed counters.
        public init() {}
    }

    /// How the table is kept from other processes' changes.
    public enum TableProtection: String, Sendable {
        /// Owned in the kernel (`owner` + `persist`, Linux ≥ 6.9): other processes can list the table
        /// but not change, flush or delete it, and it outlives pknockd until the next one claims it.
        case owned = "owner"
        /// Watched: pknockd follows nf_tables notifications (and checks periodically) and puts the
        /// table back, with its grants, when someone else changes or deletes it.
        case watched = "watch"
    }

    /// Which protection ``start(now:wallTime:protection:)`` should aim for.
    public enum TableProtectionChoice: String, Sendable, CaseIterable {
        /// Kernel ownership where the kernel offers it, else watching.
        case auto
        /// Watching even where ownership is available (documented for tests of that path).
        case watch
    }

    /// The configuration in force.
    public private(set) var configuration: Configuration
    /// How the table is protected; set by ``start(now:wallTime:protection:)``.
    public private(set) var tableProtection: TableProtection = .watched
    /// Why that protection, in words for the start-up log.
    public private(set) var tableProtectionReason = "not started"
    /// When the last "table changed by another process" warning was logged, and how many repairs
    /// went unlogged since (the warning is rate-limited: a firewall script may run in a loop).
    private var lastRepairWarning: Instant?
    private var repairsSinceWarning = 0
    /// The shortest time between two repair warnings.
    public static let repairWarningInterval: Duration = .seconds(60)
    /// What the service saw and did.
    public internal(set) var counters = Counters()
    /// Called as soon as the kernel has acknowledged a grant or revoke batch (before the event is
    /// logged), with the moment the kernel had applied it where the executor can tell
    /// (``NFTExecutor/lastBatchHandled``): where the intake loop measures its own share of knock → open.
    public var onFirewallApplied: ((ContinuousClock.Instant?) -> Void)?
    /// Called with every event, after it is logged (the event stream hangs here).
    public var onEvent: ((KnockEvent) -> Void)?

    var engine: KnockEngine
    /// Where a knock's payload is copied from the reader's buffer (kept: no allocation per packet).
    private var payloadStorage: [UInt8] = []
    private let executor: any NFTExecutor
    let logger: Logger
    /// The logger's level, read once: the daemon never changes it, and per knock of a flood even the
    /// level check through the log handler is a cost.
    private let logLevel: Logger.Level
    /// The fleet's grant hold and mirror, when `[fleet]` is configured (``attachFleet(_:)``).
    public internal(set) var fleet: FleetLink?

    /// The table layout of the configuration in force; made once per configuration, not per grant.
    public private(set) var layout: FirewallLayout

    /// Where the SPA replay memory is kept across restarts; nil keeps it in memory only.
    private let replayStore: ReplayStore?
    /// Set when an SPA open changed the replay memory; saved once the packet is handled.
    var replayStateChanged = false

    /// The shortest time between two "allowed-peer table full" warnings of one rule.
    public static let refusedGrantWarningInterval: Duration = .seconds(60)
    /// Per rule: when its last refused-grant warning went out, and how many refusals since were not warned about.
    private var refusedGrantWarnings: [RuleName: (last: Instant, suppressed: Int)] = [:]

    /// Makes a service for `configuration`; nothing touches the firewall until ``start(now:wallTime:)``.
    public init(configuration: Configuration, executor: any NFTExecutor, logger: Logger, replayStore: ReplayStore? = nil) {
        self.configuration = configuration
        self.layout = FirewallLayout(configuration: configuration)
        self.engine = KnockEngine(
            rules: configuration.rules, clients: configuration.clients, spa2ClockWindow: configuration.daemon.spa2ClockWindow,
            fwknopClients: configuration.fwknopClients, fwknopClockWindow: configuration.daemon.fwknopClockWindow,
            firstKnockCapacity: configuration.daemon.firstKnockCapacity, fingerprintKey: .random())
        self.executor = executor
        self.logger = logger
        self.logLevel = logger.logLevel
        self.replayStore = replayStore
    }

    /// The engine's state, for status listings.
    public var knockEngine: KnockEngine { engine }

    // MARK: - Lifecycle

    /// Installs or adopts the table in one transaction, keeping the peers already allowed in its sets.
    ///
    /// With a replay store, the SPA replay memory saved by an earlier run is restored first, so a
    /// packet captured before a restart still opens nothing.
    ///
    /// With `protection` `.auto` the table is first claimed with the kernel's `owner` and `persist`
    /// flags (a persistent table a stopped pknockd left is taken over, with no moment where it is
    /// absent). A table without those flags, left by an older pknockd or by the watch mode, is
    /// replaced under a guard table so the protected ports stay closed throughout. Where the kernel
    /// has no `persist` (before 6.9) the table is watched instead. Another live owner is an error.
    public func start(now: Instant, wallTime: WallTime? = nil, protection: TableProtectionChoice = .auto) throws(NetfilterError) {
        if let replayStore, let wallTime {
            let restored = engine.restoreSPAReplayState(replayStore.load(logger: logger), at: wallTime)
            if restored > 0 { logger.info("SPA replay memory restored", metadata: ["spa.entries": "\(restored)"]) }
            let nonces = replayStore.loadNonces(logger: logger)
            engine.restoreSPAv2Nonces(nonces.entries, horizon: nonces.horizon, at: wallTime)
            let digests = replayStore.loadFwknopDigests(logger: logger)
            engine.restoreFwknopDigests(digests.entries, horizon: digests.horizon, at: wallTime)
        }
        var existing = try existingSets()
        adoptAllowedPeers(existingSets: existing ?? [], now: now)
        switch protection {
        case .auto:
            if try claimOwnership(tableExists: existing != nil, now: now) { existing = try existingSets() }
        case .watch:
            tableProtection = .watched
            tableProtectionReason = "watch mode asked for (--table-protection watch)"
        }
        try install(layout, existingSets: existing ?? [])
        logger.notice(
            "pknockd started",
            metadata: [
                "nft.table": "inet \(configuration.daemon.table)",
                "nft.protection": "\(tableProtection.rawValue)",
                "nft.protection.reason": "\(tableProtectionReason)",
                "nflog.group": "\(configuration.daemon.nflogGroup)",
                "rules": "\(configuration.rules.map(\.name.rawValue).joined(separator: ","))",
                "peers.adopted": "\(configuration.rules.compactMap { engine.peerCounts(of: $0.name)?.allowed }.reduce(0, +))",
            ])
    }

    /// Switches to `newConfiguration` atomically: the new table layout is applied in one
    /// transaction, allowed peers of rules that remain keep their access.
    ///
    /// If the kernel refuses the
    /// new layout nothing changes and the error is thrown.
    public func reload(to newConfiguration: Configuration, now: Instant) throws(NetfilterError) {
        let newLayout = FirewallLayout(configuration: newConfiguration)
        let existing = try existingSets() ?? []
        try install(newLayout, existingSets: existing)
        engine = KnockEngine(
            rules: newConfiguration.rules, clients: newConfiguration.clients,
            spa2ClockWindow: newConfiguration.daemon.spa2ClockWindow, fwknopClients: newConfiguration.fwknopClients,
            fwknopClockWindow: newConfiguration.daemon.fwknopClockWindow,
            firstKnockCapacity: newConfiguration.daemon.firstKnockCapacity, carryingOverFrom: engine)
        if newConfiguration.fleet != configuration.fleet {
            logger.warning("[fleet] changes take effect on restart, not on reload")
        }
        configuration = newConfiguration
        layout = newLayout
        logger.info("configuration reloaded", metadata: ["rules": "\(newConfiguration.rules.count)"])
    }

    /// Removes the table and with it every allowed peer.
    ///
    /// A table owned by another live process (a running pknockd) cannot be removed: the error says so.
    public func teardown() throws(NetfilterError) {
        do {
            _ = try executor.run(NFTScript(layout.teardownScript()))
        } catch let error where error.errno == EPERM {
            throw NetfilterError(
                operation: "delete table inet \(configuration.daemon.table)", errno: EPERM,
                message: "a running pknockd owns the table; stop it first (or stop it with --remove-on-exit)")
        }
    }

    // MARK: - Keeping the table

    /// Claims the table with `owner` + `persist`; returns true when the table was replaced (so the
    /// sets must be read again).
    ///
    /// Falls back to watching where the kernel cannot own tables.
    private func claimOwnership(tableExists: Bool, now: Instant) throws(NetfilterError) -> Bool {
        let table = configuration.daemon.table
        let flags: NFTablesNetlink.TableFlags = [.owner, .persist]
        do {
            try executor.claimTable(table, flags: flags)
            tableProtection = .owned
            tableProtectionReason = tableExists ? "took over the persistent table" : "created the table with owner and persist"
            return false
        } catch let error where error.errno == EPERM {
            throw NetfilterError(
                operation: "claim table inet \(table)", errno: EPERM,
                message: "another running process owns the table (another pknockd?); stop it first")
        } catch {
            // EOPNOTSUPP for an existing table: either the kernel lacks the flags, or the table was made
            // without them (the kernel cannot add `persist` to a table). A scratch table tells which.
            if tableExists, error.errno == EOPNOTSUPP, kernelCanOwnTables() {
                try replaceUnownedTable(now: now)
                tableProtection = .owned
                tableProtectionReason = "replaced a table without owner and persist"
                return true
            }
            tableProtection = .watched
            tableProtectionReason = "the kernel cannot keep an owned table (owner and persist need Linux 6.9): watching it instead (\(error))"
            return false
        }
    }

    /// Whether this kernel accepts `owner` + `persist`, tried on a scratch table removed at once.
    private func kernelCanOwnTables() -> Bool {
        let scratch = Self.auxiliaryTableName(configuration.daemon.table, suffix: "_probe")
        do {
            try executor.claimTable(scratch, flags: [.owner, .persist])
        } catch {
            return false
        }
        _ = try? executor.run(NFTScript("delete table inet \(scratch)"))
        return true
    }

    /// Replaces an unowned table by an owned one without a moment of open ports: an owned guard table
    /// with the same rules and grants goes in first, then the old table goes, the new owned table
    /// comes, and the guard goes. (A packet must pass every table, so the guard alone keeps the
    /// protected ports closed while the main table is absent.)
    private func replaceUnownedTable(now: Instant) throws(NetfilterError) {
        let table = configuration.daemon.table
        var guardLayout = layout
        guardLayout.table = Self.auxiliaryTableName(table, suffix: "_guard")
        let grants = currentGrants(now: now)
        try executor.claimTable(guardLayout.table, flags: [.owner, .persist])
        _ = try executor.run(
            NFTScript(guardLayout.installScript(existingSets: [], createTable: false) + guardLayout.restoreAllowedScript(grants)))
        _ = try executor.run(NFTScript(layout.teardownScript()))
        try executor.claimTable(table, flags: [.owner, .persist])
        _ = try executor.run(NFTScript(layout.installScript(existingSets: [], createTable: false) + layout.restoreAllowedScript(grants)))
        _ = try executor.run(NFTScript(guardLayout.teardownScript()))
        logger.notice("replaced the table with one the kernel keeps for pknockd", metadata: ["nft.table": "inet \(table)"])
    }

    /// `<table><suffix>`, cut so it stays a valid table name.
    static func auxiliaryTableName(_ table: String, suffix: String) -> String {
        String(table.prefix(255 - suffix.utf8.count)) + suffix
    }

    /// The grants the engine holds now, with the time each has left (expired ones left out).
    func currentGrants(now: Instant) -> [FirewallLayout.RestoredGrant] {
        var grants: [FirewallLayout.RestoredGrant] = []
        for rule in configuration.rules {
            for status in engine.peers(of: rule.name) ?? [] {
                guard case .allowed(let until) = status.state else { continue }
                if let until, until <= now { continue }
                grants.append(.init(rule: rule.name, peer: status.peer, remaining: until.map { $0 - now }))
            }
        }
        return grants
    }

    /// Puts the table back as the daemon knows it (rules, sets, exactly the engine's grants) in one
    /// transaction, after `changes` by another process; watch mode only (an owned table cannot be
    /// changed by others).
    ///
    /// Failures are counted and logged; the periodic check tries again.
    public func repairTable(after changes: NFTablesNetlink.TableChanges, now: Instant) {
        guard tableProtection == .watched, changes.touched else { return }
        counters.foreignTableChanges += 1
        do {
            // A deleted table has no sets: skip the listing, every millisecond here is an open port.
            let existing = changes.deleted ? [] : try existingSets() ?? []
            _ = try executor.run(NFTScript(layout.installScript(existingSets: existing) + layout.restoreAllowedScript(currentGrants(now: now))))
            counters.tableRepairs += 1
        } catch {
            counters.firewallErrors += 1
            logger.error("putting the table back failed", metadata: ["nft.table": "\(configuration.daemon.table)", "error": "\(error)"])
            return
        }
        repairsSinceWarning += 1
        if let last = lastRepairWarning, now - last < Self.repairWarningInterval { return }
        logger.warning(
            "another process changed or removed the table; pknockd put it back",
            metadata: [
                "nft.table": "inet \(configuration.daemon.table)", "nft.deleted": "\(changes.deleted)",
                "nft.repairs": "\(repairsSinceWarning)", "nft.repairs.total": "\(counters.tableRepairs)",
            ])
        lastRepairWarning = now
        repairsSinceWarning = 0
    }

    /// The last-resort check of watch mode: if the table or its chain is gone (a notification was
    /// missed), put it back.
    ///
    /// Call every few seconds; an owned table is not checked.
    public func verifyTable(now: Instant) {
        guard tableProtection == .watched else { return }
        do {
            _ = try executor.run(NFTScript("list chain inet \(configuration.daemon.table) \(FirewallLayout.chainName)"))
        } catch let error where error.errno == ENOENT || (error.message ?? "").contains("No such file or directory") {
            repairTable(after: .init(touched: true, deleted: true), now: now)
        } catch {
            logger.debug("table check failed", metadata: ["error": "\(error)"])
        }
    }

    private func install(_ layout: FirewallLayout, existingSets: Set<String>) throws(NetfilterError) {
        do {
            _ = try executor.run(
                NFTScript(layout.installScript(existingSets: existingSets, createTable: tableProtection != .owned)))
        } catch {
            logger.error("installing the firewall table failed", metadata: ["nft.table": "\(layout.table)", "error": "\(error)"])
            throw error
        }
    }

    /// The sets our table has now; nil when the table does not exist.
    private func existingSets() throws(NetfilterError) -> Set<String>? {
        let listing: String
        do {
            // Terse: names only, not the elements of kernel-filled watch sets (65,536 under a flood).
            listing = try executor.runTerse(NFTScript("list sets table inet \(configuration.daemon.table)"))
        } catch {
            // No such table yet: a first start.
            if error.errno == ENOENT || (error.message ?? "").contains("No such file or directory") { return nil }
            throw error
        }
        do {
            return try FirewallLayout.setNames(inListing: listing)
        } catch {
            throw NetfilterError(operation: "list sets", errno: nil, message: "unreadable listing: \(error)")
        }
    }

    private func adoptAllowedPeers(existingSets: Set<String>, now: Instant) {
        for rule in configuration.rules {
            for family in [IPFamily.ipv4, .ipv6] {
                let name = FirewallLayout.setName(rule: rule.name, kind: .allowed, family: family)
                guard existingSets.contains(name) else { continue }
                do {
                    let listing = try executor.run(NFTScript("list set inet \(configuration.daemon.table) \(name)"))
                    for element in try FirewallLayout.allowedElements(inListing: listing) {
                        engine.adoptAllowed(rule: rule.name, peer: element.address, until: element.expires.map { now + $0 })
                    }
                } catch {
                    logger.warning("could not read allowed peers", metadata: ["nft.set": "\(name)", "error": "\(error)"])
                }
            }
        }
    }

    // MARK: - Control requests

    /// Answers a control-socket request (`status`, `open`, `close`); called on the intake loop's
    /// thread.
    ///
    /// `events` is the server's business and is refused here.
    public func control(_ request: ControlRequest, now: Instant) -> ControlReply {
        switch request {
        case .status(let name):
            let rules = configuration.rules.filter { name == nil || $0.name == name }
            if let name, rules.isEmpty { return .failure("no rule named \(name)") }
            return .status(rules.compactMap { RuleStatusReport($0, engine: engine, now: now) }, fleet: fleet?.bridge.status.report())
        case .open(let name, let peer, let duration):
            fleet?.adminOpen = true
            defer { fleet?.adminOpen = false }
            var refused = false
            let known = engine.allow(rule: name, peer: peer, for: duration, at: now) { effect in
                if case .event(let event) = effect, event.kind == .refusedFull { refused = true }
                self.apply(effect)
            }
            guard known else { return .failure("no rule named \(name)") }
            if refused { return .failure("rule \(name) already allows its maximum of peers") }
            logger.notice(
                "administrator opened access",
                metadata: ["knock.rule": "\(name)", "knock.source": "\(peer)", "grant.ttl": "\(duration.map { "\($0.wholeSeconds)s" } ?? "rule default")"])
            return .done("allowed \(peer) under \(name)")
        case .close(let name, let peer):
            guard engine.revoke(rule: name, peer: peer, at: now, emit: { self.apply($0) }) else {
                return .failure("no rule named \(name)")
            }
            logger.notice("administrator closed access", metadata: ["knock.rule": "\(name)", "knock.source": "\(peer)"])
            return .done("revoked \(peer) under \(name)")
        case .events:
            return .failure("events are served by the control server")
        }
    }

    // MARK: - Packets and timers

    /// Handles one packet NFLOG delivered: parse, feed the engine, apply what it decides.
    public func handle(packet bytes: [UInt8], etherType: UInt16, now: Instant, wallTime: WallTime) {
        handle(packet: bytes.span, etherType: etherType, now: now, wallTime: wallTime)
    }

    /// ``handle(packet:etherType:now:wallTime:)`` of a slice.
    public func handle(packet bytes: ArraySlice<UInt8>, etherType: UInt16, now: Instant, wallTime: WallTime) {
        handle(packet: bytes.span, etherType: etherType, now: now, wallTime: wallTime)
    }

    /// ``handle(packet:etherType:now:wallTime:)`` of a borrowed view, as the intake loop hands NFLOG
    /// packets over.
    ///
    /// The view is of the reader's receive buffer, parsed in place: no copy, no reference counting,
    /// nothing kept after the call. A payload (UDP) is copied into a buffer the service keeps.
    public func handle(packet bytes: Span<UInt8>, etherType: UInt16, now: Instant, wallTime: WallTime) {
        counters.packets += 1
        switch PacketParser.parse(bytes, family: IPFamily(etherType: etherType)) {
        case .failure(let rejection):
            counters.malformedPackets += 1
            logger.trace("malformed packet ignored", metadata: ["reason": "\(rejection)"])
        case .success(let parsed):
            if parsed.transport == .tcp, parsed.tcpFlags.map({ !$0.isConnectionRequest }) ?? false {
                return
            }
            // A TCP SYN has no payload: the storage (and its exclusive access) is left alone.
            let knock = parsed.payload.isEmpty ? parsed.knock(payloadFrom: []) : parsed.knock(payloadFrom: bytes, storage: &payloadStorage)
            engine.handle(knock, at: now, wallTime: wallTime) { effect in self.apply(effect) }
            // Saved here, not inside `apply`: the engine must not be read while it is mid-change.
            if replayStateChanged { saveReplayState(wallTime: wallTime) }
        }
    }

    /// Writes the SPA replay memory to the replay store, if there is one (also at shutdown).
    public func saveReplayState(wallTime: WallTime) {
        replayStateChanged = false
        guard let replayStore else { return }
        do {
            try replayStore.save(engine.spaReplayState(at: wallTime))
            try replayStore.saveNonces(engine.spa2SeenNonces, horizon: engine.spa2ReplayHorizon)
            try replayStore.saveFwknopDigests(engine.fwknopSeenDigests, horizon: engine.fwknopReplayHorizon)
        } catch {
            counters.stateErrors += 1
            logger.error("saving the SPA replay memory failed", metadata: ["state.file": "\(replayStore.path)", "error": "\(error)"])
        }
    }

    /// Runs the engine's timers; call at ``nextDeadline`` or periodically.
    public func tick(now: Instant, wallTime: WallTime) {
        engine.expire(at: now, wallTime: wallTime) { effect in self.apply(effect) }
    }

    /// When ``tick(now:wallTime:)`` next has work.
    ///
    /// Asked on every wake of the intake loop. The engine is reached in place: reading the stored
    /// property for the call copied the whole engine, retaining and releasing everything in it.
    public var nextDeadline: Instant? { Self.nextDeadline(of: &engine) }

    private static func nextDeadline(of engine: inout KnockEngine) -> Instant? { engine.nextDeadline() }

    func apply(_ effect: KnockEffect) {
        switch effect {
        case .firewall(let command):
            // With a fleet, a grant waits for its etcd transaction (FleetLink); a revoke goes to etcd too.
            if let fleet, fleet.holds(command) { return }
            applyFirewall(command)
        case .event(let event):
            if let fleet, fleet.holds(event, service: self) { return }
            deliver(event)
        }
    }

    /// Applies one firewall command now.
    func applyFirewall(_ command: FirewallCommand) {
        do {
            try executor.apply(layout.commandBatch(command))
            counters.firewallBatches += 1
            onFirewallApplied?(executor.lastBatchHandled)
        } catch {
            counters.firewallErrors += 1
            logger.error("firewall change failed", metadata: ["nft.table": "\(configuration.daemon.table)", "error": "\(error)"])
        }
    }

    /// Logs, counts and publishes one event.
    func deliver(_ event: KnockEvent) {
        if case .allowed = event.kind,
            configuration.rules.contains(where: { $0.name == event.rule && ($0.spa != nil || $0.spa2 != nil || $0.fwknop != nil) })
        {
            replayStateChanged = true
        }
        // An SPA close is remembered too (a captured close packet must not close again after a restart).
        if case .closed = event.kind, event.knock != nil, configuration.rules.contains(where: { $0.name == event.rule && $0.spa != nil }) {
            replayStateChanged = true
        }
        record(event)
        onEvent?(event)
    }

    private func record(_ event: KnockEvent) {
        // Rejections are attack traffic: counted always, logged only at debug, and the metadata is
        // built only when the level is enabled (swift-log takes it as an autoclosure).
        let level: Logger.Level
        let message: Logger.Message
        switch event.kind {
        case .allowed:
            counters.allowed += 1
            (level, message) = (.notice, "peer allowed")
        case .closed:
            counters.closed += 1
            (level, message) = (.notice, "peer closed access")
        case .autoclosed:
            counters.closed += 1
            (level, message) = (.info, "access expired")
        case .matching:
            counters.matching += 1
            (level, message) = (.debug, "knock matched")
        case .refusedFull:
            counters.rejected += 1
            counters.refusedGrants += 1
            warnRefusedGrant(event)
            (level, message) = (.debug, "knock rejected")
        case .didNotMatch, .badMAC, .blocked:
            counters.rejected += 1
            (level, message) = (.debug, "knock rejected")
        case .timeExceeded, .evicted:
            counters.expired += 1
            (level, message) = (.debug, "attempt forgotten")
        }
        guard level >= logLevel else { return }
        logger.log(level: level, message, metadata: Self.metadata(for: event))
    }

    /// A full allowed-peer table locks out legitimate peers (and spoofed sequence completions can fill
    /// it), so the administrator hears of it: a warning at most once per rule per
    /// ``refusedGrantWarningInterval``, carrying the count of refusals not warned about since the last.
    private func warnRefusedGrant(_ event: KnockEvent) {
        if let previous = refusedGrantWarnings[event.rule], event.time - previous.last < Self.refusedGrantWarningInterval {
            refusedGrantWarnings[event.rule]?.suppressed += 1
            return
        }
        let suppressed = refusedGrantWarnings[event.rule]?.suppressed ?? 0
        refusedGrantWarnings[event.rule] = (event.time, 0)
        let limit = configuration.rules.first { $0.name == event.rule }?.maxAllowedPeers
        logger.warning(
            "grant refused: the rule already allows its maximum of peers (max_allowed_peers)",
            metadata: [
                "knock.rule": "\(event.rule)", "knock.source": "\(event.peer)",
                "grant.max_allowed_peers": "\(limit.map { "\($0)" } ?? "?")",
                "warning.suppressed": "\(suppressed)",
            ])
    }

    private static func metadata(for event: KnockEvent) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["knock.rule": "\(event.rule)", "knock.source": "\(event.peer)"]
        if let client = event.client { metadata["knock.client"] = "\(client)" }
        if let rejection = event.spa2Rejection { metadata["spa2.reason"] = "\(rejection)" }
        if let rejection = event.fwknopRejection { metadata["fwknop.reason"] = "\(rejection)" }
        if let knock = event.knock { metadata["knock.port"] = "\(knock)" }
        switch event.kind {
        case .allowed(let until):
            if let until { metadata["grant.ttl"] = "\((until - event.time).wholeSeconds)s" }
        case .matching(let step, let total):
            metadata["knock.step"] = "\(step)/\(total)"
        case .didNotMatch(let expected, let reset):
            metadata["knock.expected"] = "\(expected)"
            metadata["knock.reason"] = reset ? "wrong knock, sequence reset" : "wrong knock"
        case .badMAC: metadata["knock.reason"] = "bad MAC"
        case .blocked: metadata["knock.reason"] = "SPA minute already used (replay or repeat)"
        case .refusedFull: metadata["knock.reason"] = "allowed-peer table full"
        case .timeExceeded: metadata["knock.reason"] = "time between knocks exceeded"
        case .evicted: metadata["knock.reason"] = "evicted under the tracked-peer cap"
        case .closed, .autoclosed: break
        }
        return metadata
    }
}
