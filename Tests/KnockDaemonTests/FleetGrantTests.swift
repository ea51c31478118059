import Foundation
import InMemoryLogging
import KnockConfig
import KnockControl
import KnockCore
import KnockDaemon
import KnockFleet
import KnockTestSupport
import Logging
import Netfilter
import Testing

/// The grant path with `[fleet]`.
///
/// Grants wait for their etcd transaction, refused ones roll back, etcd's grants are mirrored. The fleet service is played by the test through the ``FleetBridge``.
@Suite struct FleetGrantTests {
    let server = PeerAddress(ipv4: 0xC000_0201)  // 192.0.2.1
    let client = PeerAddress(ipv4: 0xC000_0202)  // 192.0.2.2
    let other = PeerAddress(ipv4: 0xC633_6407)  // 198.51.100.7
    let wall = WallTime(secondsSinceEpoch: 1_758_000_000)
    let ssh = RuleName(rawValue: "SSH")!

    final class Harness {
        let executor = RecordingNFTExecutor()
        let handler = InMemoryLogHandler()
        let service: KnockService
        let bridge: FleetBridge
        var requests: AsyncStream<FleetRequest>.Iterator

        init(onUnreachable: FleetSettings.OnUnreachable = .refuse, rules: [Rule], capacity: Int = 16) throws {
            var configuration = Configuration(rules: rules)
            configuration.daemon.table = "pk_test"
            var settings = FleetSettings(endpoints: ["http://198.51.100.11:2379"], node: "gw-a")
            settings.onUnreachable = onUnreachable
            configuration.fleet = settings
            let handler = handler
            service = KnockService(configuration: configuration, executor: executor, logger: Logger(label: "t", factory: { _ in handler }))
            bridge = FleetBridge(settings: settings, capacity: capacity, wake: nil)
            requests = bridge.requests.makeAsyncIterator()
            service.attachFleet(bridge)
        }

        func next() async -> FleetRequest? { await requests.next() }

        func warnings() -> [String] { handler.entries.filter { $0.level == .warning }.map { "\($0.message)" } }
    }

    func rule(autoclose: Duration? = .seconds(60)) -> Rule {
        Rule(
            name: ssh, knockSequence: [ServicePort(Port(rawValue: 2002)!, .tcp), ServicePort(Port(rawValue: 2001)!, .tcp)],
            maxKnockGap: .seconds(10), autoclose: autoclose, protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])
    }

    func knock(_ harness: Harness, at second: Int64 = 1) {
        for (offset, port) in [UInt16(2002), 2001].enumerated() {
            harness.service.handle(
                packet: PacketBuilder.tcpSYN(from: client, to: server, port: port), etherType: 0x0800, now: .seconds(second + Int64(offset)),
                wallTime: wall)
        }
    }

    func allowed(_ harness: Harness) -> [PeerAddress] {
        harness.service.knockEngine.peers(of: ssh)?.filter { if case .allowed = $0.state { true } else { false } }.map(\.peer) ?? []
    }

    @Test func aGrantWaitsForItsTransactionThenOpens() async throws {
        let harness = try Harness(rules: [rule()])
        try harness.service.start(now: .zero)
        let before = harness.executor.changes.count
        knock(harness)
        // Decided, but the kernel has nothing yet and nothing is logged as allowed.
        #expect(harness.executor.changes.count == before)
        #expect(harness.service.counters.allowed == 0)
        guard case .commit(let id, let grant) = await harness.next() else {
            Issue.record("no commit request")
            return
        }
        #expect(grant.rule == ssh && grant.peer == client && grant.grantProtocol == .knock && grant.replayKey == nil)
        #expect(grant.ttlSeconds == 60)
        harness.bridge.post(.committed(id: id))
        harness.service.handleFleetResults(now: .seconds(3), wallTime: wall)
        // Open for the time left of the 60 s granted at second 2.
        #expect(harness.executor.changes.last?.contains("add element inet pk_test SSH_allowed4 { 192.0.2.2 timeout 59s }") == true)
        #expect(harness.service.counters.allowed == 1)
    }

    @Test func anUnreachableFleetRefusesTheGrantAndRollsThePeerBack() async throws {
        let harness = try Harness(rules: [rule()])
        try harness.service.start(now: .zero)
        let before = harness.executor.changes.count
        knock(harness)
        guard case .commit(let id, _) = await harness.next() else {
            Issue.record("no commit request")
            return
        }
        #expect(allowed(harness) == [client])
        harness.bridge.post(.unreachable(id: id, reason: "etcd unreachable: connection refused", local: false))
        harness.service.handleFleetResults(now: .seconds(3), wallTime: wall)
        #expect(harness.executor.changes.count == before, "a refused grant must not touch the kernel")
        #expect(allowed(harness).isEmpty)
        #expect(harness.service.counters.fleetRefusedGrants == 1 && harness.service.counters.allowed == 0)
        #expect(harness.warnings().contains { $0.contains("grant refused: fleet unreachable") })
        #expect(
            MetricsSnapshot(counters: harness.service.counters, fleet: harness.bridge.status).exposition.contains("\npknock_fleet_refused_grants_total 1\n"))
    }

    /// A peer already allowed knocks again while etcd is unreachable: the new grant is refused, the
    /// earlier one (in the kernel, in etcd) stays, and the engine still lists the peer.
    @Test func aRefusedReKnockKeepsTheEarlierGrant() async throws {
        let harness = try Harness(rules: [rule()])
        try harness.service.start(now: .zero)
        knock(harness)
        guard case .commit(let first, _) = await harness.next() else {
            Issue.record("no commit request")
            return
        }
        harness.bridge.post(.committed(id: first))
        harness.service.handleFleetResults(now: .seconds(3), wallTime: wall)
        let before = harness.executor.changes.count
        knock(harness, at: 10)
        guard case .commit(let second, _) = await harness.next() else {
            Issue.record("no commit request for the re-knock")
            return
        }
        harness.bridge.post(.unreachable(id: second, reason: "timeout", local: false))
        harness.service.handleFleetResults(now: .seconds(12), wallTime: wall)
        #expect(harness.executor.changes.count == before, "neither the refused grant nor a revoke reached the kernel")
        #expect(allowed(harness) == [client])
        let status = harness.service.knockEngine.peers(of: ssh)?.first { $0.peer == client }?.state
        #expect(status == .allowed(until: .seconds(62)), "the earlier grant's end, not the refused one's")
        #expect(harness.service.counters.fleetRefusedGrants == 1)
    }

    @Test func onUnreachableLocalGrantsAnywayAndAResyncKeepsIt() async throws {
        let harness = try Harness(onUnreachable: .local, rules: [rule()])
        try harness.service.start(now: .zero)
        knock(harness)
        guard case .commit(let id, _) = await harness.next() else {
            Issue.record("no commit request")
            return
        }
        harness.bridge.post(.unreachable(id: id, reason: "timeout", local: true))
        harness.bridge.post(.snapshot([:]))
        harness.service.handleFleetResults(now: .seconds(3), wallTime: wall)
        #expect(harness.executor.changes.contains { $0.contains("add element inet pk_test SSH_allowed4 { 192.0.2.2 timeout") })
        #expect(!harness.executor.changes.contains { $0.contains("delete element") && !$0.contains("add element") })
        #expect(allowed(harness) == [client])
        #expect(harness.service.counters.allowed == 1 && harness.service.counters.fleetRefusedGrants == 0)
    }

    @Test func aReplayedSPAIsRefused() async throws {
        let spaRule = Rule(
            name: ssh, knockSequence: [ServicePort(Port(rawValue: 4000)!, .udp)], autoclose: .seconds(60),
            spa: SPASettings(openSecret: Secret("opensecret"), closeSecret: Secret("closesecret")),
            protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])
        let harness = try Harness(rules: [spaRule])
        try harness.service.start(now: .zero, wallTime: wall)
        let payload = SPAKey(format: .sha256, secret: Secret("opensecret")).payload(source: client, epochMinute: wall.epochMinute)
        harness.service.handle(
            packet: PacketBuilder.udp(from: client, to: server, port: 4000, payload: payload), etherType: 0x0800, now: .seconds(1), wallTime: wall)
        guard case .commit(let id, let grant) = await harness.next() else {
            Issue.record("no commit request")
            return
        }
        // The SPA v1 replay key (peer, minute) reaches the transaction.
        #expect(grant.replayKey == .spa1(epochMinute: wall.epochMinute) && grant.grantProtocol == .spa1)
        #expect(grant.replayTTLSeconds >= 60)
        let before = harness.executor.changes.count
        harness.bridge.post(.replayed(id: id))
        harness.service.handleFleetResults(now: .seconds(2), wallTime: wall)
        #expect(harness.executor.changes.count == before)
        #expect(allowed(harness).isEmpty && harness.service.counters.fleetRefusedGrants == 1)
        #expect(harness.warnings().contains { $0.hasPrefix("grant refused:") && $0.contains("replay") })
    }

    @Test func aFullRequestQueueRefusesAtOnceWithoutBlocking() async throws {
        let harness = try Harness(rules: [rule()], capacity: 1)
        try harness.service.start(now: .zero)
        #expect(harness.bridge.submit(.revoke(rule: ssh, peer: other)))  // fills the queue
        knock(harness)
        harness.service.handleFleetResults(now: .seconds(3), wallTime: wall)
        #expect(allowed(harness).isEmpty && harness.service.counters.fleetRefusedGrants == 1)
    }

    @Test func grantsPutElsewhereAreMirroredAndDeletesRevoke() async throws {
        let harness = try Harness(rules: [rule()])
        try harness.service.start(now: .zero)
        let grant = MirroredGrant(rule: ssh, peer: other)
        harness.bridge.post(.put(grant, GrantValue(expires: wall.secondsSinceEpoch + 40, origin: "gw-b", protocol: .spa2)))
        harness.service.handleFleetResults(now: .seconds(5), wallTime: wall)
        #expect(harness.executor.changes.last?.contains("add element inet pk_test SSH_allowed4 { 198.51.100.7 timeout 40s }") == true)
        #expect(allowed(harness) == [other])
        // This node's own puts come back through the watch too; they change nothing.
        let count = harness.executor.changes.count
        harness.bridge.post(.put(grant, GrantValue(expires: wall.secondsSinceEpoch + 40, origin: "gw-a", protocol: .spa2)))
        harness.service.handleFleetResults(now: .seconds(5), wallTime: wall)
        #expect(harness.executor.changes.count == count)
        harness.bridge.post(.delete(grant))
        harness.service.handleFleetResults(now: .seconds(6), wallTime: wall)
        #expect(harness.executor.changes.last?.contains("delete element inet pk_test SSH_allowed4 { 198.51.100.7 }") == true)
        #expect(allowed(harness).isEmpty)
    }

    @Test func aLocalCloseAppliesAtOnceAndDeletesTheKey() async throws {
        let harness = try Harness(rules: [rule()])
        try harness.service.start(now: .zero)
        let reply = harness.service.control(.close(rule: ssh, peer: other), now: .seconds(1))
        #expect(reply == .done("revoked 198.51.100.7 under SSH"))
        #expect(harness.executor.changes.last?.contains("delete element inet pk_test SSH_allowed4 { 198.51.100.7 }") == true)
        #expect(await harness.next() == .revoke(rule: ssh, peer: other))
    }

    @Test func startUpReconcilesAdoptedGrantsWithEtcd() async throws {
        let harness = try Harness(rules: [rule()])
        harness.executor.replies["list sets"] = .success(
            #"{"nftables": [{"set": {"family": "inet", "name": "SSH_allowed4", "table": "pk_test", "type": "ipv4_addr", "flags": ["timeout"]}}]}"#)
        harness.executor.replies["list set inet pk_test SSH_allowed4"] = .success(
            #"{"nftables": [{"set": {"family": "inet", "name": "SSH_allowed4", "table": "pk_test", "type": "ipv4_addr", "flags": ["timeout"], "elem": [{"elem": {"val": "192.0.2.2", "timeout": 60, "expires": 42}}]}}]}"#
        )
        try harness.service.start(now: .seconds(100))
        #expect(allowed(harness) == [client])
        harness.bridge.post(.snapshot([MirroredGrant(rule: ssh, peer: other): GrantValue(expires: nil, origin: "gw-c", protocol: .admin)]))
        harness.service.handleFleetResults(now: .seconds(101), wallTime: wall)
        #expect(allowed(harness) == [other])
        #expect(harness.executor.changes.contains { $0.contains("delete element inet pk_test SSH_allowed4 { 192.0.2.2 }") })
        #expect(harness.executor.changes.last?.contains("add element inet pk_test SSH_allowed4 { 198.51.100.7 }") == true)
    }

    /// A grant without autoclose (no kernel timeout) that etcd no longer has goes too: it is not local-only.
    @Test func startUpRemovesAnAdoptedGrantWithoutTimeoutThatEtcdLacks() async throws {
        let harness = try Harness(rules: [rule(autoclose: nil)])
        harness.executor.replies["list sets"] = .success(
            #"{"nftables": [{"set": {"family": "inet", "name": "SSH_allowed4", "table": "pk_test", "type": "ipv4_addr", "flags": ["timeout"]}}]}"#)
        harness.executor.replies["list set inet pk_test SSH_allowed4"] = .success(
            #"{"nftables": [{"set": {"family": "inet", "name": "SSH_allowed4", "table": "pk_test", "type": "ipv4_addr", "flags": ["timeout"], "elem": ["192.0.2.2"]}}]}"#
        )
        try harness.service.start(now: .seconds(100))
        #expect(allowed(harness) == [client])
        harness.bridge.post(.snapshot([:]))
        harness.service.handleFleetResults(now: .seconds(101), wallTime: wall)
        #expect(allowed(harness).isEmpty)
        #expect(harness.executor.changes.last?.contains("delete element inet pk_test SSH_allowed4 { 192.0.2.2 }") == true)
    }

    @Test func statusCarriesTheFleetLine() throws {
        let harness = try Harness(rules: [rule()])
        harness.bridge.updateStatus { status in
            status.connected = true
            status.revision = 1234
            status.watchLag = .milliseconds(3)
        }
        guard case .status(_, let fleet?) = harness.service.control(.status(rule: nil), now: .zero) else {
            Issue.record("no fleet in the status reply")
            return
        }
        #expect(fleet.text == "fleet: node gw-a, connected, revision 1234, watch lag 3 ms")
        let line = ControlReply.status([], fleet: fleet).line
        #expect(line.contains(#""fleet":{"#) && line.contains(#""watch_lag_ms":3"#) && line.contains(#""node":"gw-a""#))
        #expect(try ControlReply(parsing: Array(line.utf8)) == .status([], fleet: fleet))
        let metrics = MetricsSnapshot(fleet: harness.bridge.status).exposition
        #expect(metrics.contains("\npknock_fleet_connected 1\n") && metrics.contains("\npknock_fleet_revision 1234\n"))
        #expect(metrics.contains("\npknock_fleet_watch_lag_seconds 0.003\n"))
        #expect(metrics.contains("pknock_fleet_commit_latency_seconds_count 0\n") && metrics.contains("\npknock_fleet_resyncs_total 0\n"))
    }

    /// A connection to one member gets half the commit timeout, so a grant that meets an
    /// unreachable member still has time for the next; bounded for very short and long timeouts.
    @Test func aConnectionToOneMemberGetsHalfTheCommitTimeout() {
        #expect(FleetService.connectTimeout(commitTimeout: .milliseconds(200)) == .milliseconds(100))
        #expect(FleetService.connectTimeout(commitTimeout: .milliseconds(10)) == .milliseconds(50))
        #expect(FleetService.connectTimeout(commitTimeout: .seconds(30)) == .seconds(2))
    }
}
