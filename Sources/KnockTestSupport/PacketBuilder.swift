import KnockCore

/// Builds the IPv4/IPv6 TCP and UDP packets NFLOG would deliver, for daemon tests and benchmarks.
public enum PacketBuilder {
    /// A TCP SYN from `source` to `destination`:`port`.
    public static func tcpSYN(from source: PeerAddress, to destination: PeerAddress, port: UInt16, sourcePort: UInt16 = 40000) -> [UInt8] {
        var tcp: [UInt8] = []
        tcp += bigEndian(sourcePort) + bigEndian(port)
        tcp += [0, 0, 0, 1, 0, 0, 0, 0]  // sequence, acknowledgement
        tcp += [0x50, 0x02]  // data offset 5, SYN
        tcp += [0xFF, 0xFF, 0, 0, 0, 0]  // window, checksum, urgent
        return ip(source: source, destination: destination, protocolNumber: 6, transport: tcp)
    }

    /// A UDP datagram carrying `payload`.
    public static func udp(from source: PeerAddress, to destination: PeerAddress, port: UInt16, payload: [UInt8], sourcePort: UInt16 = 40000) -> [UInt8] {
        var udp: [UInt8] = []
        udp += bigEndian(sourcePort) + bigEndian(port) + bigEndian(UInt16(8 + payload.count)) + [0, 0]
        return ip(source: source, destination: destination, protocolNumber: 17, transport: udp + payload)
    }

    /// The EtherType NFLOG reports for a packet from `source`.
    public static func etherType(of source: PeerAddress) -> UInt16 { source.isIPv4 ? 0x0800 : 0x86DD }

    private static func ip(source: PeerAddress, destination: PeerAddress, protocolNumber: UInt8, transport: [UInt8]) -> [UInt8] {
        if source.isIPv4 {
            var header: [UInt8] = [0x45, 0] + bigEndian(UInt16(20 + transport.count)) + [0, 1, 0x40, 0, 64, protocolNumber, 0, 0]
            header += source.networkBytes + destination.networkBytes
            return header + transport
        }
        var header: [UInt8] = [0x60, 0, 0, 0] + bigEndian(UInt16(transport.count)) + [protocolNumber, 64]
        header += source.networkBytes + destination.networkBytes
        return header + transport
    }

    private static func bigEndian(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
}
