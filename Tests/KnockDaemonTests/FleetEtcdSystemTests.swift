import Foundation
import KnockConfig
import KnockCore
import KnockDaemon
import KnockFleet
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The fleet service against a real etcd (Debian's etcd-server), started on loopback with a scratch
/// data directory and stopped by its PID.
///
/// Opt-in, like the root-only system tests: `PKNOCK_ETCD_TESTS=1 swift test --filter FleetEtcdSystemTests`
/// (needs /usr/bin/etcd). In the whole suite the CPU-heavy tests starve the two-thread cooperative pool
/// for minutes, and these wait on real I/O.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["PKNOCK_ETCD_TESTS"] == "1" && FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd"),
        "set PKNOCK_ETCD_TESTS=1 (needs etcd-server)"),
    .serialized)
struct FleetEtcdSystemTests {
    /// etcd members on 127.0.0.1 (one, or a cluster of several), each stopped by its PID.
    final class LocalEtcd {
        var processes: [Process] = []
        let directory: String
        var clientURLs: [String] = []
        var clientURL: String { clientURLs[0] }

        init(members: Int = 1) throws {
            directory = NSTemporaryDirectory() + "pknock-etcd-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let base = Int.random(in: 200...290) * 100
            let peers = (0..<members).map { "m\($0)=http://127.0.0.1:\(base + 10 * $0 + 1)" }.joined(separator: ",")
            for member in 0..<members {
                let clientURL = "http://127.0.0.1:\(base + 10 * member)"
                let peerURL = "http://127.0.0.1:\(base + 10 * member + 1)"
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
                process.arguments = [
                    "--name", "m\(member)", "--data-dir", directory + "/m\(member)", "--listen-client-urls", clientURL,
                    "--advertise-client-urls", clientURL, "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
                    "--initial-cluster", peers, "--log-level", "error",
                ]
                process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
                process.standardError = FileHandle(forWritingAtPath: "/dev/null")
                try process.run()
                processes.append(process)
                clientURLs.append(clientURL)
            }
        }

        /// SIGKILL: a member that lost its peers takes seconds to stop on SIGTERM.
        func stop(member: Int) {
            let process = processes[member]
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }

        func stop() {
            for member in processes.indices { stop(member: member) }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    let ssh = RuleName(rawValue: "SSH")!
    let peer = PeerAddress("192.0.2.10")!

    /// The results the service posts, kept in order across calls of ``next(_:matching:within:)``.
    final class Results {
        var backlog: [FleetResult] = []
    }

    /// The first result `matching`, waited for up to `bound` (not a timing assert: a missing result fails).
    func next(_ bridge: FleetBridge, _ results: Results, matching: (FleetResult) -> Bool, within bound: Duration = .seconds(60)) async
        -> FleetResult?
    {
        let deadline = ContinuousClock.now + bound
        while true {
            bridge.drain { results.backlog.append($0) }
            if let index = results.backlog.firstIndex(where: matching) { return results.backlog.remove(at: index) }
            if ContinuousClock.now >= deadline { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("no such result; seen: \(results.backlog)")
        return nil
    }

    func settings(_ url: String, node: String = "gw-a") -> FleetSettings {
        var settings = FleetSettings(endpoints: [url], node: node)
        settings.prefix = "/pk\(UInt32.random(in: 0...UInt32.max))"
        settings.commitTimeout = .seconds(2)
        return settings
    }

    @Test func commitsMirrorsRefusesReplaysAndDeletes() async throws {
        let etcd = try LocalEtcd()
        defer { etcd.stop() }
        // The first endpoint refuses connections: every call moves on to the live one.
        var twoEndpoints = settings(etcd.clientURL)
        twoEndpoints.endpoints = ["http://127.0.0.1:9", etcd.clientURL]
        let bridge = FleetBridge(settings: twoEndpoints, wake: nil)
        let results = Results()
        let service = try FleetService(bridge: bridge, logger: Self.logger)
        try await running(service) {
            // The first resync (an empty prefix) says etcd answers.
            let snapshot = await next(bridge, results, matching: { if case .snapshot = $0 { true } else { false } }, within: .seconds(120))
            #expect(snapshot == .snapshot([:]))

            let grant = FleetGrant(
                rule: ssh, peer: peer, expires: Int64(Date().timeIntervalSince1970) + 60, ttlSeconds: 60,
                replayKey: .spa2(nonce: [1, 2, 3]), replayTTLSeconds: 120, grantProtocol: .spa2)
            #expect(bridge.submit(.commit(id: 1, grant)))
            #expect(await next(bridge, results, matching: { if case .committed = $0 { true } else { false } }) == .committed(id: 1))
            let put = await next(bridge, results, matching: { if case .put = $0 { true } else { false } })
            guard case .put(let mirrored, let value) = put else {
                Issue.record("the watch did not deliver the grant: \(String(describing: put))")
                return
            }
            #expect(mirrored == MirroredGrant(rule: ssh, peer: peer))
            #expect(value == GrantValue(expires: grant.expires, origin: "gw-a", protocol: .spa2))

            // The same nonce again (a replay at any gateway of the fleet): the transaction's compare fails.
            #expect(bridge.submit(.commit(id: 2, grant)))
            let replayed = await next(bridge, results, matching: { if case .replayed = $0 { true } else if case .committed = $0 { true } else { false } })
            #expect(replayed == .replayed(id: 2))

            #expect(bridge.submit(.revoke(rule: ssh, peer: peer)))
            let deleted = await next(bridge, results, matching: { if case .delete = $0 { true } else { false } })
            #expect(deleted == .delete(MirroredGrant(rule: ssh, peer: peer)))

            let status = bridge.status
            #expect(status.connected && status.revision > 0 && status.resyncs >= 1)
            #expect(status.commitLatency.count == 2)
            #expect(status.watchLag != nil)
        }
    }

    @Test func anUnreachableEtcdRefusesWithinTheCommitTimeout() async throws {
        // A loopback port nothing listens on: connections are refused.
        var unreachable = settings("http://127.0.0.1:9")
        unreachable.commitTimeout = .milliseconds(300)
        let bridge = FleetBridge(settings: unreachable, wake: nil)
        let results = Results()
        let service = try FleetService(bridge: bridge, logger: Self.logger)
        try await running(service) {
            let grant = FleetGrant(rule: ssh, peer: peer, expires: nil, ttlSeconds: nil, replayKey: nil, replayTTLSeconds: 0, grantProtocol: .knock)
            #expect(bridge.submit(.commit(id: 7, grant)))
            let result = await next(bridge, results, matching: { if case .unreachable = $0 { true } else if case .committed = $0 { true } else { false } })
            guard case .unreachable(let id, let reason, let local) = result else {
                Issue.record("expected a refusal, got \(String(describing: result))")
                return
            }
            #expect(id == 7 && !local && !reason.isEmpty)
            #expect(!bridge.status.connected)
            #expect(bridge.status.report().text.hasPrefix("fleet: node gw-a, unreachable since "))
        }
    }

    /// The watch asks for a leader (`Grpc-Metadata-Hasleader`): a member cut off from its cluster's
    /// leader refuses it instead of serving a watch that would never see another node's grant.
    @Test func aMemberWithoutALeaderRefusesTheWatch() async throws {
        let etcd = try LocalEtcd(members: 3)
        defer { etcd.stop() }
        let client = try EtcdClient(endpoints: EtcdEndpoints(urls: [etcd.clientURL]))
        // Wait for the cluster to serve (a bounded number of tries).
        var ready = false
        for _ in 0..<150 where !ready {
            ready = (try? await client.range(prefix: "/pk/", timeout: .seconds(1))) != nil
            if !ready { try? await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(ready, "the cluster never answered")
        etcd.stop(member: 1)
        etcd.stop(member: 2)
        // The member notices the lost leader after its election timeout (1 s by default); retried a bounded number of times.
        var refusal: String?
        for _ in 0..<20 where refusal == nil {
            do {
                try await client.watch(prefix: "/pk/", fromRevision: 1) { object in
                    _ = try WatchUpdate.decode(object, layout: FleetKeyLayout(prefix: "/pk"))
                    return false
                }
                try? await Task.sleep(for: .milliseconds(500))
            } catch {
                refusal = "\(error)"
            }
        }
        #expect(refusal?.contains("no leader") == true, "\(String(describing: refusal))")
        await client.shutdown()
    }

    /// Calls `range` at `url` until the member answers (a bounded number of tries); whether it did.
    func answers(_ url: String) async throws -> Bool {
        let client = try EtcdClient(endpoints: EtcdEndpoints(urls: [url]))
        var answered = false
        for _ in 0..<150 where !answered {
            answered = (try? await client.range(prefix: "/pk/", timeout: .seconds(1))) != nil
            if !answered { try? await Task.sleep(for: .milliseconds(100)) }
        }
        await client.shutdown()
        return answered
    }

    /// The member a client last used dies (SIGKILL: its port refuses connections).
    ///
    /// The next call,
    /// with less time than the HTTP client's connect timeout, moves on to a live member instead of
    /// retrying the dead one until its deadline; a grant transaction sent twice (its answer lost)
    /// knows its own commit, and another commit of the same replay key is a replay.
    @Test func aDeadMemberCostsOneRefusedConnectionAndATransactionSentAgainKnowsItsOwnCommit() async throws {
        let etcd = try LocalEtcd(members: 3)
        defer { etcd.stop() }
        #expect(try await answers(etcd.clientURLs[0]), "the cluster never answered")
        let client = try EtcdClient(endpoints: EtcdEndpoints(urls: etcd.clientURLs))
        do {
            try await afterTheFirstMemberDies(etcd, client)
        } catch {
            Issue.record("\(error)")
        }
        await client.shutdown()
    }

    func afterTheFirstMemberDies(_ etcd: LocalEtcd, _ client: EtcdClient) async throws {
        _ = try await client.range(prefix: "/pk/", timeout: .seconds(2))  // answered by m0, the first endpoint
        etcd.stop(member: 0)
        #expect(try await answers(etcd.clientURLs[1]), "m1 and m2 never elected a leader")

        let started = ContinuousClock.now
        _ = try await client.range(prefix: "/pk/", timeout: .milliseconds(500))
        #expect(ContinuousClock.now - started < .milliseconds(500))

        let layout = FleetKeyLayout(prefix: "/pk\(UInt32.random(in: 0...UInt32.max))")
        let grant = FleetGrant(
            rule: ssh, peer: peer, expires: nil, ttlSeconds: nil, replayKey: .spa2(nonce: [7, 7]), replayTTLSeconds: 60, grantProtocol: .spa2)
        let request = FleetTransactions.grantTransaction(grant, layout: layout, origin: "gw-a", token: 0xa1, grantLease: nil, replayLease: nil)
        let own = FleetTransactions.replayValue(origin: "gw-a", token: 0xa1)
        let first = try await client.txn(request, timeout: .milliseconds(500))
        #expect(first.succeeded == true && FleetTransactions.committed(first, replayValue: own))
        let again = try await client.txn(request, timeout: .milliseconds(500))
        #expect(again.succeeded != true && FleetTransactions.committed(again, replayValue: own))
        let other = FleetTransactions.grantTransaction(grant, layout: layout, origin: "gw-c", token: 0xc3, grantLease: nil, replayLease: nil)
        let replay = try await client.txn(other, timeout: .milliseconds(500))
        #expect(!FleetTransactions.committed(replay, replayValue: FleetTransactions.replayValue(origin: "gw-c", token: 0xc3)))
    }

    /// Runs `service` while `body` runs, then shuts it down gracefully and waits for it.
    func running(_ service: FleetService, _ body: () async -> Void) async throws {
        try await testGracefulShutdown { shutdown in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.run() }
                await body()
                shutdown.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    static var logger: Logger {
        Logger(label: "fleet-test") { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["PKNOCK_TEST_DEBUG"] == nil ? .critical : .trace
            return handler
        }
    }
}
