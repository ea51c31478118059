import Foundation
import KnockConfig
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
        /// Firewall batches the kernel refused.
        public var firewallErrors = 0
        /// Failures to save state (the SPA replay memory) to the state directory.
        public var stateErrors = 0
        /// Creates zeroed counters.
        public init() {}
    }

    /// The configuration in force.
    public private(set) var configuration: Configuration
    /// What the service saw and did.
    public private(set) var counters = Counters()
    /// Called with every event, after it is logged (the event stream hangs here).
    public var onEvent: ((KnockEvent) -> Void)?

    private var engine: KnockEngine
    private let executor: any NFTExecutor
    private let logger: Logger

    /// The table layout of the configuration in force.
    public var layout: FirewallLayout {
        FirewallLayout(table: configuration.daemon.table, nflogGroup: configuration.daemon.nflogGroup, rules: configuration.rules)
    }

    /// Where the SPA replay memory is kept across restarts; nil keeps it in memory only.
    private let replayStore: ReplayStore?
    /// Set when an SPA open changed the replay memory; saved once the packet is handled.
    private var replayStateChanged = false

    /// Makes a service for `configuration`; nothing touches the firewall until ``start(now:wallTime:)``.
    public init(configuration: Configuration, executor: any NFTExecutor, logger: Logger, replayStore: ReplayStore? = nil) {
        self.configuration = configuration
        self.engine = KnockEngine(
            rules: configuration.rules, clients: configuration.clients, spa2ClockWindow: configuration.daemon.spa2ClockWindow,
            firstKnockCapacity: configuration.daemon.firstKnockCapacity, fingerprintKey: .random())
        self.executor = executor
        self.logger = logger
        self.replayStore = replayStore
    }

    /// The engine's state, for status listings.
    public var knockEngine: KnockEngine { engine }

    // MARK: - Lifecycle

    /// Installs or adopts the table in one transaction, keeping the peers already allowed in its sets.
    ///
    /// With a replay store, the SPA replay memory saved by an earlier run is restored first, so a
    /// packet captured before a restart still opens nothing.
    public func start(now: Instant, wallTime: WallTime? = nil) throws(NetfilterError) {
        if let replayStore, let wallTime {
            let restored = engine.restoreSPAReplayState(replayStore.load(logger: logger), at: wallTime)
            if restored > 0 { logger.info("SPA replay memory restored", metadata: ["spa.entries": "\(restored)"]) }
            engine.restoreSPAv2Nonces(replayStore.loadNonces(logger: logger), at: wallTime)
        }
        let existing = try existingSets()
        adoptAllowedPeers(existingSets: existing, now: now)
        try install(layout, existingSets: existing)
        logger.notice(
            "pknockd started",
            metadata: [
                "nft.table": "inet \(configuration.daemon.table)",
                "nflog.group": "\(configuration.daemon.nflogGroup)",
                "rules": "\(configuration.rules.map(\.name.rawValue).joined(separator: ","))",
                "peers.adopted": "\(configuration.rules.compactMap { engine.peerCounts(of: $0.name)?.allowed }.reduce(0, +))",
            ])
    }

    /// Switches to `newConfiguration` atomically: the new table layout is applied in one
    /// transaction, allowed peers of rules that remain keep their access. If the kernel refuses the
    /// new layout nothing changes and the error is thrown.
    public func reload(to newConfiguration: Configuration, now: Instant) throws(NetfilterError) {
        let newLayout = FirewallLayout(
            table: newConfiguration.daemon.table, nflogGroup: newConfiguration.daemon.nflogGroup, rules: newConfiguration.rules)
        let existing = try existingSets()
        try install(newLayout, existingSets: existing)
        engine = KnockEngine(
            rules: newConfiguration.rules, clients: newConfiguration.clients,
            spa2ClockWindow: newConfiguration.daemon.spa2ClockWindow,
            firstKnockCapacity: newConfiguration.daemon.firstKnockCapacity, carryingOverFrom: engine)
        configuration = newConfiguration
        logger.info("configuration reloaded", metadata: ["rules": "\(newConfiguration.rules.count)"])
    }

    /// Removes the table and with it every allowed peer.
    public func teardown() throws(NetfilterError) {
        _ = try executor.run(NFTScript(layout.teardownScript()))
    }

    private func install(_ layout: FirewallLayout, existingSets: Set<String>) throws(NetfilterError) {
        do {
            _ = try executor.run(NFTScript(layout.installScript(existingSets: existingSets)))
        } catch {
            logger.error("installing the firewall table failed", metadata: ["nft.table": "\(layout.table)", "error": "\(error)"])
            throw error
        }
    }

    /// The sets our table has now; empty when the table does not exist yet.
    private func existingSets() throws(NetfilterError) -> Set<String> {
        let listing: String
        do {
            listing = try executor.run(NFTScript("list sets table inet \(configuration.daemon.table)"))
        } catch {
            // No such table yet: a first start.
            if error.errno == ENOENT || (error.message ?? "").contains("No such file or directory") { return [] }
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
    /// thread. `events` is the server's business and is refused here.
    public func control(_ request: ControlRequest, now: Instant) -> ControlReply {
        switch request {
        case .status(let name):
            let rules = configuration.rules.filter { name == nil || $0.name == name }
            if let name, rules.isEmpty { return .failure("no rule named \(name)") }
            return ControlReply(ok: true, rules: rules.compactMap { RuleStatusReport($0, engine: engine, now: now) })
        case .open(let name, let peer, let duration):
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
            return ControlReply(ok: true, result: "allowed \(peer) under \(name)")
        case .close(let name, let peer):
            guard engine.revoke(rule: name, peer: peer, at: now, emit: { self.apply($0) }) else {
                return .failure("no rule named \(name)")
            }
            logger.notice("administrator closed access", metadata: ["knock.rule": "\(name)", "knock.source": "\(peer)"])
            return ControlReply(ok: true, result: "revoked \(peer) under \(name)")
        case .events:
            return .failure("events are served by the control server")
        }
    }

    // MARK: - Packets and timers

    /// Handles one packet NFLOG delivered: parse, feed the engine, apply what it decides.
    public func handle(packet bytes: [UInt8], etherType: UInt16, now: Instant, wallTime: WallTime) {
        counters.packets += 1
        switch PacketParser.parse(bytes, family: IPFamily(etherType: etherType)) {
        case .failure(let rejection):
            counters.malformedPackets += 1
            logger.trace("malformed packet ignored", metadata: ["reason": "\(rejection)"])
        case .success(let parsed):
            if parsed.transport == .tcp, parsed.tcpFlags.map({ !$0.isConnectionRequest }) ?? false {
                return
            }
            let knock = parsed.knock(payloadFrom: bytes[...])
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
            try replayStore.saveNonces(engine.spa2SeenNonces)
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
    public var nextDeadline: Instant? { engine.nextDeadline() }

    private func apply(_ effect: KnockEffect) {
        switch effect {
        case .firewall(let command):
            do {
                _ = try executor.run(NFTScript(layout.commandScript(command)))
            } catch {
                counters.firewallErrors += 1
                logger.error("firewall change failed", metadata: ["nft.table": "\(configuration.daemon.table)", "error": "\(error)"])
            }
        case .event(let event):
            if case .allowed = event.kind, configuration.rules.contains(where: { $0.name == event.rule && ($0.spa != nil || $0.spa2 != nil) }) {
                replayStateChanged = true
            }
            record(event)
            onEvent?(event)
        }
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
        case .didNotMatch, .badMAC, .blocked, .refusedFull:
            counters.rejected += 1
            (level, message) = (.debug, "knock rejected")
        case .timeExceeded, .evicted:
            counters.expired += 1
            (level, message) = (.debug, "attempt forgotten")
        }
        logger.log(level: level, message, metadata: Self.metadata(for: event))
    }

    private static func metadata(for event: KnockEvent) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["knock.rule": "\(event.rule)", "knock.source": "\(event.peer)"]
        if let client = event.client { metadata["knock.client"] = "\(client)" }
        if let rejection = event.spa2Rejection { metadata["spa2.reason"] = "\(rejection)" }
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
