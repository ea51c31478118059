import Foundation
import Glibc
import Netfilter
import Testing

/// Table ownership (`owner` + `persist`) and nf_tables notifications on the real kernel, inside
/// the private netns of Scripts/test-system.sh.
///
/// Other processes are real `nft` runs.
@Suite(.serialized, .enabled(if: SystemTestGate.isOpen, SystemTestGate.skipReason))
final class TableOwnershipSystemTests {
    static let name = "pknock_owned_test"

    init() throws {
        _ = try? Self.nft("delete table inet \(Self.name)")
    }

    deinit {
        _ = try? Self.nft("delete table inet \(Self.name)")
    }

    /// Runs the real `nft` in a child process (another netlink socket, as an administrator's would be).
    @discardableResult
    static func nft(_ arguments: String...) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nft")
        process.arguments = arguments.count == 1 ? arguments[0].split(separator: " ").map(String.init) : arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    static func tableExists() throws -> Bool {
        try nft("list tables").output.contains("table inet \(name)")
    }

    @Test func contextFindsItsOwnNetlinkSocket() throws {
        let context = try NFTContext()
        #expect(context.portID != nil)
        #expect(context.portID != 0)
    }

    @Test func ownedTableSurvivesFlushAndDeleteByOthersAndStaysChangeableByItsOwner() throws {
        let context = try NFTContext()
        try context.claimTable(Self.name, flags: [.owner, .persist])
        _ = try context.run(NFTScript("add chain inet \(Self.name) input { type filter hook input priority -10; policy accept; }"))

        #expect(try Self.nft("flush ruleset").status == 0)
        #expect(try Self.tableExists())
        let deletion = try Self.nft("delete table inet \(Self.name)")
        #expect(deletion.status != 0)
        #expect(deletion.output.contains("Operation not permitted"))
        #expect(try Self.nft("add chain inet \(Self.name) intruder").status != 0)
        // The owner's own libnftables scripts keep working, except `add table`: libnftables 1.0.6
        // sends flags 0 with it, which would drop `owner`, and the kernel refuses that.
        let addTable = #expect(throws: NetfilterError.self) { try context.run(NFTScript("add table inet \(Self.name)")) }
        #expect(addTable?.errno == EOPNOTSUPP)
        _ = try context.run(NFTScript("add set inet \(Self.name) s { type ipv4_addr; }"))
        #expect(try Self.nft("list table inet \(Self.name)").output.contains("set s"))
        _ = try context.run(NFTScript("delete table inet \(Self.name)"))
        #expect(try !Self.tableExists())
    }

    @Test func persistentTableOutlivesItsOwnerAndIsClaimedAgain() throws {
        do {
            let first = try NFTContext()
            try first.claimTable(Self.name, flags: [.owner, .persist])
            _ = try first.run(NFTScript("add set inet \(Self.name) kept { type ipv4_addr; elements = { 192.0.2.7 } }"))
        }
        // The first context is gone: the table is orphaned, not deleted.
        #expect(try Self.nft("list set inet \(Self.name) kept").output.contains("192.0.2.7"))
        let second = try NFTContext()
        try second.claimTable(Self.name, flags: [.owner, .persist])
        #expect(try Self.nft("flush ruleset").status == 0)
        #expect(try Self.nft("list set inet \(Self.name) kept").output.contains("192.0.2.7"))
        _ = try second.run(NFTScript("add element inet \(Self.name) kept { 192.0.2.8 }"))
        #expect(try Self.nft("list set inet \(Self.name) kept").output.contains("192.0.2.8"))
    }

    @Test func terseListingsNameTheSetsWithoutTheirElements() throws {
        let context = try NFTContext(output: [.json])
        _ = try context.run(
            NFTScript(
                "add table inet \(Self.name)\nadd set inet \(Self.name) big { type ipv4_addr; elements = { 192.0.2.1, 192.0.2.2 } }"))
        let terse = try context.runTerse(NFTScript("list sets table inet \(Self.name)"))
        #expect(terse.contains("\"name\": \"big\""))
        #expect(!terse.contains("192.0.2.1"))
        #expect(try context.run(NFTScript("list sets table inet \(Self.name)")).contains("192.0.2.1"))  // options restored
        _ = try context.run(NFTScript("delete table inet \(Self.name)"))
    }

    @Test func aSecondOwnerIsRefusedWhileTheFirstLives() throws {
        let first = try NFTContext()
        try first.claimTable(Self.name, flags: [.owner, .persist])
        let second = try NFTContext()
        let error = #expect(throws: NetfilterError.self) { try second.claimTable(Self.name, flags: [.owner, .persist]) }
        #expect(error?.errno == EPERM)
        withExtendedLifetime(first) {}
    }

    @Test func preparedElementBatchesGrantRenewAndRevokeInAnOwnedTable() throws {
        let context = try NFTContext()
        try context.claimTable(Self.name, flags: [.owner, .persist])
        _ = try context.run(
            NFTScript("add set inet \(Self.name) a4 { type ipv4_addr; flags timeout; }\nadd set inet \(Self.name) a6 { type ipv6_addr; flags timeout; }"))
        let v4: [UInt8] = [192, 0, 2, 7]
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [9]
        func grant(_ set: String, _ key: [UInt8], seconds: UInt64) throws {
            try context.apply(
                .init(
                    table: Self.name,
                    changes: [
                        .init(.add, set: set, key: key), .init(.delete, set: set, key: key),
                        .init(.add, set: set, key: key, timeoutMilliseconds: seconds * 1000),
                    ],
                    script: "grant"))
        }
        let before = ContinuousClock.now
        try grant("a4", v4, seconds: 90)
        let after = ContinuousClock.now
        // When the kernel had the batch: after it was sent, before its answer was read.
        let handled = try #require(context.lastBatchHandled)
        #expect(before < handled && handled < after)
        try grant("a6", v6, seconds: 30)
        #expect(try #require(context.lastBatchHandled) > handled)
        #expect(try Self.nft("list set inet \(Self.name) a4").output.contains("192.0.2.7 timeout 1m30s"))
        #expect(try Self.nft("list set inet \(Self.name) a6").output.contains("2001:db8::9 timeout 30s"))
        try grant("a4", v4, seconds: 600)  // a renewal replaces the timeout
        #expect(try Self.nft("list set inet \(Self.name) a4").output.contains("192.0.2.7 timeout 10m"))
        try context.apply(.init(table: Self.name, changes: [.init(.add, set: "a4", key: v4), .init(.delete, set: "a4", key: v4)], script: "revoke"))
        #expect(try !Self.nft("list set inet \(Self.name) a4").output.contains("192.0.2.7"))
        // All or nothing: a batch naming a missing set changes nothing, and says why.
        let error = #expect(throws: NetfilterError.self) {
            try context.apply(
                .init(table: Self.name, changes: [.init(.add, set: "a4", key: v4), .init(.add, set: "missing", key: v4)], script: "bad"))
        }
        #expect(error?.errno == ENOENT)
        #expect(try !Self.nft("list set inet \(Self.name) a4").output.contains("192.0.2.7"))
        // Only the last change asks for an answer: a refusal of an earlier one must still be seen.
        let earlier = #expect(throws: NetfilterError.self) {
            try context.apply(
                .init(
                    table: Self.name, changes: [.init(.add, set: "missing", key: v4), .init(.add, set: "a4", key: v4, timeoutMilliseconds: 60_000)],
                    script: "bad first"))
        }
        #expect(earlier?.errno == ENOENT)
        #expect(earlier?.message == "bad first")
        #expect(try !Self.nft("list set inet \(Self.name) a4").output.contains("192.0.2.7"))
        // The refused batches left nothing that the next exchange takes for its answer.
        try grant("a4", v4, seconds: 45)
        #expect(try Self.nft("list set inet \(Self.name) a4").output.contains("192.0.2.7 timeout 45s"))
        // Nor does libnftables' use of the same socket in between.
        _ = try context.run(NFTScript("list set inet \(Self.name) a6"))
        try grant("a6", v6, seconds: 50)
        #expect(try Self.nft("list set inet \(Self.name) a6").output.contains("2001:db8::9 timeout 50s"))
    }

    @Test func monitorSeesOthersChangesToTheTableButNotOurOwn() throws {
        // A table of its own: the other tests' clean-up (in deinit, which may run late) must not show up here.
        let table = "pknock_monitor_test"
        let context = try NFTContext()
        let monitor = try NFTablesMonitor(table: table, ignoringPortID: context.portID)
        _ = try context.run(NFTScript("add table inet \(table)\nadd set inet \(table) s { type ipv4_addr; }"))
        #expect(try monitor.drain() == NFTablesNetlink.TableChanges())
        #expect(try Self.nft("add element inet \(table) s { 192.0.2.9 }").status == 0)
        #expect(try monitor.waitForChanges(milliseconds: 1000) == NFTablesNetlink.TableChanges(touched: true, deleted: false))
        #expect(try Self.nft("add table inet unrelated_test").status == 0)
        #expect(try Self.nft("delete table inet unrelated_test").status == 0)
        #expect(try monitor.drain() == NFTablesNetlink.TableChanges())
        #expect(try Self.nft("flush ruleset").status == 0)
        #expect(try monitor.waitForChanges(milliseconds: 1000) == NFTablesNetlink.TableChanges(touched: true, deleted: true))
    }
}
