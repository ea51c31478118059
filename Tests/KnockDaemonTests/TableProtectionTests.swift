import KnockConfig
import KnockCore
import KnockDaemon
import KnockTestSupport
import Logging
import Netfilter
import Testing

/// How the service keeps its table: claimed with owner + persist, or watched and put back.
@Suite struct TableProtectionTests {
    let server = PeerAddress("192.0.2.1")!
    let client = PeerAddress("192.0.2.2")!
    let wall = WallTime(secondsSinceEpoch: 1_758_000_000)
    let noTable = NetfilterError(operation: "nft_run_cmd_from_buffer", errno: 2, message: "No such file or directory")

    func makeService(_ executor: RecordingNFTExecutor, log: ReplayStoreLogHandler = ReplayStoreLogHandler()) -> KnockService {
        var configuration = Configuration(rules: [
            Rule(
                name: RuleName(rawValue: "SSH")!, knockSequence: [ServicePort(Port(rawValue: 2002)!, .tcp)],
                maxKnockGap: .seconds(10), autoclose: .seconds(60), protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])
        ])
        configuration.daemon.table = "pk_test"
        return KnockService(configuration: configuration, executor: executor, logger: Logger(label: "test", factory: { _ in log }))
    }

    func knock(_ service: KnockService, from peer: PeerAddress, at seconds: Int64) {
        service.handle(
            packet: PacketBuilder.tcpSYN(from: peer, to: server, port: 2002), etherType: PacketBuilder.etherType(of: peer),
            now: .seconds(seconds), wallTime: wall)
    }

    @Test func aFirstStartClaimsTheTableThenInstallsWithoutAddTable() throws {
        let executor = RecordingNFTExecutor()
        executor.claimError = nil
        executor.replies["list sets"] = .failure(noTable)
        let service = makeService(executor)
        try service.start(now: .zero)
        #expect(executor.claims.map(\.table) == ["pk_test"])
        #expect(executor.claims.first?.flags == [.owner, .persist])
        #expect(service.tableProtection == .owned)
        #expect(executor.changes.count == 1)
        // libnftables would send `add table` with flags 0, which the kernel refuses for an owned table.
        #expect(executor.changes.first?.contains("add table") == false)
        #expect(executor.changes.first?.contains("add chain inet pk_test input") == true)
    }

    @Test func theStartReadsSetNamesTerselyNotTheWatchSetsElements() throws {
        let executor = RecordingNFTExecutor()
        try makeService(executor).start(now: .zero)
        #expect(executor.terseScripts.map(\.text) == ["list sets table inet pk_test"])
    }

    @Test func anotherLiveOwnerStopsTheStart() {
        let executor = RecordingNFTExecutor()
        executor.claimError = NetfilterError(operation: "NFT_MSG_NEWTABLE", errno: 1)
        let service = makeService(executor)
        let error = #expect(throws: NetfilterError.self) { try service.start(now: .zero) }
        #expect(error?.errno == 1)
        #expect(error?.message?.contains("another running process owns the table") == true)
        #expect(executor.changes.isEmpty)
    }

    @Test func aKernelWithoutPersistIsWatchedAndTheTableCreatedAsBefore() throws {
        let executor = RecordingNFTExecutor()  // claims answer EOPNOTSUPP
        executor.replies["list sets"] = .failure(noTable)
        let service = makeService(executor)
        try service.start(now: .zero)
        #expect(service.tableProtection == .watched)
        #expect(service.tableProtectionReason.contains("Linux 6.9"))
        #expect(executor.changes.first?.contains("add table inet pk_test") == true)
    }

    @Test func watchModeCanBeForcedWhereOwnershipWorks() throws {
        let executor = RecordingNFTExecutor()
        executor.claimError = nil
        let service = makeService(executor)
        try service.start(now: .zero, protection: .watch)
        #expect(executor.claims.isEmpty)
        #expect(service.tableProtection == .watched)
    }

    @Test func anUnownedTableIsReplacedUnderAGuardTableKeepingItsGrants() throws {
        /// Claims of the existing table fail as the kernel refuses to add `persist`; new tables work.
        final class Executor: RecordingNFTExecutor {
            override func claimTable(_ name: String, flags: NFTablesNetlink.TableFlags) throws(NetfilterError) {
                try super.claimTable(name, flags: flags)
                if name == "pk_test" && !changes.contains("delete table inet pk_test\n") {
                    throw NetfilterError(operation: "NFT_MSG_NEWTABLE", errno: 95)
                }
            }
        }
        let executor = Executor()
        executor.claimError = nil
        executor.replies["list sets"] = .success(#"{"nftables": [{"set": {"name": "SSH_allowed4"}}]}"#)
        executor.replies["list set inet pk_test SSH_allowed4"] = .success(
            #"{"nftables": [{"set": {"name": "SSH_allowed4", "elem": [{"elem": {"val": "192.0.2.9", "timeout": 60, "expires": 42}}]}}]}"#)
        let service = makeService(executor)
        try service.start(now: .zero)
        #expect(service.tableProtection == .owned)
        #expect(executor.claims.map(\.table) == ["pk_test", "pk_test_probe", "pk_test_guard", "pk_test"])
        let changes = executor.changes
        let guardInstall = try #require(changes.firstIndex { $0.contains("add chain inet pk_test_guard input") })
        let oldTableGone = try #require(changes.firstIndex(of: "delete table inet pk_test\n"))
        let newInstall = try #require(changes.firstIndex { $0.contains("add chain inet pk_test input") })
        let guardGone = try #require(changes.firstIndex(of: "delete table inet pk_test_guard\n"))
        #expect(guardInstall < oldTableGone && oldTableGone < newInstall && newInstall < guardGone)
        // The adopted grant is in the guard and in the new table, with the time it had left.
        #expect(changes[guardInstall].contains("add element inet pk_test_guard SSH_allowed4 { 192.0.2.9 timeout 42s }"))
        #expect(changes[newInstall].contains("add element inet pk_test SSH_allowed4 { 192.0.2.9 timeout 42s }"))
    }

    @Test func aChangeBySomeoneElseIsRepairedWithExactlyTheEnginesGrants() throws {
        let executor = RecordingNFTExecutor()
        let service = makeService(executor)
        try service.start(now: .zero)
        knock(service, from: client, at: 1)  // one-knock rule: allowed for 60 s
        let before = executor.changes.count
        service.repairTable(after: .init(touched: true, deleted: true), now: .seconds(21))
        #expect(executor.changes.count == before + 1)
        let repair = try #require(executor.changes.last)
        #expect(repair.contains("add table inet pk_test"))
        #expect(repair.contains("add chain inet pk_test input"))
        #expect(repair.contains("flush set inet pk_test SSH_allowed4\n"))
        #expect(repair.contains("flush set inet pk_test SSH_allowed6\n"))
        #expect(repair.contains("add element inet pk_test SSH_allowed4 { 192.0.2.2 timeout 40s }"))
        #expect(service.counters.tableRepairs == 1 && service.counters.foreignTableChanges == 1)
    }

    @Test func nothingToRepairWhenNothingWasTouchedOrTheTableIsOwned() throws {
        let executor = RecordingNFTExecutor()
        let watched = makeService(executor)
        try watched.start(now: .zero)
        let before = executor.changes.count
        watched.repairTable(after: .init(), now: .seconds(1))
        #expect(executor.changes.count == before)

        let ownedExecutor = RecordingNFTExecutor()
        ownedExecutor.claimError = nil
        let owned = makeService(ownedExecutor)
        try owned.start(now: .zero)
        let ownedBefore = ownedExecutor.changes.count
        owned.repairTable(after: .init(touched: true, deleted: true), now: .seconds(1))
        owned.verifyTable(now: .seconds(2))
        #expect(ownedExecutor.changes.count == ownedBefore)
        #expect(!ownedExecutor.scripts.contains { $0.text.hasPrefix("list chain") })
    }

    @Test func thePeriodicCheckRepairsAMissingChain() throws {
        let executor = RecordingNFTExecutor()
        let service = makeService(executor)
        try service.start(now: .zero)
        let before = executor.changes.count
        service.verifyTable(now: .seconds(2))
        #expect(executor.changes.count == before)  // the chain lists fine
        executor.replies["list chain inet pk_test input"] = .failure(noTable)
        service.verifyTable(now: .seconds(4))
        #expect(executor.changes.count == before + 1)
        #expect(service.counters.tableRepairs == 1)
    }

    @Test func repairWarningsAreRateLimited() throws {
        let log = ReplayStoreLogHandler()
        let executor = RecordingNFTExecutor()
        let service = makeService(executor, log: log)
        try service.start(now: .zero)
        for second in 1...30 { service.repairTable(after: .init(touched: true), now: .seconds(Int64(second))) }
        service.repairTable(after: .init(touched: true), now: .seconds(62))
        let warnings = log.messages.withLock { $0 }.filter { $0.hasPrefix("warning: another process changed") }
        #expect(warnings.count == 2)
        #expect(service.counters.tableRepairs == 31)
    }

    @Test func teardownOfATableOwnedByARunningDaemonSaysSo() {
        let executor = RecordingNFTExecutor()
        executor.replies["delete table"] = .failure(NetfilterError(operation: "nft_run_cmd_from_buffer", errno: 1, message: "Operation not permitted"))
        let error = #expect(throws: NetfilterError.self) { try makeService(executor).teardown() }
        #expect(error?.message?.contains("a running pknockd owns the table") == true)
    }

    @Test func repairsAndForeignChangesAreMetrics() throws {
        var counters = KnockService.Counters()
        counters.foreignTableChanges = 3
        counters.tableRepairs = 2
        let lines = MetricsSnapshot(counters: counters).exposition.split(separator: "\n")
        #expect(lines.contains("pknock_table_foreign_changes_total 3"))
        #expect(lines.contains("pknock_table_repairs_total 2"))
    }
}
