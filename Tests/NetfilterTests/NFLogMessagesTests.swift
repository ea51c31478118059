import Netfilter
import Testing

/// NFLOG datagrams captured once in a network namespace (`log group 33 snaplen 256` for a TCP SYN
/// to 127.0.0.1:2002; `log prefix knock group 33` for a UDP datagram "hello-spa" to [::1]:4000).
@Suite struct NFLogMessagesTests {
    static let tcpSYN = NFTablesNetlinkTests.bytes(
        "b400000000040000000000000000000002000021080001000800010005000a000000000008000400000000011000080000060000000000000000000006000f000304000006001100000e0000120010000000000000000000000000000800000014000300000000006b0f570a00000000000e2f10400009004500003c604840004006dc717f0000017f0000018db207d2dcfb902c00000000a002ffd7fe3000000204ffd70402080a6d4ee90a000000000103030a"
    )
    static let udpWithPrefix = NFTablesNetlinkTests.bytes(
        "b80000000004000000000000000000000a0000210800010086dd01000a000a006b6e6f636b00000008000400000000011000080000060000000000000000000006000f000304000006001100000e00001200100000000000000000000000000086dd000014000300000000006b0f570a00000000000e2f473d00090060075aee001111400000000000000000000000000000000100000000000000000000000000000001e7e30fa00011002468656c6c6f2d737061000000"
    )

    func packets(_ bytes: [UInt8], count: Int? = nil) -> [(UInt16, [UInt8])] {
        var found: [(UInt16, [UInt8])] = []
        NFLogMessages.forEachPacket(in: bytes, count: count ?? bytes.count) { found.append(($0.etherType, Array(bytes[$0.payload]))) }
        return found
    }

    @Test func anIPv4SYNIsFoundWithItsEtherTypeAndWholeIPPacket() throws {
        let found = packets(Self.tcpSYN)
        try #require(found.count == 1)
        #expect(found[0].0 == 0x0800)
        let packet = found[0].1
        #expect(packet.count == 60)  // the IPv4 total length
        #expect(packet.prefix(4) == [0x45, 0x00, 0x00, 0x3c])
        #expect(packet[22...23] == [0x07, 0xd2])  // destination port 2002
    }

    @Test func anIPv6DatagramWithAPrefixIsFound() throws {
        let found = packets(Self.udpWithPrefix)
        try #require(found.count == 1)
        #expect(found[0].0 == 0x86DD)
        #expect(found[0].1.first == 0x60)
        #expect(Array(found[0].1.suffix(9)) == Array("hello-spa".utf8))
        var prefixes: [String] = []
        NFLogMessages.forEachPacket(in: Self.udpWithPrefix, count: Self.udpWithPrefix.count) { packet in
            prefixes.append(packet.prefix.map { String(decoding: Self.udpWithPrefix[$0], as: UTF8.self) } ?? "none")
        }
        #expect(prefixes == ["knock"])
    }

    @Test func severalMessagesInOneDatagramAreAllDelivered() {
        let both = Self.tcpSYN + Self.udpWithPrefix
        #expect(packets(both).map(\.0) == [0x0800, 0x86DD])
        // Only what the kernel wrote counts: the second message cut off is not delivered.
        #expect(packets(both, count: both.count - 1).map(\.0) == [0x0800])
    }

    @Test(arguments: [0, 1, 15, 16, 20, 40, 100])
    func truncatedDatagramsDeliverNothingAndNeverTrap(cut: Int) {
        #expect(packets(Array(Self.tcpSYN.prefix(cut))).isEmpty)
    }

    @Test func lyingLengthsEndTheScan() {
        var bytes = Self.tcpSYN
        bytes[0] = 0xFF  // message length past the datagram
        #expect(packets(bytes).isEmpty)
        bytes = Self.tcpSYN
        // The payload attribute (the last 64 bytes) claims more than the message holds.
        let payloadAttribute = 0xb4 - 64
        #expect(bytes[payloadAttribute + 2] == 9)
        bytes[payloadAttribute] = 0xF0
        #expect(packets(bytes).isEmpty)
    }

    @Test func otherMessageTypesAreSkipped() {
        var ack = NFTablesNetlinkTests.answer(sequence: 1, error: 0)
        ack += Self.tcpSYN
        #expect(packets(ack).map(\.0) == [0x0800])
    }

    /// Datagrams as NFLogReader's batched receive leaves them: each in its own slot of one buffer.
    @Test func datagramsInSlotsOfOneBufferAreReadInPlace() {
        let slot = 256
        var buffer = [UInt8](repeating: 0xA5, count: 3 * slot)
        buffer.replaceSubrange(slot..<slot + Self.tcpSYN.count, with: Self.tcpSYN)
        buffer.replaceSubrange(2 * slot..<2 * slot + Self.udpWithPrefix.count, with: Self.udpWithPrefix)
        var found: [(UInt16, Range<Int>)] = []
        NFLogMessages.forEachPacket(in: buffer, range: slot..<slot + Self.tcpSYN.count) { found.append(($0.etherType, $0.payload)) }
        NFLogMessages.forEachPacket(in: buffer, range: 2 * slot..<2 * slot + Self.udpWithPrefix.count) {
            found.append(($0.etherType, $0.payload))
        }
        #expect(found.map(\.0) == [0x0800, 0x86DD])
        // Indices of the whole buffer, inside each slot, with the same bytes as parsed alone.
        #expect(found[0].1.lowerBound > slot && found[0].1.upperBound <= 2 * slot)
        #expect(Array(buffer[found[0].1]) == packets(Self.tcpSYN)[0].1)
        #expect(Array(buffer[found[1].1]) == packets(Self.udpWithPrefix)[0].1)
        // The empty first slot (filler bytes only) holds nothing.
        #expect(NFLogMessages.forEachPacket(in: buffer, range: 0..<slot) { _ in } == 0)
    }

    @Test func aRangePastTheBufferIsCutAtItsEnd() {
        // Claimed as 4 bytes longer than the bytes there are: the message still fits, and is found.
        #expect(NFLogMessages.forEachPacket(in: Self.tcpSYN, range: 0..<Self.tcpSYN.count + 4) { _ in } == 1)
        // A range starting inside the message reads no packet out of its middle.
        #expect(NFLogMessages.forEachPacket(in: Self.tcpSYN, range: 4..<Self.tcpSYN.count) { _ in } == 0)
        #expect(NFLogMessages.forEachPacket(in: Self.tcpSYN, range: Self.tcpSYN.count + 10..<Self.tcpSYN.count + 20) { _ in } == 0)
    }
}
