import KnockConfig
import KnockCore
import KnockFleet
import Logging

/// The intake loop's half of the fleet: grants held until etcd has them, the mirror's changes
/// applied, the grants made while etcd was unreachable (`on_unreachable = "local"`).
///
/// Owned by the ``KnockService`` and used only on the intake thread.
public final class FleetLink {
    /// A grant waiting for its transaction.
    struct Pending {
        var command: FirewallCommand
        var event: KnockEvent
    }

    /// The queues to and from the fleet service.
    public let bridge: FleetBridge
    private var nextID: UInt64 = 1
    var pending: [UInt64: Pending] = [:]
    private var held: FirewallCommand?
    /// Set around `pknock open`: its grant goes to etcd as `admin`.
    var adminOpen = false
    /// Set while the mirror applies etcd's changes: nothing goes back to etcd.
    var mirroring = false
    /// Grants made here while etcd was unreachable; a resync keeps them.
    var localOnly: Set<MirroredGrant> = []
    /// The grants in force in the kernel (committed here or mirrored), with when each ends (nil: no
    /// autoclose): a refused re-knock of a peer already allowed keeps the earlier grant.
    var inForce: [MirroredGrant: Instant?] = [:]
    /// When the last refused-grant warning went out, and how many were not logged since.
    var lastRefusalWarning: Instant?
    var refusalsSinceWarning = 0
    /// The shortest time between two refused-grant warnings.
    public static let refusalWarningInterval: Duration = .seconds(10)

    init(bridge: FleetBridge) { self.bridge = bridge }

    /// Whether `command` waits for the fleet (a grant); a revoke is applied at once and sent to etcd.
    func holds(_ command: FirewallCommand) -> Bool {
        guard !mirroring else { return false }
        switch command {
        case .allow:
            held = command
            return true
        case .revoke(let rule, let peer):
            localOnly.remove(MirroredGrant(rule: rule, peer: peer))
            inForce[MirroredGrant(rule: rule, peer: peer)] = nil
            _ = bridge.submit(.revoke(rule: rule, peer: peer))
            return false
        }
    }

    /// Whether `event` waits with its grant: the `allowed` event of a held grant is queued for the
    /// fleet service with it (a full queue refuses the grant on the next turn of the loop).
    func holds(_ event: KnockEvent, service: KnockService) -> Bool {
        guard !mirroring, case .allowed(let until) = event.kind, let command = held,
            case .allow(let rule, let peer, _) = command, rule == event.rule, peer == event.peer
        else { return false }
        held = nil
        let id = nextID
        nextID += 1
        pending[id] = Pending(command: command, event: event)
        let grant = service.fleetGrant(for: event, until: until, admin: adminOpen)
        if !bridge.submit(.commit(id: id, grant)) {
            bridge.post(.unreachable(id: id, reason: "the fleet queue is full", local: false))
        }
        return true
    }

    /// Whether a grant of `rule` to `peer` waits for its transaction.
    func isPending(_ grant: MirroredGrant) -> Bool {
        pending.values.contains { $0.event.rule == grant.rule && $0.event.peer == grant.peer }
    }
}

extension KnockService {
    /// Holds grants for the fleet from now on: each is applied only once etcd has it.
    public func attachFleet(_ bridge: FleetBridge) {
        fleet = FleetLink(bridge: bridge)
    }

    /// The fleet's record of the grant `event` announces.
    func fleetGrant(for event: KnockEvent, until: Instant?, admin: Bool) -> FleetGrant {
        let wall = DaemonLoop.wallTime().secondsSinceEpoch
        let ttl = until.map { max(0, ($0 - event.time).components.seconds) }
        let window: Int64
        switch event.replayKey {
        case .spa1:
            let skew = configuration.rules.first { $0.name == event.rule }?.spa?.clockSkewMinutes ?? 1
            window = Int64(skew + 1) * 60
        case .spa2: window = 2 * configuration.daemon.spa2ClockWindow.components.seconds
        case .fwknop: window = 2 * configuration.daemon.fwknopClockWindow.components.seconds
        case nil: window = 0
        }
        return FleetGrant(
            rule: event.rule, peer: event.peer, expires: ttl.map { wall + $0 }, ttlSeconds: ttl, replayKey: admin ? nil : event.replayKey,
            replayTTLSeconds: window, grantProtocol: GrantValue.grantProtocol(replayKey: event.replayKey, admin: admin))
    }

    /// Takes the fleet service's results.
    ///
    /// Applies committed grants, rolls refused ones back, and mirrors etcd's changes. Call on the
    /// intake thread.
    public func handleFleetResults(now: Instant, wallTime: WallTime) {
        guard let fleet else { return }
        fleet.bridge.drain { result in handleFleetResult(result, now: now, wallTime: wallTime) }
    }

    func handleFleetResult(_ result: FleetResult, now: Instant, wallTime: WallTime) {
        guard let fleet else { return }
        switch result {
        case .committed(let id):
            guard let held = fleet.pending.removeValue(forKey: id) else { return }
            release(held, now: now)
        case .unreachable(let id, let reason, let local):
            guard let held = fleet.pending.removeValue(forKey: id) else { return }
            if local {
                fleet.localOnly.insert(MirroredGrant(rule: held.event.rule, peer: held.event.peer))
                logger.warning(
                    "grant allowed on this gateway only: fleet unreachable (on_unreachable = \"local\")",
                    metadata: ["knock.rule": "\(held.event.rule)", "knock.source": "\(held.event.peer)", "reason": "\(reason)"])
                release(held, now: now)
            } else {
                refuse(held, now: now, message: "grant refused: fleet unreachable", reason: reason)
            }
        case .replayed(let id):
            guard let held = fleet.pending.removeValue(forKey: id) else { return }
            refuse(held, now: now, message: "grant refused: the packet already opened at a gateway of the fleet (replay)", reason: "replay key exists")
        case .snapshot(let remote):
            reconcile(with: remote, now: now, wallTime: wallTime)
        case .put(let grant, let value):
            guard value.origin != fleet.bridge.settings.node || fleet.localOnly.contains(grant), !fleet.isPending(grant) else { return }
            guard let remaining = Self.remaining(value, wallTime: wallTime) else { return }
            mirrorAllow(grant, remaining: remaining, now: now)
        case .delete(let grant):
            guard !fleet.isPending(grant) else { return }
            mirrorRevoke(grant, now: now)
        }
    }

    /// The time a grant in etcd has left; nil when it has lapsed (`.some(nil)`: no autoclose).
    static func remaining(_ value: GrantValue, wallTime: WallTime) -> Duration?? {
        guard let expires = value.expires else { return .some(nil) }
        let left = expires - wallTime.secondsSinceEpoch
        return left > 0 ? .some(.seconds(left)) : nil
    }

    private func release(_ held: FleetLink.Pending, now: Instant) {
        var command = held.command
        if case .allow(let rule, let peer, _) = command, case .allowed(let until) = held.event.kind, let until {
            // The grant's clock started when the engine decided; the wait for etcd is part of it.
            command = .allow(rule: rule, peer: peer, ttl: max(.seconds(1), until - now))
        }
        applyFirewall(command)
        if case .allowed(let until) = held.event.kind {
            fleet?.inForce.updateValue(until, forKey: MirroredGrant(rule: held.event.rule, peer: held.event.peer))
        }
        deliver(held.event)
    }

    private func refuse(_ held: FleetLink.Pending, now: Instant, message: Logger.Message, reason: String) {
        guard let fleet else { return }
        // The engine took the peer as allowed when it decided; the kernel never got the element. A
        // peer that was already allowed (a re-knock) keeps its earlier grant, which the kernel holds.
        let grant = MirroredGrant(rule: held.event.rule, peer: held.event.peer)
        fleet.mirroring = true
        engine.revoke(rule: grant.rule, peer: grant.peer, at: now) { _ in }
        if let earlier = fleet.inForce[grant] {
            if earlier.map({ $0 > now }) ?? true {
                engine.adoptAllowed(rule: grant.rule, peer: grant.peer, until: earlier)
            } else {
                fleet.inForce[grant] = nil
            }
        }
        fleet.mirroring = false
        counters.rejected += 1
        counters.fleetRefusedGrants += 1
        fleet.refusalsSinceWarning += 1
        if let last = fleet.lastRefusalWarning, now - last < FleetLink.refusalWarningInterval { return }
        logger.warning(
            message,
            metadata: [
                "knock.rule": "\(held.event.rule)", "knock.source": "\(held.event.peer)", "reason": "\(reason)",
                "fleet.refused": "\(fleet.refusalsSinceWarning)", "fleet.refused.total": "\(counters.fleetRefusedGrants)",
            ])
        fleet.lastRefusalWarning = now
        fleet.refusalsSinceWarning = 0
    }

    private func mirrorAllow(_ grant: MirroredGrant, remaining: Duration?, now: Instant) {
        guard configuration.rules.contains(where: { $0.name == grant.rule }) else { return }
        engine.adoptAllowed(rule: grant.rule, peer: grant.peer, until: remaining.map { now + $0 })
        fleet?.inForce.updateValue(remaining.map { now + $0 }, forKey: grant)
        fleet?.mirroring = true
        applyFirewall(.allow(rule: grant.rule, peer: grant.peer, ttl: remaining))
        fleet?.mirroring = false
        logger.info(
            "peer allowed by the fleet",
            metadata: ["knock.rule": "\(grant.rule)", "knock.source": "\(grant.peer)", "grant.ttl": "\(remaining.map { "\($0.wholeSeconds)s" } ?? "none")"])
    }

    private func mirrorRevoke(_ grant: MirroredGrant, now: Instant) {
        guard configuration.rules.contains(where: { $0.name == grant.rule }) else { return }
        fleet?.inForce[grant] = nil
        fleet?.mirroring = true
        engine.revoke(rule: grant.rule, peer: grant.peer, at: now) { effect in apply(effect) }
        fleet?.mirroring = false
    }

    /// Makes the local grants match etcd's (after adopting the kernel's sets at start, and after each
    /// reconnect): grants etcd does not have go, unless granted here while it was unreachable.
    private func reconcile(with remote: [MirroredGrant: GrantValue], now: Instant, wallTime: WallTime) {
        guard let fleet else { return }
        var local: [MirroredGrant: Int64?] = [:]
        for grant in currentGrants(now: now) {
            let key = MirroredGrant(rule: grant.rule, peer: grant.peer)
            if fleet.isPending(key) { continue }
            // updateValue: a subscript assignment of nil (no autoclose) would drop the grant from the map.
            local.updateValue(grant.remaining.map { $0.components.seconds }, forKey: key)
        }
        let known = Set(configuration.rules.map(\.name))
        let plan = FleetMirror.reconcile(
            local: local, remote: remote.filter { known.contains($0.key.rule) }, localOnly: fleet.localOnly,
            wallSeconds: wallTime.secondsSinceEpoch)
        for grant in plan.remove { mirrorRevoke(grant, now: now) }
        for (grant, remaining) in plan.add { mirrorAllow(grant, remaining: remaining.map { .seconds($0) }, now: now) }
        logger.info(
            "fleet: grants reconciled with etcd",
            metadata: ["fleet.grants": "\(remote.count)", "fleet.added": "\(plan.add.count)", "fleet.removed": "\(plan.remove.count)"])
    }
}
