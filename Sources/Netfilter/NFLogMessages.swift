/// NFLOG's packet messages (`NFULNL_MSG_PACKET`), read in place from a received datagram: no copy,
/// no allocation, every length checked (a malformed message ends the datagram, never traps).
///
/// Pure, so it is fuzzed and tested with datagrams captured once from the kernel. Constants are
/// from `<linux/netfilter/nfnetlink_log.h>`.
public enum NFLogMessages {
    /// `NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET`.
    static let packetMessageType: UInt16 = 4 << 8 | 0
    /// `NFULA_PACKET_HDR` (struct nfulnl_msg_packet_hdr: be16 hw_protocol, u8 hook, u8 pad).
    static let packetHeaderAttribute: UInt16 = 1
    /// `NFULA_PAYLOAD`: the packet from its network header on, cut at the snap length.
    static let payloadAttribute: UInt16 = 9
    /// `NFULA_PREFIX`: the `log prefix` text, NUL-terminated.
    static let prefixAttribute: UInt16 = 10

    /// Where one logged packet is in a datagram.
    public struct Packet: Equatable, Sendable {
        /// The EtherType the kernel gave (`hw_protocol`): 0x0800 IPv4, 0x86DD IPv6, 0 if none.
        public var etherType: UInt16
        /// The packet's bytes, from the network header on.
        public var payload: Range<Int>
        /// The `log prefix` text without its NUL, if the message has one.
        public var prefix: Range<Int>?
    }

    /// Calls `body` with every packet message in `bytes[..<count]`, in order; returns how many it
    /// found.
    ///
    /// Messages of other types (acks, errors) are skipped; a message whose lengths do not add
    /// up ends the scan.
    @discardableResult
    public static func forEachPacket(in bytes: [UInt8], count: Int, _ body: (Packet) -> Void) -> Int {
        forEachPacket(in: bytes, range: 0..<max(0, count), body)
    }

    /// Calls `body` with every packet message of the datagram at `range` of `bytes`, in order;
    /// returns how many it found.
    ///
    /// The datagram is one slot of a batched receive buffer. Ranges in each ``Packet`` are indices
    /// of `bytes`; a range reaching past `bytes` is cut at its end.
    @discardableResult
    public static func forEachPacket(in bytes: [UInt8], range: Range<Int>, _ body: (Packet) -> Void) -> Int {
        let end = min(range.upperBound, bytes.count)
        var offset = max(0, range.lowerBound)
        var found = 0
        while offset + 16 <= end {
            let length = Int(readUInt32(bytes, offset))
            guard length >= 16, offset + length <= end else { break }
            if readUInt16(bytes, offset + 4) == packetMessageType {
                var etherType: UInt16 = 0
                var payload: Range<Int>? = nil
                var prefix: Range<Int>? = nil
                // nlmsghdr (16) and nfgenmsg (4), then the attributes.
                var attribute = offset + 20
                let messageEnd = offset + length
                while attribute + 4 <= messageEnd {
                    let attributeLength = Int(readUInt16(bytes, attribute))
                    guard attributeLength >= 4, attribute + attributeLength <= messageEnd else { break }
                    switch readUInt16(bytes, attribute + 2) & 0x3FFF {
                    case packetHeaderAttribute where attributeLength >= 6:
                        etherType = UInt16(bytes[attribute + 4]) << 8 | UInt16(bytes[attribute + 5])
                    case payloadAttribute:
                        payload = attribute + 4..<attribute + attributeLength
                    case prefixAttribute:
                        let text = attribute + 4..<attribute + attributeLength
                        prefix = text.lowerBound..<(bytes[text].firstIndex(of: 0) ?? text.upperBound)
                    default:
                        break
                    }
                    attribute += (attributeLength + 3) & ~3
                }
                if let payload {
                    body(Packet(etherType: etherType, payload: payload, prefix: prefix))
                    found += 1
                }
            }
            offset += (length + 3) & ~3
        }
        return found
    }

    @inline(__always)
    private static func readUInt16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
        UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    @inline(__always)
    private static func readUInt32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(readUInt16(bytes, offset)) | UInt32(readUInt16(bytes, offset + 2)) << 16
    }
}
