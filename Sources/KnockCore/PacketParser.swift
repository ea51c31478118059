/// An IP version: which header an L3 packet starts with.
public enum IPFamily: Sendable, Hashable, CustomStringConvertible {
    /// IPv4 (version nibble 4, EtherType 0x0800).
    case ipv4
    /// IPv6 (version nibble 6, EtherType 0x86DD).
    case ipv6

    /// The family of an EtherType such as NFLOG's hardware protocol; nil for anything else.
    public init?(etherType: UInt16) {
        switch etherType {
        case 0x0800: self = .ipv4
        case 0x86DD: self = .ipv6
        default: return nil
        }
    }

    /// `ipv4` or `ipv6`.
    public var description: String { self == .ipv4 ? "ipv4" : "ipv6" }
}

/// TCP header flags (RFC 9293 control bits, byte 13 of the header).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    /// The flag byte.
    public var rawValue: UInt8

    /// Wraps a flag byte.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// FIN: no more data from the sender.
    public static let fin = TCPFlags(rawValue: 0x01)
    /// SYN: synchronize sequence numbers.
    public static let syn = TCPFlags(rawValue: 0x02)
    /// RST: reset the connection.
    public static let rst = TCPFlags(rawValue: 0x04)
    /// PSH: push.
    public static let psh = TCPFlags(rawValue: 0x08)
    /// ACK: the acknowledgment field is significant.
    public static let ack = TCPFlags(rawValue: 0x10)
    /// URG: the urgent pointer is significant.
    public static let urg = TCPFlags(rawValue: 0x20)
    /// ECE: ECN echo.
    public static let ece = TCPFlags(rawValue: 0x40)
    /// CWR: congestion window reduced.
    public static let cwr = TCPFlags(rawValue: 0x80)

    /// Whether this is a connection request: SYN without ACK (what a TCP knock is, and what the
    /// firewall logs as one: `tcp flags & (syn | ack) == syn`).
    public var isConnectionRequest: Bool { contains(.syn) && !contains(.ack) }
}

/// The addresses, ports and payload of a TCP or UDP packet, as ``PacketParser`` found them.
public struct ParsedPacket: Equatable, Sendable {
    /// IPv4 or IPv6.
    public var family: IPFamily
    /// The source address.
    public var source: PeerAddress
    /// The destination address.
    public var destination: PeerAddress
    /// TCP or UDP.
    public var transport: TransportProtocol
    /// The source port.
    public var sourcePort: Port
    /// The destination port.
    public var destinationPort: Port
    /// The TCP flags; nil for UDP.
    public var tcpFlags: TCPFlags?
    /// The TCP sequence number; nil for UDP.
    ///
    /// With the source port it tells a retransmitted SYN from
    /// a new connection.
    public var tcpSequenceNumber: UInt32?
    /// Where the transport payload is, as indices into the parsed bytes (possibly empty).
    public var payload: Range<Int>
    /// Whether the packet says its payload is longer than the bytes captured (NFLOG snaplen, or a
    /// first fragment): ``payload`` then holds only what was captured.
    public var payloadTruncated: Bool

    /// Makes a parsed packet.
    public init(
        family: IPFamily, source: PeerAddress, destination: PeerAddress, transport: TransportProtocol,
        sourcePort: Port, destinationPort: Port, tcpFlags: TCPFlags?, payload: Range<Int>, payloadTruncated: Bool,
        tcpSequenceNumber: UInt32? = nil
    ) {
        self.family = family
        self.source = source
        self.destination = destination
        self.transport = transport
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.tcpFlags = tcpFlags
        self.payload = payload
        self.payloadTruncated = payloadTruncated
        self.tcpSequenceNumber = tcpSequenceNumber
    }

    /// The knock this packet is: its source, destination port and payload, sliced out of `bytes`,
    /// which must be the collection it was parsed from.
    public func knock(payloadFrom bytes: ArraySlice<UInt8>) -> Knock {
        let start = Swift.max(payload.lowerBound, bytes.startIndex)
        let end = Swift.min(Swift.max(payload.upperBound, start), bytes.endIndex)
        let slice = start <= end ? bytes[start..<end] : []
        return Knock(
            source: source, transport: transport, port: destinationPort, payload: slice, sourcePort: sourcePort,
            tcpSequenceNumber: tcpSequenceNumber)
    }

    /// The knock this packet is, parsed from the view `bytes`.
    ///
    /// The payload, if any, is copied into `storage`, which keeps its capacity from one packet to the
    /// next, so the knock owns its bytes without an allocation per packet. A TCP SYN has none.
    public func knock(payloadFrom bytes: Span<UInt8>, storage: inout [UInt8]) -> Knock {
        let range = payload.clamped(to: 0..<bytes.count)
        var slice: ArraySlice<UInt8> = []
        if !range.isEmpty {
            storage.removeAll(keepingCapacity: true)
            for index in range { storage.append(bytes[index]) }
            slice = storage[...]
        }
        return Knock(
            source: source, transport: transport, port: destinationPort, payload: slice, sourcePort: sourcePort,
            tcpSequenceNumber: tcpSequenceNumber)
    }
}

/// Why a packet was not parsed: too short, malformed, or not a TCP/UDP packet we can read.
public enum PacketRejection: Error, Equatable, Sendable {
    /// The capture ends inside the IP, extension or transport header.
    case truncatedHeader
    /// The version nibble is neither 4 nor 6 (it is carried).
    case badVersion(UInt8)
    /// The version nibble contradicts the family the caller got from NFLOG.
    case familyMismatch(expected: IPFamily)
    /// The IPv4 header length (IHL, carried) is below 5 words.
    case badIPv4HeaderLength(UInt8)
    /// The IP total or payload length is shorter than the headers it must contain.
    case badIPLength
    /// A fragment other than the first: it carries no transport header.
    case nonFirstFragment
    /// The packet carries neither TCP nor UDP (the next-header number is carried: ICMP, ESP (50),
    /// no-next-header (59), …).
    case notTCPOrUDP(protocolNumber: UInt8)
    /// More IPv6 extension headers than ``PacketParser/maximumExtensionHeaders``.
    case tooManyExtensionHeaders
    /// The UDP length is below 8 or beyond the end of the IP packet.
    case badUDPLength
    /// The TCP data offset is below 5 words or beyond the end of the IP packet.
    case badTCPDataOffset
    /// The source or destination port is 0.
    case zeroPort
    /// An IPv6 packet whose source is IPv4-mapped (`::ffff:a.b.c.d`): it would pass for the IPv4
    /// peer. Linux drops these before netfilter; refusing them here keeps that true for any caller.
    case ipv4MappedSource
}

/// Reads IPv4 and IPv6 TCP/UDP packets as NFLOG delivers them (network header first).
///
/// Pure, allocation-free, and total: any byte sequence yields a ``ParsedPacket`` or a
/// ``PacketRejection``, never a trap. Checksums are not verified (the kernel has already seen the
/// packet), and IPv4 options and TCP options are skipped, not read.
public enum PacketParser {
    /// The most IPv6 extension headers walked before giving up.
    public static let maximumExtensionHeaders = 8

    /// A 32-bit fingerprint of a payload (FNV-1a), allocation-free: with the source port it tells a
    /// retransmitted UDP datagram from a new one.
    ///
    /// Not keyed: it identifies, it does not protect.
    public static func payloadFingerprint(_ payload: some Collection<UInt8>) -> UInt32 {
        var hash: UInt32 = 0x811c_9dc5
        for byte in payload {
            hash ^= UInt32(byte)
            hash &*= 0x0100_0193
        }
        return hash
    }

    /// Parses an L3 packet.
    ///
    /// When `family` is given (from NFLOG's hardware protocol), the version
    /// nibble must agree with it.
    ///
    /// ``ParsedPacket/payload`` holds indices of `bytes`. A collection without contiguous storage is
    /// copied first.
    public static func parse<Bytes: RandomAccessCollection<UInt8>>(
        _ bytes: Bytes, family: IPFamily? = nil
    ) -> Result<ParsedPacket, PacketRejection> where Bytes.Index == Int {
        let base = bytes.startIndex
        if let parsed = bytes.withContiguousStorageIfAvailable({ parseBytes(Reader(UnsafeRawBufferPointer($0), base: base), family: family) }) {
            return parsed
        }
        return Array(bytes).withUnsafeBytes { parseBytes(Reader($0, base: base), family: family) }
    }

    /// ``parse(_:family:)`` of an array, read in place.
    public static func parse(_ bytes: [UInt8], family: IPFamily? = nil) -> Result<ParsedPacket, PacketRejection> {
        bytes.withUnsafeBytes { parseBytes(Reader($0, base: 0), family: family) }
    }

    /// ``parse(_:family:)`` of a slice, as the daemon hands NFLOG packets over.
    ///
    /// The slice is a view into the receive buffer, not a copy, read in place: parsing allocates
    /// nothing, in debug builds too. ``ParsedPacket/payload`` holds indices of the slice's base.
    public static func parse(_ bytes: ArraySlice<UInt8>, family: IPFamily? = nil) -> Result<ParsedPacket, PacketRejection> {
        let base = bytes.startIndex
        return bytes.withUnsafeBytes { parseBytes(Reader($0, base: base), family: family) }
    }

    /// ``parse(_:family:)`` of a borrowed view, as the daemon's intake hands NFLOG packets over
    /// (``ParsedPacket/payload`` holds offsets from the view's start): nothing is copied, retained or
    /// allocated.
    public static func parse(_ bytes: Span<UInt8>, family: IPFamily? = nil) -> Result<ParsedPacket, PacketRejection> {
        bytes.withUnsafeBytes { parseBytes(Reader($0, base: 0), family: family) }
    }

    private static func parseBytes(_ reader: Reader, family: IPFamily?) -> Result<ParsedPacket, PacketRejection> {
        guard reader.count >= 1 else { return .failure(.truncatedHeader) }
        let version = reader[0] >> 4
        let found: IPFamily
        switch version {
        case 4: found = .ipv4
        case 6: found = .ipv6
        default: return .failure(.badVersion(version))
        }
        if let family, family != found { return .failure(.familyMismatch(expected: family)) }
        let network: Result<NetworkLayer, PacketRejection> = found == .ipv4 ? parseIPv4(reader) : parseIPv6(reader)
        switch network {
        case .failure(let rejection):
            return .failure(rejection)
        case .success(let layer):
            return parseTransport(reader, layer: layer, family: found)
        }
    }

    /// What the IP layer says about where the transport header is and where the packet ends.
    private struct NetworkLayer {
        var source: PeerAddress
        var destination: PeerAddress
        var transport: TransportProtocol
        /// Offset of the transport header.
        var transportOffset: Int
        /// Offset one past the packet's last byte, per its IP length (may exceed what was captured).
        var declaredEnd: Int
        /// Whether this is the first of several fragments (the transport length may exceed it).
        var firstFragment: Bool
    }

    private static func parseIPv4(_ reader: Reader) -> Result<NetworkLayer, PacketRejection> {
        guard reader.count >= 20 else { return .failure(.truncatedHeader) }
        let ihl = reader[0] & 0x0F
        guard ihl >= 5 else { return .failure(.badIPv4HeaderLength(ihl)) }
        let headerLength = Int(ihl) * 4
        let totalLength = Int(reader.uint16(at: 2))
        guard totalLength >= headerLength else { return .failure(.badIPLength) }
        guard reader.count >= headerLength else { return .failure(.truncatedHeader) }
        let flagsAndOffset = reader.uint16(at: 6)
        guard flagsAndOffset & 0x1FFF == 0 else { return .failure(.nonFirstFragment) }
        let protocolNumber = reader[9]
        guard let transport = TransportProtocol(rawValue: protocolNumber) else {
            return .failure(.notTCPOrUDP(protocolNumber: protocolNumber))
        }
        return .success(
            NetworkLayer(
                source: PeerAddress(ipv4: reader.uint32(at: 12)),
                destination: PeerAddress(ipv4: reader.uint32(at: 16)),
                transport: transport,
                transportOffset: headerLength,
                declaredEnd: totalLength,
                firstFragment: flagsAndOffset & 0x2000 != 0))
    }

    private static func parseIPv6(_ reader: Reader) -> Result<NetworkLayer, PacketRejection> {
        guard reader.count >= 40 else { return .failure(.truncatedHeader) }
        // Payload length 0 means a jumbogram (RFC 2675), which NFLOG never hands us whole; its
        // headers then fail the length checks below as a bad length.
        let declaredEnd = 40 + Int(reader.uint16(at: 4))
        var nextHeader = reader[6]
        var offset = 40
        var firstFragment = false
        var extensionHeaders = 0
        while true {
            switch nextHeader {
            case 6, 17:
                guard let transport = TransportProtocol(rawValue: nextHeader) else {
                    return .failure(.notTCPOrUDP(protocolNumber: nextHeader))
                }
                let source = PeerAddress(high: reader.uint64(at: 8), low: reader.uint64(at: 16))
                guard !source.isIPv4 else { return .failure(.ipv4MappedSource) }
                return .success(
                    NetworkLayer(
                        source: source,
                        destination: PeerAddress(high: reader.uint64(at: 24), low: reader.uint64(at: 32)),
                        transport: transport,
                        transportOffset: offset,
                        declaredEnd: declaredEnd,
                        firstFragment: firstFragment))
            case 0, 43, 44, 51, 60:
                guard extensionHeaders < maximumExtensionHeaders else { return .failure(.tooManyExtensionHeaders) }
                extensionHeaders += 1
                // Every extension header starts with next header and a length byte.
                guard offset + 2 <= declaredEnd else { return .failure(.badIPLength) }
                guard offset + 2 <= reader.count else { return .failure(.truncatedHeader) }
                let length: Int
                switch nextHeader {
                case 44:
                    length = 8
                case 51:
                    length = (Int(reader[offset + 1]) + 2) * 4
                default:
                    length = (Int(reader[offset + 1]) + 1) * 8
                }
                guard offset + length <= declaredEnd else { return .failure(.badIPLength) }
                guard offset + length <= reader.count else { return .failure(.truncatedHeader) }
                if nextHeader == 44 {
                    let offsetAndFlags = reader.uint16(at: offset + 2)
                    guard offsetAndFlags & 0xFFF8 == 0 else { return .failure(.nonFirstFragment) }
                    firstFragment = offsetAndFlags & 0x0001 != 0
                }
                nextHeader = reader[offset]
                offset += length
            default:
                return .failure(.notTCPOrUDP(protocolNumber: nextHeader))
            }
        }
    }

    private static func parseTransport(_ reader: Reader, layer: NetworkLayer, family: IPFamily) -> Result<ParsedPacket, PacketRejection> {
        let offset = layer.transportOffset
        let headerLength = layer.transport == .tcp ? 20 : 8
        guard offset + headerLength <= layer.declaredEnd else {
            return .failure(layer.transport == .tcp ? .badTCPDataOffset : .badUDPLength)
        }
        guard offset + headerLength <= reader.count else { return .failure(.truncatedHeader) }
        guard let sourcePort = Port(rawValue: reader.uint16(at: offset)),
            let destinationPort = Port(rawValue: reader.uint16(at: offset + 2))
        else { return .failure(.zeroPort) }

        let payloadStart: Int
        let payloadEnd: Int
        var tcpFlags: TCPFlags?
        var tcpSequenceNumber: UInt32?
        switch layer.transport {
        case .udp:
            let udpLength = Int(reader.uint16(at: offset + 4))
            guard udpLength >= 8 else { return .failure(.badUDPLength) }
            // A first fragment holds only the start of a datagram whose UDP length covers it all.
            guard offset + udpLength <= layer.declaredEnd || layer.firstFragment else {
                return .failure(.badUDPLength)
            }
            payloadStart = offset + 8
            payloadEnd = offset + udpLength
        case .tcp:
            let dataOffset = Int(reader[offset + 12] >> 4)
            guard dataOffset >= 5, offset + dataOffset * 4 <= layer.declaredEnd else {
                return .failure(.badTCPDataOffset)
            }
            tcpFlags = TCPFlags(rawValue: reader[offset + 13])
            tcpSequenceNumber = reader.uint32(at: offset + 4)
            payloadStart = offset + dataOffset * 4
            payloadEnd = layer.declaredEnd
        }
        // Bytes past the IP length are link padding, not payload; bytes past the capture are missing.
        let available = Swift.min(layer.declaredEnd, reader.count)
        let capturedStart = Swift.min(payloadStart, available)
        let capturedEnd = Swift.min(payloadEnd, available)
        return .success(
            ParsedPacket(
                family: family,
                source: layer.source,
                destination: layer.destination,
                transport: layer.transport,
                sourcePort: sourcePort,
                destinationPort: destinationPort,
                tcpFlags: tcpFlags,
                payload: (reader.base + capturedStart)..<(reader.base + capturedEnd),
                payloadTruncated: payloadEnd > available,
                tcpSequenceNumber: tcpSequenceNumber))
    }
}

/// Big-endian reads at offsets from the start of the packet's bytes, in place; callers check bounds
/// first, and every read is checked again (an offset outside the bytes traps, never reads past them).
private struct Reader {
    let bytes: UnsafeRawBufferPointer
    /// The index of the first byte in the caller's collection (``ParsedPacket/payload`` uses those).
    let base: Int
    var count: Int { bytes.count }

    init(_ bytes: UnsafeRawBufferPointer, base: Int) {
        self.bytes = bytes
        self.base = base
    }

    subscript(offset: Int) -> UInt8 {
        precondition(offset >= 0 && offset < bytes.count, "PacketParser read outside the packet")
        return bytes[offset]
    }

    func uint16(at offset: Int) -> UInt16 { UInt16(bigEndian: load(at: offset)) }

    func uint32(at offset: Int) -> UInt32 { UInt32(bigEndian: load(at: offset)) }

    func uint64(at offset: Int) -> UInt64 { UInt64(bigEndian: load(at: offset)) }

    /// One check and one load for a whole field (an IPv6 address is two loads, not sixteen).
    private func load<Value: FixedWidthInteger>(at offset: Int) -> Value {
        precondition(offset >= 0 && offset <= bytes.count - MemoryLayout<Value>.size, "PacketParser read outside the packet")
        return bytes.loadUnaligned(fromByteOffset: offset, as: Value.self)
    }
}
