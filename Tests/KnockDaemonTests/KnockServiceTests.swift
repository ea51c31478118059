import Foundation
import InMemoryLogging
import KnockConfig
import KnockCore
import KnockDaemon
import KnockTestSupport
import Logging
import Netfilter
import Testing

/// The daemon's service between NFLOG and libnftables, driven with recorded firewall scripts.
@Suite struct KnockServiceTests {
    let server = PeerAddress(ipv4: 0xC000_0201)  // 192.0.2.1
    let client = PeerAddress(ipv4: 0xC000_0202)  // 192.0.2.2
    let wall = WallTime(secondsSinceEpoch: 1_758_000_000)

    func rule(_ name: String, _ ports: [UInt16], autoclose: Duration? = .seconds(60)) -> Rule {
        Rule(
            name: RuleName(rawValue: name)!, knockSequence: ports.map { ServicePort(Port(rawValue: $0)!, .tcp) },
            maxKnockGap: .seconds(10), autoclose: autoclose, protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])
    }

    func makeService(_ rules: [Rule], executor: RecordingNFTExecutor) -> KnockService {
        var configuration = Configuration(rules: rules)
        configuration.daemon.table = "pk_test"
        return KnockService(configuration: configuration, executor: executor, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func syn(_ port: UInt16, from source: PeerAddress? = nil) -> [UInt8] {
        PacketBuilder.tcpSYN(from: source ?? client, to: server, port: port)
    }

    @Test func startInstallsTheTableInOneTransaction() throws {
        let executor = RecordingNFTExecutor()
        executor.replies["list sets"] = .failure(NetfilterError(operation: "nft_run_cmd_from_buffer", errno: 2, message: "No such file or directory"))
        let service = makeService([rule("SSH", [2002, 2001])], executor: executor)
        try service.start(now: .zero)
        #expect(executor.changes.count == 1)
        #expect(executor.changes.first?.contains("add table inet pk_test") == true)
        #expect(executor.changes.first?.contains("add set inet pk_test SSH_allowed4") == true)
    }

    @Test func aCompletedSequenceBecomesOneAllowBatch() throws {
        let executor = RecordingNFTExecutor()
        let service = makeService([rule("SSH", [2002, 2001])], executor: executor)
        try service.start(now: .zero)
        service.handle(packet: syn(2002), etherType: 0x0800, now: .seconds(1), wallTime: wall)
        service.handle(packet: syn(2001), etherType: 0x0800, now: .seconds(2), wallTime: wall)
        #expect(
            executor.changes.last == """
                add element inet pk_test SSH_allowed4 { 192.0.2.2 }
                delete element inet pk_test SSH_allowed4 { 192.0.2.2 }
                add element inet pk_test SSH_allowed4 { 192.0.2.2 timeout 60s }

                """)
        #expect(service.counters.allowed == 1 && service.counters.matching == 1 && service.counters.packets == 2)
    }

    @Test func malformedPacketsAndNonSYNsAreIgnoredAndCounted() throws {
        let executor = RecordingNFTExecutor()
        let service = makeService([rule("SSH", [2002])], executor: executor)
        try service.start(now: .zero)
        service.handle(packet: [0x45, 0, 0], etherType: 0x0800, now: .seconds(1), wallTime: wall)
        var synAck = syn(2002)
        synAck[33] = 0x12  // SYN+ACK: not a connection request
        service.handle(packet: synAck, etherType: 0x0800, now: .seconds(1), wallTime: wall)
        #expect(service.counters.malformedPackets == 1)
        #expect(service.counters.allowed == 0)
        #expect(executor.changes.count == 1, "only the install")
    }

    @Test func startAdoptsPeersAlreadyInTheKernelSets() throws {
        let executor = RecordingNFTExecutor()
        executor.replies["list sets"] = .success(
            #"{"nftables": [{"set": {"family": "inet", "name": "SSH_allowed4", "table": "pk_test", "type": "ipv4_addr", "flags": ["timeout"]}}]}"#)
        executor.replies["list set inet pk_test SSH_allowed4"] = .success(
            #"{"nftables": [{"set": {"family": "inet", "name": "SSH_allowed4", "table": "pk_test", "type": "ipv4_addr", "flags": ["timeout"], "elem": [{"elem": {"val": "198.51.100.7", "timeout": 60, "expires": 42}}]}}]}"#
        )
        let service = makeService([rule("SSH", [2002])], executor: executor)
        try service.start(now: .seconds(100))
        #expect(service.knockEngine.peers(of: RuleName(rawValue: "SSH")!)?.map(\.state) == [.allowed(until: .seconds(142))])
    }

    @Test func aRefusedFirewallChangeIsCountedNotFatal() throws {
        let executor = RecordingNFTExecutor()
        let service = makeService([rule("SSH", [2002])], executor: executor)
        try service.start(now: .zero)
        executor.failChanges = NetfilterError(operation: "nft_run_cmd_from_buffer", errno: 12, message: "out of memory")
        service.handle(packet: syn(2002), etherType: 0x0800, now: .seconds(1), wallTime: wall)
        #expect(service.counters.firewallErrors == 1)
        service.handle(packet: syn(2002, from: PeerAddress(ipv4: 0xC000_0203)), etherType: 0x0800, now: .seconds(2), wallTime: wall)
        #expect(service.counters.firewallErrors == 2)
    }

    @Test func reloadAppliesTheNewLayoutAndKeepsAllowedPeers() throws {
        let executor = RecordingNFTExecutor()
        let service = makeService([rule("SSH", [2002])], executor: executor)
        try service.start(now: .zero)
        service.handle(packet: syn(2002), etherType: 0x0800, now: .seconds(1), wallTime: wall)
        var newConfiguration = service.configuration
        newConfiguration.rules = [rule("SSH", [3003]), rule("WEB", [5000])]
        try service.reload(to: newConfiguration, now: .seconds(2))
        #expect(executor.changes.last?.contains("add set inet pk_test WEB_allowed4") == true)
        #expect(service.knockEngine.peers(of: RuleName(rawValue: "SSH")!)?.map(\.peer) == [client])
    }

    /// Issue #14: the layout is made once per configuration (not per grant); a reload replaces it,
    /// so a grant after a reload goes to the new table and the new rule's set.
    @Test func aGrantAfterAReloadUsesTheNewLayout() throws {
        let executor = RecordingNFTExecutor()
        let service = makeService([rule("SSH", [2002])], executor: executor)
        try service.start(now: .zero)
        var newConfiguration = service.configuration
        newConfiguration.daemon.table = "pk_other"
        newConfiguration.rules = [rule("WEB", [5000])]
        try service.reload(to: newConfiguration, now: .seconds(1))
        service.handle(packet: syn(5000), etherType: 0x0800, now: .seconds(2), wallTime: wall)
        #expect(executor.changes.last?.hasPrefix("add element inet pk_other WEB_allowed4 { 192.0.2.2 }") == true)
        #expect(service.layout == FirewallLayout(configuration: newConfiguration))
    }

    /// Issue 11 item 7: a reload that changed `spa2_clock_window` used to drop the nonce memory.
    @Test func aReloadThatChangesTheSPAv2WindowStillRefusesAReplay() throws {
        let udp = PacketBuilder.udp(from: client, to: server, port: 4500, payload: try Self.docsSPAv2Packet())
        let now = WallTime(secondsSinceEpoch: 1_764_072_005)
        let executor = RecordingNFTExecutor()
        let service = KnockService(
            configuration: try Self.spa2Configuration(window: "60s"), executor: executor,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try service.start(now: .zero)
        service.handle(packet: udp, etherType: 0x0800, now: .seconds(1), wallTime: now)
        #expect(service.counters.allowed == 1)
        try service.reload(to: try Self.spa2Configuration(window: "120s"), now: .seconds(2))
        let changes = executor.changes.count
        service.handle(packet: udp, etherType: 0x0800, now: .seconds(3), wallTime: now)
        #expect(service.counters.allowed == 1)
        #expect(executor.changes.count == changes, "the replay changed the firewall")
    }

    /// A restart with a wider `spa2_clock_window` must not readmit a packet whose nonce the narrower
    /// window already forgot: the nonce file carries the memory's horizon.
    @Test func aRestartWithAWiderSPAv2WindowStillRefusesAForgottenReplay() throws {
        let directory = NSTemporaryDirectory() + "pknock-service-horizon-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func service(window: String) throws -> KnockService {
            KnockService(
                configuration: try Self.spa2Configuration(window: window), executor: RecordingNFTExecutor(),
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), replayStore: ReplayStore(directory: directory))
        }
        let udp = PacketBuilder.udp(from: client, to: server, port: 4500, payload: try Self.docsSPAv2Packet())
        let first = try service(window: "60s")
        try first.start(now: .zero, wallTime: WallTime(secondsSinceEpoch: 1_764_072_005))
        first.handle(packet: udp, etherType: 0x0800, now: .seconds(1), wallTime: WallTime(secondsSinceEpoch: 1_764_072_005))
        #expect(first.counters.allowed == 1)
        // 90 s later the 60 s window has forgotten the nonce; the state is saved at stop.
        let later = WallTime(secondsSinceEpoch: 1_764_072_090)
        first.tick(now: .seconds(90), wallTime: later)
        first.saveReplayState(wallTime: later)
        #expect(first.knockEngine.spa2SeenNonces.isEmpty)
        let restarted = try service(window: "300s")
        try restarted.start(now: .zero, wallTime: later)
        restarted.handle(packet: udp, etherType: 0x0800, now: .seconds(1), wallTime: later)
        #expect(restarted.counters.allowed == 0, "a forgotten nonce opened again under the wider window")
    }

    /// Rule SSH (SPA v2, knock 4500/udp, protects 22) and client laptop (the Docs/spa-v2.md key),
    /// with `spa2_clock_window` = `window`, in table pk_test.
    static func spa2Configuration(window: String) throws -> Configuration {
        var loaded = try ConfigLoader.parseTOML(
            """
            [daemon]
            spa2_clock_window = "\(window)"
            [[rule]]
            name = "SSH"
            spa = "v2"
            knock = ["4500:udp"]
            protect = [22]
            [[client]]
            id = "laptop"
            rules = ["SSH"]
            ed25519_public_key = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
            """, file: "/etc/pknock/pknock.toml", secrets: InMemorySecretSource())
        loaded.daemon.table = "pk_test"
        return loaded
    }

    /// The Ed25519 vector of Docs/spa-v2.md: client laptop, rule SSH, timestamp 1764072000.
    static func docsSPAv2Packet() throws -> [UInt8] {
        let hex =
            "504b4f0202066c6170746f700000000069259a40000102030405060708090a0b0c0d0e0f035353480068c44b125bc1dda9ad6df00d54365d30f4588ed5251e73d3c9e2a9fd0ca182c05b40089b84aefc6fd337e1554c04f094fd3035aef5700b038419f05907db540d"
        var packet: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            packet.append(try #require(UInt8(hex[index..<next], radix: 16)))
            index = next
        }
        return packet
    }

    /// Issue 11 item 6: an SPA close is saved at once, so a restart right after it still remembers it.
    @Test func anSPACloseIsSavedToTheReplayStore() throws {
        let directory = NSTemporaryDirectory() + "pknock-service-replay-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spaRule = Rule(
            name: RuleName(rawValue: "FTP")!, knockSequence: [ServicePort(Port(rawValue: 4000)!, .udp)],
            spa: SPASettings(openSecret: Secret("opensecret"), closeSecret: Secret("closesecret")),
            protectedPorts: [ServicePort(Port(rawValue: 21)!, .tcp)])
        var configuration = Configuration(rules: [spaRule])
        configuration.daemon.table = "pk_test"
        let store = ReplayStore(directory: directory)
        let service = KnockService(
            configuration: configuration, executor: RecordingNFTExecutor(),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), replayStore: store)
        try service.start(now: .zero, wallTime: wall)
        func send(_ secret: String) {
            let payload = SPAKey(format: .sha256, secret: Secret(secret)).payload(source: client, epochMinute: wall.epochMinute)
            service.handle(
                packet: PacketBuilder.udp(from: client, to: server, port: 4000, payload: payload), etherType: 0x0800, now: .seconds(1),
                wallTime: wall)
        }
        send("opensecret")
        send("closesecret")
        let saved = try String(contentsOfFile: store.path, encoding: .utf8)
        #expect(saved.contains("FTP 192.0.2.2 \(wall.epochMinute) close\n"))
    }

    @Test func aReloadTheKernelRefusesChangesNothing() throws {
        let executor = RecordingNFTExecutor()
        let service = makeService([rule("SSH", [2002])], executor: executor)
        try service.start(now: .zero)
        executor.failChanges = NetfilterError(operation: "nft_run_cmd_from_buffer", errno: 22, message: "Invalid argument")
        var newConfiguration = service.configuration
        newConfiguration.rules = [rule("WEB", [5000])]
        #expect(throws: NetfilterError.self) { try service.reload(to: newConfiguration, now: .seconds(1)) }
        #expect(service.configuration.rules.map(\.name.rawValue) == ["SSH"])
    }

    @Test func ipv6KnocksUseTheIPv6Set() throws {
        let executor = RecordingNFTExecutor()
        let service = makeService([rule("SSH", [2002], autoclose: nil)], executor: executor)
        try service.start(now: .zero)
        let source = PeerAddress("2001:db8::7")!
        service.handle(
            packet: PacketBuilder.tcpSYN(from: source, to: PeerAddress("2001:db8::1")!, port: 2002), etherType: 0x86DD, now: .seconds(1), wallTime: wall)
        #expect(executor.changes.last?.hasSuffix("add element inet pk_test SSH_allowed6 { 2001:db8::7 }\n") == true)
    }

    @Test func refusedGrantsAreCountedAndWarnedAboutAtMostOncePerRulePerMinute() throws {
        let executor = RecordingNFTExecutor()
        var full = rule("SSH", [2002], autoclose: nil)
        full.maxAllowedPeers = 1
        var configuration = Configuration(rules: [full, rule("WEB", [5000])])
        configuration.rules[1].maxAllowedPeers = 1
        configuration.daemon.table = "pk_test"
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "t", factory: { _ in handler })
        let service = KnockService(configuration: configuration, executor: executor, logger: logger)
        try service.start(now: .zero)
        func peer(_ n: UInt32) -> PeerAddress { PeerAddress(ipv4: 0xC633_6400 + n) }  // 198.51.100.n
        func warnings() -> [InMemoryLogHandler.Entry] {
            handler.entries.filter { $0.level == .warning && "\($0.message)".hasPrefix("grant refused") }
        }
        service.handle(packet: syn(2002, from: peer(1)), etherType: 0x0800, now: .seconds(1), wallTime: wall)
        #expect(service.counters.allowed == 1 && warnings().isEmpty)
        // Four spoofed completions within the minute: one warning, four in the metric.
        for n in 2...5 {
            service.handle(packet: syn(2002, from: peer(UInt32(n))), etherType: 0x0800, now: .seconds(Int64(n)), wallTime: wall)
        }
        #expect(service.counters.refusedGrants == 4)
        #expect(warnings().count == 1)
        #expect(warnings().first?.metadata["knock.rule"] == "SSH")
        #expect(warnings().first?.metadata["knock.source"] == "198.51.100.2")
        #expect(warnings().first?.metadata["grant.max_allowed_peers"] == "1")
        #expect(warnings().first?.metadata["warning.suppressed"] == "0")
        // Another rule has its own limit on warnings.
        for n: UInt32 in [1, 2] {
            service.handle(packet: syn(5000, from: peer(n)), etherType: 0x0800, now: .seconds(6), wallTime: wall)
        }
        #expect(warnings().map { $0.metadata["knock.rule"] } == ["SSH", "WEB"])
        // A minute after the first warning the next refusal warns again, with the count it held back.
        service.handle(packet: syn(2002, from: peer(6)), etherType: 0x0800, now: .seconds(62), wallTime: wall)
        #expect(warnings().count == 2 + 1)
        #expect(warnings().last?.metadata["warning.suppressed"] == "3")
        #expect(service.counters.refusedGrants == 6)
        #expect(MetricsSnapshot(counters: service.counters).exposition.contains("\npknock_grants_refused_total 6\n"))
    }
}
