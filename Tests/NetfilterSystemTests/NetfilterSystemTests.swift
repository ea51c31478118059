import Foundation
import Glibc
import Netfilter
import Testing

/// Real kernel, real nftables and NFLOG, inside the private netns of Scripts/test-system.sh.
///
/// Serialized: the tests share the table `inet pknock_test`.
@Suite(.serialized, .enabled(if: SystemTestGate.isOpen, SystemTestGate.skipReason))
final class NetfilterSystemTests {
    static let table = "inet pknock_test"
    let nft: NFTContext

    init() throws {
        nft = try NFTContext()
        try Self.deleteTestTable(nft)
    }

    deinit {
        if let nft = try? NFTContext() { try? Self.deleteTestTable(nft) }
    }

    /// Deletes the test table if it exists ("add" first makes the delete idempotent on nft 1.0.6,
    /// which has no "destroy").
    static func deleteTestTable(_ nft: NFTContext) throws {
        _ = try nft.run(NFTScript(lines: ["add table \(table)", "delete table \(table)"]))
    }

    @Test func probeFindsNftablesUsable() {
        #expect(NFTContext.probe() == nil)
    }

    @Test func createsAndListsATable() throws {
        _ = try nft.run(
            NFTScript(
                """
                add table \(Self.table)
                add chain \(Self.table) input { type filter hook input priority 0; policy accept; }
                """))
        let tables = try nft.run("list tables")
        #expect(tables.contains("table inet pknock_test"))
        let listing = try nft.run(NFTScript("list table \(Self.table)"))
        #expect(listing.contains("chain input"))
        #expect(listing.contains("type filter hook input priority filter; policy accept;"))
    }

    @Test func batchThatFailsHalfwayLeavesNothingApplied() throws {
        let error = #expect(throws: NetfilterError.self) {
            try nft.run(
                NFTScript(
                    """
                    add table \(Self.table)
                    add set \(Self.table) allowed4 { type ipv4_addr; }
                    add element \(Self.table) allowed4 { 192.0.2.1 }
                    add rule \(Self.table) no_such_chain accept
                    """))
        }
        #expect(error?.operation == "nft_run_cmd_from_buffer")
        #expect(error?.errno == ENOENT)
        // libnftables 1.0.6 quotes line 1 of a buffer as context whatever line failed, so
        // check the kernel's reason rather than the quoted line.
        #expect(error?.message?.contains("Could not process rule: No such file or directory") == true)
        let tables = try nft.run("list tables")
        #expect(!tables.contains("pknock_test"))
    }

    @Test func listsAsJSON() throws {
        _ = try nft.run(NFTScript("add table \(Self.table)\nadd set \(Self.table) allowed6 { type ipv6_addr; }"))
        let json = try NFTContext(output: .json)
        let text = try json.run(NFTScript("list table \(Self.table)"))
        let root = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let objects = try #require(root["nftables"] as? [[String: Any]])
        let table = try #require(objects.compactMap { $0["table"] as? [String: Any] }.first)
        #expect(table["family"] as? String == "inet")
        #expect(table["name"] as? String == "pknock_test")
        let set = try #require(objects.compactMap { $0["set"] as? [String: Any] }.first)
        #expect(set["name"] as? String == "allowed6")
        #expect(set["type"] as? String == "ipv6_addr")
    }

    @Test func setElementWithTimeoutListsItsExpiry() throws {
        _ = try nft.run(
            NFTScript(
                """
                add table \(Self.table)
                add set \(Self.table) allowed4 { type ipv4_addr; flags timeout; }
                add element \(Self.table) allowed4 { 192.0.2.7 timeout 30s }
                """))
        let listing = try nft.run(NFTScript("list set \(Self.table) allowed4"))
        // e.g. "elements = { 192.0.2.7 timeout 30s expires 29s996ms }"
        let element = try #require(listing.split(separator: "\n").first { $0.contains("192.0.2.7") })
        #expect(element.contains("192.0.2.7 timeout 30s expires "))

        let json = try NFTContext(output: .json)
        let text = try json.run(NFTScript("list set \(Self.table) allowed4"))
        let root = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let objects = try #require(root["nftables"] as? [[String: Any]])
        let set = try #require(objects.compactMap { $0["set"] as? [String: Any] }.first)
        let elements = try #require(set["elem"] as? [[String: Any]])
        let entry = try #require(elements.first?["elem"] as? [String: Any])
        #expect(entry["val"] as? String == "192.0.2.7")
        #expect(entry["timeout"] as? Int == 30)
        let expires = try #require(entry["expires"] as? Int)
        #expect((1...30).contains(expires))
    }

    @Test func dryRunAppliesNothing() throws {
        nft.isDryRun = true
        _ = try nft.run(NFTScript("add table \(Self.table)"))
        nft.isDryRun = false
        #expect(try !nft.run("list tables").contains("pknock_test"))
    }

    // MARK: - NFLOG

    /// Adds `udp dport 4000 log prefix "pk-test " group N snaplen 256 drop` on lo.
    func addLogRule(group: UInt16) throws {
        _ = try nft.run(
            NFTScript(
                """
                add table \(Self.table)
                add chain \(Self.table) input { type filter hook input priority 0; policy accept; }
                add rule \(Self.table) input iifname "lo" udp dport 4000 log prefix "pk-test " group \(group) snaplen 256 drop
                """))
    }

    /// Sends one knock-sized UDP datagram to 127.0.0.1:4000 per index, the index in its first two bytes.
    func sendIndexed(_ indices: Range<Int>) throws {
        for index in indices {
            try Loopback.sendUDP(to: "127.0.0.1", port: 4000, payload: [UInt8(index >> 8), UInt8(index & 0xFF)] + [UInt8](repeating: 0x5A, count: 30))
        }
    }

    /// The indices of ``sendIndexed(_:)``'s datagrams as NFLOG delivers them, until `count` came or
    /// two seconds passed (the flush timeout, 10 ms, sends a partial batch).
    func receiveIndices(_ reader: NFLogReader, count: Int) throws -> [Int] {
        var indices: [Int] = []
        let deadline = ContinuousClock.now + .seconds(2)
        while indices.count < count, ContinuousClock.now < deadline {
            _ = try reader.receive(timeoutMilliseconds: 50) { packet in
                let udp = Int(packet.payload.first! & 0x0F) * 4
                indices.append(Int(packet.payload[udp + 8]) << 8 | Int(packet.payload[udp + 9]))
            }
        }
        return indices
    }

    /// Receives until `count` packets came or two seconds passed.
    func receive(_ reader: NFLogReader, count: Int) throws -> [NFLogPacket] {
        var packets: [NFLogPacket] = []
        let deadline = ContinuousClock.now + .seconds(2)
        while packets.count < count, ContinuousClock.now < deadline {
            _ = try reader.receive(timeoutMilliseconds: 100) { packets.append(copy $0) }
        }
        return packets
    }

    @Test(arguments: [("127.0.0.1", 4, NFLogPacket.etherTypeIPv4), ("::1", 6, NFLogPacket.etherTypeIPv6)])
    func nflogDeliversTheLoggedPacket(address: String, ipVersion: UInt8, etherType: UInt16) throws {
        let reader = try NFLogReader(group: 41, snaplen: 512)
        defer { reader.close() }
        try addLogRule(group: 41)
        let data = (0..<400).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Loopback.sendUDP(to: address, port: 4000, payload: data)

        let packets = try receive(reader, count: 1)
        let packet = try #require(packets.first)
        #expect(packets.count == 1)
        #expect(packet.hardwareProtocol == etherType)
        #expect(packet.prefix == "pk-test ")
        // The rule's snaplen cuts the copy at 256 bytes of the IP packet.
        #expect(packet.payload.count == 256)
        #expect(packet.payload[0] >> 4 == ipVersion)
        let udp: Int
        if ipVersion == 4 {
            #expect(packet.payload[9] == 17)  // protocol: UDP
            udp = Int(packet.payload[0] & 0x0F) * 4
        } else {
            #expect(packet.payload[6] == 17)  // next header: UDP
            udp = 40
        }
        #expect(UInt16(packet.payload[udp + 2]) << 8 | UInt16(packet.payload[udp + 3]) == 4000)
        #expect(Array(packet.payload[(udp + 8)...]) == Array(data.prefix(256 - udp - 8)))
    }

    /// Hundreds of queued log messages come out of one receiveQueued (batched recvmmsg reads, more
    /// than the 64 datagrams one call used to read), each packet whole and in order.
    @Test func queuedDatagramsAreReadInBatchesByOneCall() throws {
        let reader = try NFLogReader(group: 48, snaplen: 512)
        defer { reader.close() }
        try addLogRule(group: 48)
        let count = 300
        for index in 0..<count {
            try Loopback.sendUDP(to: "127.0.0.1", port: 4000, payload: [UInt8(index >> 8), UInt8(index & 0xFF)] + [UInt8](repeating: 0x5A, count: 30))
        }
        var indices: [Int] = []
        let delivered = try reader.receiveQueued { packet, hardwareProtocol in
            let udp = Int(packet[0] & 0x0F) * 4
            indices.append(Int(packet[udp + 8]) << 8 | Int(packet[udp + 9]))
            #expect(packet.count == 20 + 8 + 32)
            #expect(hardwareProtocol == NFLogPacket.etherTypeIPv4)
        }
        #expect(delivered == count)
        #expect(indices == Array(0..<count))
        #expect(reader.truncatedCount == 0)
    }

    /// The queue threshold changed on a bound reader: the kernel sends batches of packets per
    /// datagram, read whole and in order; back at 1, each packet is a datagram of its own again.
    @Test func aQueueThresholdSetWhileBoundBatchesPacketsAndOneSendsThemSingly() throws {
        let reader = try NFLogReader(group: 49, snaplen: 512)
        defer { reader.close() }
        try addLogRule(group: 49)
        try reader.setQueueThreshold(16)
        #expect(reader.queueThreshold == 16)
        try sendIndexed(0..<48)
        #expect(try receiveIndices(reader, count: 48) == Array(0..<48))
        let batched = reader.datagramCount
        #expect(batched >= 3 && batched <= 12, "48 packets came in \(batched) datagrams")
        #expect(reader.truncatedCount == 0)

        try reader.setQueueThreshold(1)
        try sendIndexed(48..<53)
        #expect(try receiveIndices(reader, count: 5) == Array(48..<53))
        #expect(reader.datagramCount - batched == 5)
        #expect(reader.truncatedCount == 0)
    }

    /// While batching, the kernel's batch buffer is raised (NFULA_CFG_NLBUFSIZ), so a batch ends at
    /// the threshold: at the kernel's default buffer (NLMSG_GOODSIZE) it would end at about 20 knock
    /// packets, and 192 packets would take 9 datagrams or more.
    @Test func aBatchHoldsSixtyFourKnockPackets() throws {
        let reader = try NFLogReader(group: 50, snaplen: 512)
        defer { reader.close() }
        try addLogRule(group: 50)
        try reader.setQueueThreshold(64)
        try sendIndexed(0..<192)
        #expect(try receiveIndices(reader, count: 192) == Array(0..<192))
        // Three full batches; a flush timeout (10 ms) while sending may split one or two.
        #expect(reader.datagramCount >= 3 && reader.datagramCount <= 6, "192 packets came in \(reader.datagramCount) datagrams")
        #expect(reader.truncatedCount == 0)
    }

    @Test func receiveReturnsZeroWhenNothingArrives() throws {
        let reader = try NFLogReader(group: 42)
        defer { reader.close() }
        let start = ContinuousClock.now
        let delivered = try reader.receive(timeoutMilliseconds: 150) { _ in Issue.record("unexpected packet") }
        #expect(delivered == 0)
        #expect(ContinuousClock.now - start >= .milliseconds(140))
    }

    @Test func secondReaderOnTheSameGroupFailsClearly() throws {
        let first = try NFLogReader(group: 43)
        defer { first.close() }
        let error = #expect(throws: NetfilterError.self) {
            _ = try NFLogReader(group: 43)
        }
        #expect(error?.operation == "nflog_bind_group")
        // nfnetlink_log answers EPERM to a bind from a socket that does not own the group.
        #expect(error?.errno == EPERM)
        #expect(error?.description.contains("NFLOG group 43 is already bound") == true)
    }

    @Test func groupIsFreeAgainAfterClose() throws {
        let first = try NFLogReader(group: 44)
        first.close()
        #expect(first.fileDescriptor == -1)
        let second = try NFLogReader(group: 44)
        second.close()
    }

    @Test func receiveAfterCloseThrows() throws {
        let reader = try NFLogReader(group: 45)
        reader.close()
        reader.close()
        let error = #expect(throws: NetfilterError.self) {
            _ = try reader.receive(timeoutMilliseconds: 0) { _ in }
        }
        #expect(error?.errno == EBADF)
    }

    @Test func overflowIsCountedNotThrown() throws {
        // The smallest buffer the kernel allows holds only a few log messages.
        let reader = try NFLogReader(group: 46, receiveBufferBytes: 1)
        defer { reader.close() }
        #expect(try reader.effectiveReceiveBufferBytes < 16_384)
        try addLogRule(group: 46)
        try Loopback.sendUDP(to: "127.0.0.1", port: 4000, payload: [UInt8](repeating: 0xAB, count: 200), count: 200)

        var delivered = 0
        while case let count = try reader.receive(timeoutMilliseconds: 200, { _ in }), count > 0 {
            delivered += count
        }
        #expect(reader.enobufsCount > 0)
        #expect(delivered > 0)
        #expect(delivered < 200)
    }

    @Test func largeReceiveBufferIsForcedPastRmemMax() throws {
        let reader = try NFLogReader(group: 47, receiveBufferBytes: 8 << 20)
        defer { reader.close() }
        // The kernel reports double the requested size.
        #expect(try reader.effectiveReceiveBufferBytes >= 8 << 20)
    }
}
