import KnockCore
import Testing

// MARK: - Packet builders (test only)

private func be16(_ value: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)] }

private func ipv4Address(_ text: String) -> [UInt8] {
    text.split(separator: ".").map { UInt8($0) ?? 0 }
}

private func ipv6Address(_ text: String) -> [UInt8] {
    PeerAddress(text)?.networkBytes ?? []
}

private func udpHeader(source: Int, destination: Int, payloadCount: Int, lengthOverride: Int? = nil) -> [UInt8] {
    be16(source) + be16(destination) + be16(lengthOverride ?? 8 + payloadCount) + [0, 0]
}

private func tcpHeader(source: Int, destination: Int, flags: UInt8, options: [UInt8] = [], dataOffset: Int? = nil) -> [UInt8] {
    let words = dataOffset ?? (20 + options.count) / 4
    return be16(source) + be16(destination) + [0xDE, 0xAD, 0xBE, 0xEF] + [0, 0, 0, 0]
        + [UInt8(words << 4), flags] + be16(64240) + [0, 0] + [0, 0] + options
}

/// An IPv4 packet around `transport` (transport header and payload).
private func ipv4(
    protocolNumber: UInt8, source: String = "192.0.2.10", destination: String = "198.51.100.1",
    options: [UInt8] = [], flagsAndOffset: Int = 0x4000, totalLengthOverride: Int? = nil, ihlOverride: UInt8? = nil,
    _ transport: [UInt8]
) -> [UInt8] {
    let headerLength = 20 + options.count
    let ihl = ihlOverride ?? UInt8(headerLength / 4)
    var header: [UInt8] = [0x40 | ihl, 0]
    header += be16(totalLengthOverride ?? headerLength + transport.count)
    header += [0x12, 0x34] + be16(flagsAndOffset) + [64, protocolNumber, 0, 0]
    header += ipv4Address(source) + ipv4Address(destination) + options
    return header + transport
}

/// An IPv6 packet whose first next-header is `nextHeader` and whose payload is `rest`.
private func ipv6(
    nextHeader: UInt8, source: String = "2001:db8::10", destination: String = "2001:db8:1::1",
    payloadLengthOverride: Int? = nil, _ rest: [UInt8]
) -> [UInt8] {
    var header: [UInt8] = [0x60, 0, 0, 0]
    header += be16(payloadLengthOverride ?? rest.count) + [nextHeader, 64]
    header += ipv6Address(source) + ipv6Address(destination)
    return header + rest
}

/// An options-style extension header (hop-by-hop, routing, destination options) of `units` 8-byte units.
private func optionsHeader(next: UInt8, units: Int = 1) -> [UInt8] {
    [next, UInt8(units - 1)] + [1, UInt8(units * 8 - 4)] + Array(repeating: 0, count: units * 8 - 4)
}

private func fragmentHeader(next: UInt8, offset: Int, more: Bool) -> [UInt8] {
    [next, 0] + be16(offset << 3 | (more ? 1 : 0)) + [0xDE, 0xAD, 0xBE, 0xEF]
}

private let spaPayload = Array(String(repeating: "ab", count: 32).utf8) + [0x0A]

private func parsed(_ bytes: [UInt8], family: IPFamily? = nil) throws -> ParsedPacket {
    try PacketParser.parse(bytes, family: family).get()
}

private func rejection(_ bytes: [UInt8], family: IPFamily? = nil) -> PacketRejection? {
    if case .failure(let rejection) = PacketParser.parse(bytes, family: family) { return rejection }
    return nil
}

// MARK: - Well-formed packets

@Test func ipv4TCPSyn() throws {
    let bytes = ipv4(protocolNumber: 6, tcpHeader(source: 40000, destination: 2002, flags: 0x02))
    let packet = try parsed(bytes, family: .ipv4)
    #expect(packet.family == .ipv4)
    #expect(packet.source == PeerAddress("192.0.2.10"))
    #expect(packet.destination == PeerAddress("198.51.100.1"))
    #expect(packet.transport == .tcp)
    #expect(packet.sourcePort.rawValue == 40000)
    #expect(packet.destinationPort.rawValue == 2002)
    #expect(packet.tcpFlags == .syn)
    #expect(packet.tcpFlags?.isConnectionRequest == true)
    #expect(packet.payload == 40..<40)
    #expect(!packet.payloadTruncated)
    // What tells a retransmitted SYN from a new connection: source port and sequence number.
    #expect(packet.tcpSequenceNumber == 0xDEAD_BEEF)
    let knock = packet.knock(payloadFrom: bytes[...])
    #expect(knock.sourcePort?.rawValue == 40000 && knock.tcpSequenceNumber == 0xDEAD_BEEF)
    let again = try parsed(bytes, family: .ipv4).knock(payloadFrom: bytes[...])
    #expect(again.retransmissionFingerprint == knock.retransmissionFingerprint && knock.retransmissionFingerprint != 0)
    let otherPort = try parsed(ipv4(protocolNumber: 6, tcpHeader(source: 40001, destination: 2002, flags: 0x02)), family: .ipv4)
    #expect(otherPort.knock(payloadFrom: []).retransmissionFingerprint != knock.retransmissionFingerprint)
}

@Test func udpPayloadFingerprint() {
    // FNV-1a 32: the empty string and "a" (published values).
    #expect(PacketParser.payloadFingerprint([UInt8]()) == 0x811c_9dc5)
    #expect(PacketParser.payloadFingerprint(Array("a".utf8)) == 0xe40c_292c)
    let one = Knock(source: PeerAddress(ipv4: 1), transport: .udp, port: Port(rawValue: 9)!, payload: [1, 2], sourcePort: Port(rawValue: 5))
    var same = one
    same.payload = [1, 2][...]
    var other = one
    other.payload = [1, 3][...]
    #expect(one.retransmissionFingerprint == same.retransmissionFingerprint)
    #expect(one.retransmissionFingerprint != other.retransmissionFingerprint)
    #expect(Knock(source: PeerAddress(ipv4: 1), transport: .udp, port: Port(rawValue: 9)!).retransmissionFingerprint == 0, "unknown source port")
}

@Test func tcpSynAckIsNotAConnectionRequest() throws {
    let packet = try parsed(ipv4(protocolNumber: 6, tcpHeader(source: 22, destination: 40000, flags: 0x12)))
    #expect(packet.tcpFlags == [.syn, .ack])
    #expect(packet.tcpFlags?.isConnectionRequest == false)
}

@Test func ipv4TCPWithOptionsAndData() throws {
    let options: [UInt8] = [2, 4, 0x05, 0xB4, 1, 1, 4, 2]  // MSS, NOP, NOP, SACK permitted
    let ipOptions: [UInt8] = [1, 1, 1, 0]  // NOP NOP NOP EOL: IHL 6
    let bytes = ipv4(
        protocolNumber: 6, options: ipOptions,
        tcpHeader(source: 1234, destination: 443, flags: 0x18, options: options) + Array("GET".utf8))
    let packet = try parsed(bytes)
    #expect(packet.payload == 24 + 28..<24 + 28 + 3)
    #expect(Array(bytes[packet.payload]) == Array("GET".utf8))
    #expect(packet.tcpFlags == [.psh, .ack])
}

@Test func ipv4UDPWithPayload() throws {
    let bytes = ipv4(protocolNumber: 17, udpHeader(source: 5353, destination: 2000, payloadCount: spaPayload.count) + spaPayload)
    let packet = try parsed(bytes, family: .ipv4)
    #expect(packet.transport == .udp)
    #expect(packet.tcpFlags == nil)
    #expect(packet.sourcePort.rawValue == 5353)
    #expect(packet.destinationPort.rawValue == 2000)
    #expect(packet.payload == 28..<28 + 65)
    #expect(Array(bytes[packet.payload]) == spaPayload)
    #expect(!packet.payloadTruncated)
}

@Test func ipv4TrailingPaddingIsNotPayload() throws {
    let bytes = ipv4(protocolNumber: 17, udpHeader(source: 1, destination: 2000, payloadCount: 3) + [7, 8, 9]) + [0, 0, 0, 0]
    let packet = try parsed(bytes)
    #expect(Array(bytes[packet.payload]) == [7, 8, 9])
    #expect(!packet.payloadTruncated)
}

@Test func ipv6UDP() throws {
    let bytes = ipv6(nextHeader: 17, udpHeader(source: 40001, destination: 2000, payloadCount: spaPayload.count) + spaPayload)
    let packet = try parsed(bytes, family: .ipv6)
    #expect(packet.family == .ipv6)
    #expect(packet.source == PeerAddress("2001:db8::10"))
    #expect(packet.destination == PeerAddress("2001:db8:1::1"))
    #expect(packet.source.isIPv4 == false)
    #expect(packet.transport == .udp)
    #expect(packet.destinationPort.rawValue == 2000)
    #expect(packet.payload == 48..<48 + 65)
    #expect(Array(bytes[packet.payload]) == spaPayload)
}

@Test func ipv6HopByHopAndDestinationOptions() throws {
    let udp = udpHeader(source: 40001, destination: 2001, payloadCount: 2) + [0xAA, 0xBB]
    let bytes = ipv6(nextHeader: 0, optionsHeader(next: 60) + optionsHeader(next: 17, units: 2) + udp)
    let packet = try parsed(bytes)
    #expect(packet.destinationPort.rawValue == 2001)
    #expect(packet.payload == 40 + 8 + 16 + 8..<40 + 8 + 16 + 10)
    #expect(Array(bytes[packet.payload]) == [0xAA, 0xBB])
}

@Test func ipv6RoutingAndAuthenticationHeaders() throws {
    // AH length is in 4-byte units minus 2: 4 means (4 + 2) * 4 = 24 bytes.
    let ah: [UInt8] = [6, 4, 0, 0] + Array(repeating: 0x11, count: 20)
    let tcp = tcpHeader(source: 50000, destination: 2002, flags: 0x02)
    let bytes = ipv6(nextHeader: 43, optionsHeader(next: 51) + ah + tcp)
    let packet = try parsed(bytes)
    #expect(packet.transport == .tcp)
    #expect(packet.destinationPort.rawValue == 2002)
    #expect(packet.payload == 40 + 8 + 24 + 20..<40 + 8 + 24 + 20)
}

@Test func ipv6AtMostEightExtensionHeaders() throws {
    let udp = udpHeader(source: 1, destination: 2000, payloadCount: 0)
    func chain(_ count: Int) -> [UInt8] {
        var rest: [UInt8] = []
        for index in 0..<count { rest += optionsHeader(next: index == count - 1 ? 17 : 60) }
        return ipv6(nextHeader: 60, rest + udp)
    }
    #expect(try parsed(chain(8)).destinationPort.rawValue == 2000)
    #expect(rejection(chain(9)) == .tooManyExtensionHeaders)
}

// MARK: - Fragments

@Test func ipv4Fragments() throws {
    let udp = udpHeader(source: 1, destination: 2000, payloadCount: 65) + Array(spaPayload.prefix(20))
    // First fragment (MF set, offset 0): accepted, its payload is cut short by the fragmentation.
    let first = try parsed(ipv4(protocolNumber: 17, flagsAndOffset: 0x2000, udp))
    #expect(first.payload == 28..<48)
    #expect(first.payloadTruncated)
    #expect(rejection(ipv4(protocolNumber: 17, flagsAndOffset: 0x2000 | 3, udp)) == .nonFirstFragment)
    #expect(rejection(ipv4(protocolNumber: 17, flagsAndOffset: 1, udp)) == .nonFirstFragment)
    // Without MF the same UDP length overruns the packet.
    #expect(rejection(ipv4(protocolNumber: 17, flagsAndOffset: 0x4000, udp)) == .badUDPLength)
}

@Test func ipv6Fragments() throws {
    let udp = udpHeader(source: 1, destination: 2000, payloadCount: 65) + Array(spaPayload.prefix(16))
    let first = try parsed(ipv6(nextHeader: 44, fragmentHeader(next: 17, offset: 0, more: true) + udp))
    #expect(first.destinationPort.rawValue == 2000)
    #expect(first.payload == 56..<72)
    #expect(first.payloadTruncated)
    #expect(rejection(ipv6(nextHeader: 44, fragmentHeader(next: 17, offset: 185, more: false) + udp)) == .nonFirstFragment)
    #expect(rejection(ipv6(nextHeader: 44, fragmentHeader(next: 17, offset: 1, more: true) + udp)) == .nonFirstFragment)
    #expect(rejection(ipv6(nextHeader: 44, fragmentHeader(next: 17, offset: 0, more: false) + udp)) == .badUDPLength)
}

// MARK: - Rejections

@Test func notTCPOrUDP() {
    let icmp: [UInt8] = [8, 0, 0, 0, 0, 1, 0, 1]
    #expect(rejection(ipv4(protocolNumber: 1, icmp)) == .notTCPOrUDP(protocolNumber: 1))
    #expect(rejection(ipv6(nextHeader: 58, icmp)) == .notTCPOrUDP(protocolNumber: 58))
    #expect(rejection(ipv6(nextHeader: 50, [0, 0, 1, 0, 0, 0, 0, 1] + icmp)) == .notTCPOrUDP(protocolNumber: 50))
    #expect(rejection(ipv6(nextHeader: 59, [])) == .notTCPOrUDP(protocolNumber: 59))
    #expect(rejection(ipv6(nextHeader: 60, optionsHeader(next: 59))) == .notTCPOrUDP(protocolNumber: 59))
}

@Test func versionAndFamily() {
    var bytes = ipv4(protocolNumber: 17, udpHeader(source: 1, destination: 2000, payloadCount: 0))
    #expect(rejection(bytes, family: .ipv6) == .familyMismatch(expected: .ipv6))
    bytes[0] = 0x55
    #expect(rejection(bytes) == .badVersion(5))
    let v6 = ipv6(nextHeader: 17, udpHeader(source: 1, destination: 2000, payloadCount: 0))
    #expect(rejection(v6, family: .ipv4) == .familyMismatch(expected: .ipv4))
    #expect(rejection([]) == .truncatedHeader)
    #expect(IPFamily(etherType: 0x0800) == .ipv4)
    #expect(IPFamily(etherType: 0x86DD) == .ipv6)
    #expect(IPFamily(etherType: 0x0806) == nil)
}

@Test func badLengths() {
    let udp = udpHeader(source: 1, destination: 2000, payloadCount: 4) + [1, 2, 3, 4]
    #expect(rejection(ipv4(protocolNumber: 17, ihlOverride: 4, udp)) == .badIPv4HeaderLength(4))
    #expect(rejection(ipv4(protocolNumber: 17, totalLengthOverride: 19, udp)) == .badIPLength)
    // IP says the packet ends inside the UDP header.
    #expect(rejection(ipv4(protocolNumber: 17, totalLengthOverride: 24, udp)) == .badUDPLength)
    #expect(rejection(ipv4(protocolNumber: 17, udpHeader(source: 1, destination: 2000, payloadCount: 0, lengthOverride: 7))) == .badUDPLength)
    #expect(rejection(ipv4(protocolNumber: 17, udpHeader(source: 1, destination: 2000, payloadCount: 4, lengthOverride: 13) + [1, 2, 3, 4])) == .badUDPLength)
    #expect(rejection(ipv6(nextHeader: 17, payloadLengthOverride: 7, udp)) == .badUDPLength)
    #expect(rejection(ipv6(nextHeader: 60, payloadLengthOverride: 6, optionsHeader(next: 17) + udp)) == .badIPLength)
    #expect(rejection(ipv4(protocolNumber: 6, tcpHeader(source: 1, destination: 22, flags: 2, dataOffset: 4))) == .badTCPDataOffset)
    #expect(rejection(ipv4(protocolNumber: 6, tcpHeader(source: 1, destination: 22, flags: 2, dataOffset: 6))) == .badTCPDataOffset)
}

@Test func zeroPorts() {
    #expect(rejection(ipv4(protocolNumber: 17, udpHeader(source: 1, destination: 0, payloadCount: 0))) == .zeroPort)
    #expect(rejection(ipv4(protocolNumber: 17, udpHeader(source: 0, destination: 2000, payloadCount: 0))) == .zeroPort)
    #expect(rejection(ipv6(nextHeader: 6, tcpHeader(source: 1, destination: 0, flags: 2))) == .zeroPort)
}

// MARK: - Truncated captures

private let wellFormed: [(name: String, bytes: [UInt8], transportEnd: Int)] = [
    ("ipv4 tcp syn", ipv4(protocolNumber: 6, tcpHeader(source: 40000, destination: 2002, flags: 2)), 40),
    ("ipv4 udp spa", ipv4(protocolNumber: 17, udpHeader(source: 1, destination: 2000, payloadCount: 65) + spaPayload), 28),
    ("ipv6 udp spa", ipv6(nextHeader: 17, udpHeader(source: 1, destination: 2000, payloadCount: 65) + spaPayload), 48),
    (
        "ipv6 hbh dstopt tcp",
        ipv6(nextHeader: 0, optionsHeader(next: 60) + optionsHeader(next: 6) + tcpHeader(source: 9, destination: 2002, flags: 2) + [1, 2]),
        76
    ),
]

@Test(arguments: wellFormed.indices)
func truncationAtEveryLength(_ index: Int) throws {
    let (name, bytes, transportEnd) = wellFormed[index]
    let whole = try parsed(bytes)
    for length in 0..<bytes.count {
        let result = PacketParser.parse(bytes[0..<length])
        if length < transportEnd {
            #expect(result == .failure(.truncatedHeader), "\(name) cut at \(length)")
        } else {
            let packet = try result.get()
            #expect(packet.source == whole.source && packet.destinationPort == whole.destinationPort, "\(name) cut at \(length)")
            #expect(packet.payload == whole.payload.lowerBound..<length, "\(name) cut at \(length)")
            #expect(packet.payloadTruncated == (length < whole.payload.upperBound), "\(name) cut at \(length)")
        }
    }
}

@Test func payloadIndicesFollowTheSlice() throws {
    let packet = ipv4(protocolNumber: 17, udpHeader(source: 1, destination: 2000, payloadCount: 65) + spaPayload)
    let buffer = [UInt8](repeating: 0xEE, count: 10) + packet + [0xEE]
    let slice = buffer[10..<(10 + packet.count)]
    let parsed = try PacketParser.parse(slice).get()
    #expect(parsed.payload == 38..<(38 + 65))
    let knock = parsed.knock(payloadFrom: slice)
    #expect(
        knock
            == Knock(
                source: PeerAddress(ipv4: 0xC000_020A), transport: .udp, port: Port(rawValue: 2000) ?? parsed.destinationPort,
                payload: slice[38..<103], sourcePort: Port(rawValue: 1)))
    #expect(Array(knock.payload) == spaPayload)
    #expect(knock.servicePort.description == "2000:udp")
}

@Test(arguments: wellFormed.indices)
func aSpanParsesAsTheArrayDoes(_ index: Int) throws {
    let (name, bytes, _) = wellFormed[index]
    let buffer = [UInt8](repeating: 0xEE, count: 7) + bytes + [0xEE]
    let span = buffer.span.extracting(7..<(7 + bytes.count))
    #expect(PacketParser.parse(span) == PacketParser.parse(bytes), "\(name)")
    for length in 0..<bytes.count {
        #expect(PacketParser.parse(span.extracting(0..<length)) == PacketParser.parse(bytes[0..<length]), "\(name) cut at \(length)")
    }
}

@Test func aKnockFromASpanOwnsItsPayloadInStorageKeptBetweenPackets() throws {
    let packet = ipv4(protocolNumber: 17, udpHeader(source: 1, destination: 2000, payloadCount: 65) + spaPayload)
    let buffer = [UInt8](repeating: 0xEE, count: 10) + packet + [0xEE]
    let span = buffer.span.extracting(10..<(10 + packet.count))
    let parsed = try PacketParser.parse(span).get()
    var storage: [UInt8] = []
    let knock = parsed.knock(payloadFrom: span, storage: &storage)
    #expect(knock == parsed.knock(payloadFrom: packet[...]))
    #expect(Array(knock.payload) == spaPayload)
    // A TCP SYN has no payload: storage is left alone.
    let syn = ipv4(protocolNumber: 6, tcpHeader(source: 9, destination: 2002, flags: 2))
    let synKnock = try PacketParser.parse(syn.span).get().knock(payloadFrom: syn.span, storage: &storage)
    #expect(synKnock.payload.isEmpty && synKnock.port.rawValue == 2002)
    // The next UDP knock reuses the storage; a knock still held keeps its own bytes.
    let other = ipv4(protocolNumber: 17, udpHeader(source: 2, destination: 2000, payloadCount: 3) + [7, 8, 9])
    let otherKnock = try PacketParser.parse(other.span).get().knock(payloadFrom: other.span, storage: &storage)
    #expect(Array(otherKnock.payload) == [7, 8, 9])
    #expect(Array(knock.payload) == spaPayload, "the earlier knock's bytes stay its own")
}

// MARK: - Robustness

/// SplitMix64: a small seeded generator so failures reproduce.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Test func randomAndBitFlippedPacketsNeverCrash() {
    var random = SeededGenerator(state: 0x504B_4E4F_434B)
    let seeds =
        wellFormed.map(\.bytes)
        + [
            ipv6(
                nextHeader: 44,
                fragmentHeader(next: 51, offset: 0, more: true) + [17, 1, 0, 0] + Array(repeating: 0, count: 8)
                    + udpHeader(source: 1, destination: 2, payloadCount: 0))
        ]
    var parsedCount = 0
    for round in 0..<100_000 {
        var bytes: [UInt8]
        if round % 4 == 0 {
            bytes = (0..<Int.random(in: 0...120, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Give random bytes a plausible version nibble most of the time.
            if !bytes.isEmpty, round % 8 == 0 { bytes[0] = (bytes[0] & 0x0F) | (Bool.random(using: &random) ? 0x40 : 0x60) }
        } else {
            bytes = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let bit = Int.random(in: 0..<(bytes.count * 8), using: &random)
                bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            }
            if round % 3 == 0 { bytes.removeLast(Int.random(in: 0...bytes.count, using: &random)) }
        }
        let base = Int.random(in: 0...3, using: &random)
        let buffer = [UInt8](repeating: 0, count: base) + bytes
        let slice = buffer[base...]
        if case .success(let packet) = PacketParser.parse(slice) {
            parsedCount += 1
            #expect(packet.payload.lowerBound >= slice.startIndex && packet.payload.upperBound <= slice.endIndex)
            _ = packet.knock(payloadFrom: slice)
        }
    }
    // The flipped packets must still parse often, or the loop only exercised the first checks.
    #expect(parsedCount > 10_000)
}

@Test func ipv6PacketFromAnIPv4MappedSourceIsRefused() {
    // Found by the packet-parser fuzzer (Fuzz/corpus/packet-parser/regression-v6-v4mapped-source):
    // such a packet would otherwise count as a knock from the IPv4 peer 192.0.2.7.
    var bytes = ipv6(nextHeader: 17, udpHeader(source: 40001, destination: 2000, payloadCount: 0))
    bytes.replaceSubrange(8..<24, with: Array(repeating: 0, count: 10) + [0xFF, 0xFF, 192, 0, 2, 7])
    #expect(rejection(bytes, family: .ipv6) == .ipv4MappedSource)
}
