import KnockConfig
import KnockCore
import KnockFleet
import Logging
import ServiceLifecycle

/// The fleet's side of pknockd: commits the intake loop's grants to etcd, deletes revoked ones, and
/// mirrors etcd's grants back (range, then watch; resync after a compaction or an outage).
///
/// Runs on the cooperative pool, never on the intake thread; all it shares with the loop is the
/// ``FleetBridge``. etcd failures are logged, shown in the status and retried; they never end the service.
public struct FleetService: Service, CustomStringConvertible {
    public var description: String { "fleet" }
    private let bridge: FleetBridge
    private let client: EtcdClient
    private let layout: FleetKeyLayout
    private let logger: Logger
    /// How often etcd's health is checked while the watch runs.
    public var probeInterval: Duration = .seconds(1)

    /// Makes the service; throws when the TLS files cannot be read.
    public init(bridge: FleetBridge, logger: Logger) throws {
        let settings = bridge.settings
        self.bridge = bridge
        self.client = try EtcdClient(
            endpoints: EtcdEndpoints(
                urls: settings.endpoints, caFile: settings.caFile, certFile: settings.certFile, keyFile: settings.keyFile,
                username: settings.username, password: settings.password, connectTimeout: Self.connectTimeout(commitTimeout: settings.commitTimeout)))
        self.layout = FleetKeyLayout(prefix: settings.prefix)
        self.logger = logger
    }

    /// How long a connection to one etcd member may take before the next is tried: half the
    /// commit timeout (so a grant still reaches a second member in time), from 50 ms to 2 s.
    public static func connectTimeout(commitTimeout: Duration) -> Duration {
        min(.seconds(2), max(.milliseconds(50), commitTimeout / 2))
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.commitLoop() }
            group.addTask { await self.mirrorLoop() }
            group.addTask {
                try? await gracefulShutdown()
                bridge.finish()
            }
            await group.next()
            group.cancelAll()
        }
        await client.shutdown()
    }

    // MARK: Commits

    private func commitLoop() async {
        for await request in bridge.requests {
            switch request {
            case .commit(let id, let grant):
                bridge.post(await commit(id: id, grant))
            case .revoke(let rule, let peer):
                do {
                    _ = try await client.delete(key: layout.grantKey(rule: rule, peer: peer), timeout: .seconds(2))
                } catch {
                    logger.warning(
                        "fleet: could not delete a revoked grant in etcd; it ends with its lease",
                        metadata: ["knock.rule": "\(rule)", "knock.source": "\(peer)", "error": "\(error)"])
                }
            }
        }
    }

    private func commit(id: UInt64, _ grant: FleetGrant) async -> FleetResult {
        let started = ContinuousClock.now
        let timeout = bridge.settings.commitTimeout
        do {
            let ttls = FleetTransactions.leaseTTLs(of: grant)
            async let grantLease = lease(ttls.grant, timeout: timeout)
            async let replayLease = lease(ttls.replay, timeout: timeout)
            let leases = try await (grantLease, replayLease)
            let remaining = timeout - (ContinuousClock.now - started)
            guard remaining > .zero else { throw FleetError("commit_timeout passed") }
            let token = UInt64.random(in: 1...UInt64.max)
            let request = FleetTransactions.grantTransaction(
                grant, layout: layout, origin: bridge.settings.node, token: token, grantLease: leases.0, replayLease: leases.1)
            let response = try await client.txn(request, timeout: remaining)
            let finished = ContinuousClock.now
            let revision = response.header?.revisionNumber ?? 0
            bridge.updateStatus { status in
                status.commitLatency.record(finished - started)
                status.revision = max(status.revision, revision)
            }
            let replayValue = FleetTransactions.replayValue(origin: bridge.settings.node, token: token)
            guard FleetTransactions.committed(response, replayValue: replayValue) else { return .replayed(id: id) }
            await pendingEchoes.note(revision: revision, at: finished)
            return .committed(id: id)
        } catch {
            logger.debug("fleet: commit failed", metadata: ["knock.rule": "\(grant.rule)", "knock.source": "\(grant.peer)", "error": "\(error)"])
            return .unreachable(id: id, reason: "\(error)", local: bridge.settings.onUnreachable == .local)
        }
    }

    private func lease(_ ttl: Int64?, timeout: Duration) async throws -> Int64? {
        guard let ttl else { return nil }
        return try await client.grantLease(ttl: ttl, timeout: timeout)
    }

    // MARK: Mirror

    private func mirrorLoop() async {
        var backoff: Duration = .milliseconds(250)
        while !Task.isCancelled {
            do {
                let revision = try await resync()
                backoff = .milliseconds(250)
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.watch(from: revision + 1) }
                    group.addTask { await self.probeUntilFailure() }
                    await group.next()
                    group.cancelAll()
                }
            } catch {
                markUnreachable("\(error)")
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
    }

    /// Ranges the grants and hands them to the loop; returns the range's revision.
    private func resync() async throws -> Int64 {
        let response = try await client.range(prefix: layout.grantsPrefix, timeout: .seconds(5))
        var grants: [MirroredGrant: GrantValue] = [:]
        for kv in response.kvs ?? [] {
            guard let (rule, peer) = layout.grant(fromKey: kv.keyText), let value = GrantValue(json: kv.valueBytes) else { continue }
            grants[MirroredGrant(rule: rule, peer: peer)] = value
        }
        let revision = response.header?.revisionNumber ?? 0
        bridge.post(.snapshot(grants))
        let wasConnected = bridge.status.connected
        bridge.updateStatus { status in
            status.connected = true
            status.revision = max(status.revision, revision)
            status.unreachableSince = nil
            status.reason = nil
            status.resyncs += 1
        }
        if !wasConnected {
            logger.notice("fleet: connected to etcd", metadata: ["fleet.revision": "\(revision)", "fleet.grants": "\(grants.count)"])
        }
        return revision
    }

    /// Follows the whole prefix (so lease expiries of replay keys advance the revision too).
    private func watch(from revision: Int64) async {
        do {
            try await client.watch(prefix: layout.prefix + "/", fromRevision: revision) { object in
                logger.trace("fleet: watch message", metadata: ["fleet.message": "\(String(decoding: object, as: UTF8.self))"])
                switch try WatchUpdate.decode(object, layout: layout) {
                case .created:
                    return true
                case .progress(let revision):
                    bridge.updateStatus { $0.revision = max($0.revision, revision) }
                    return true
                case .changes(let changes, let revision):
                    for change in changes {
                        switch change {
                        case .put(let rule, let peer, let value, _): bridge.post(.put(MirroredGrant(rule: rule, peer: peer), value))
                        case .delete(let rule, let peer, _): bridge.post(.delete(MirroredGrant(rule: rule, peer: peer)))
                        }
                    }
                    let lag = await pendingEchoes.reached(revision: revision, at: .now)
                    bridge.updateStatus { status in
                        status.revision = max(status.revision, revision)
                        if let lag { status.watchLag = lag }
                    }
                    return true
                case .compacted(let compacted):
                    logger.warning("fleet: the watch's revision was compacted; resyncing", metadata: ["fleet.compact_revision": "\(compacted)"])
                    return false
                case .canceled(let reason):
                    logger.warning("fleet: etcd ended the watch; resyncing", metadata: ["reason": "\(reason)"])
                    return false
                }
            }
            logger.debug("fleet: the watch stream ended")
        } catch {
            // A member that died or lost its leader: the resync that follows moves to another member,
            // and says etcd is unreachable only when none answers.
            logger.debug("fleet: the watch failed; resyncing", metadata: ["error": "\(error)"])
        }
    }

    /// Reads one key every ``probeInterval``; returns at the first failure (marking the fleet unreachable).
    private func probeUntilFailure() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: probeInterval)
            if Task.isCancelled { return }
            do {
                let response = try await client.range(prefix: layout.prefix + "/health", timeout: .seconds(1))
                let revision = response.header?.revisionNumber ?? 0
                bridge.updateStatus { $0.revision = max($0.revision, revision) }
            } catch {
                markUnreachable("\(error)")
                return
            }
        }
    }

    private func markUnreachable(_ reason: String) {
        let wasConnected = bridge.status.connected
        bridge.updateStatus { status in
            if status.connected || status.unreachableSince == nil { status.unreachableSince = .now }
            status.connected = false
            status.reason = reason
        }
        if wasConnected {
            let consequence = bridge.settings.onUnreachable == .refuse ? "new grants are refused" : "new grants stay on this gateway"
            logger.warning("fleet: etcd unreachable; \(consequence) until it is back", metadata: ["reason": "\(reason)"])
        }
    }

    private let pendingEchoes = CommitEchoes()
}

/// This node's commits waiting for the watch to deliver their revision: the watch lag.
actor CommitEchoes {
    private var waiting: [(revision: Int64, at: ContinuousClock.Instant)] = []

    func note(revision: Int64, at instant: ContinuousClock.Instant) {
        if waiting.count >= 256 { waiting.removeFirst() }
        waiting.append((revision, instant))
    }

    /// The lag of the latest commit the watch reached with `revision`, if any.
    func reached(revision: Int64, at now: ContinuousClock.Instant) -> Duration? {
        var lag: Duration?
        waiting.removeAll { entry in
            guard entry.revision <= revision else { return false }
            lag = now - entry.at
            return true
        }
        return lag
    }
}
