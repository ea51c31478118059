/// An IPv4 or IPv6 source address in sixteen bytes.
///
/// IPv4 addresses are held IPv4-mapped (`::ffff:a.b.c.d`), so one fixed-size value, with no heap
/// storage, serves both families as a dictionary key.
public struct PeerAddress: Hashable, Sendable, Comparable {
    /// The first eight bytes of the IPv6 form, big-endian.
    public var high: UInt64
    /// The last eight bytes of the IPv6 form, big-endian.
    public var low: UInt64

    /// Makes an address from the two halves of its IPv6 form.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Makes an IPv4 address from its 32-bit value (`192.0.2.1` is `0xC000_0201`).
    public init(ipv4 value: UInt32) {
        self.high = 0
        self.low = 0x0000_FFFF_0000_0000 | UInt64(value)
    }

    /// Makes an address from 4 (IPv4) or 16 (IPv6) bytes in network order; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4:
            var value: UInt32 = 0
            for byte in bytes { value = value << 8 | UInt32(byte) }
            self.init(ipv4: value)
        case 16:
            var high: UInt64 = 0
            var low: UInt64 = 0
            for (index, byte) in bytes.enumerated() {
                if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            self.init(high: high, low: low)
        default:
            return nil
        }
    }

    /// Whether this is an IPv4 address.
    public var isIPv4: Bool { high == 0 && low >> 32 == 0x0000_FFFF }

    /// The IPv4 value, or nil for an IPv6 address.
    public var ipv4Value: UInt32? { isIPv4 ? UInt32(truncatingIfNeeded: low) : nil }

    /// The address as it appears in a packet header: 4 bytes for IPv4, 16 for IPv6.
    ///
    /// This is the input the SPA MACs bind the packet to.
    public var networkBytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        withNetworkBytes { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Calls `body` with the address bytes in network order (4 or 16), without allocating.
    public func withNetworkBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var words = (high.bigEndian, low.bigEndian)
        return try withUnsafeBytes(of: &words) { raw in
            try body(isIPv4 ? UnsafeRawBufferPointer(rebasing: raw[12..<16]) : raw)
        }
    }

    public static func < (lhs: PeerAddress, rhs: PeerAddress) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

extension PeerAddress: CustomStringConvertible, LosslessStringConvertible {
    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` and a trailing dotted quad).
    public init?(_ text: String) {
        if !text.contains(":") {
            guard let value = Self.parseIPv4(Substring(text)) else { return nil }
            self.init(ipv4: value)
            return
        }
        guard let groups = Self.parseIPv6(Substring(text)) else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, group) in groups.enumerated() {
            if index < 4 { high = high << 16 | UInt64(group) } else { low = low << 16 | UInt64(group) }
        }
        self.init(high: high, low: low)
    }

    /// Text form: dotted quad for IPv4, RFC 5952 (lowercase, longest zero run as `::`) for IPv6.
    public var description: String {
        if let v4 = ipv4Value {
            return "\(v4 >> 24).\(v4 >> 16 & 0xFF).\(v4 >> 8 & 0xFF).\(v4 & 0xFF)"
        }
        var groups: [UInt16] = []
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: low >> UInt64(shift))) }
        // Longest run of two or more zero groups, first one on ties (RFC 5952 §4.2).
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength { bestStart = index; bestLength = end - index }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    private static func parseIPv4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let octet = UInt32(part), octet <= 255,
                part.count == 1 || part.first != "0"
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    private static func parseIPv6(_ text: Substring) -> [UInt16]? {
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xFFFF))
                    continue
                }
                guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit),
                    let group = UInt16(piece, radix: 16)
                else { return nil }
                result.append(group)
            }
            return result
        }
        let halves = text.split(separator: "::", omittingEmptySubsequences: false)
        switch halves.count {
        case 1:
            guard let all = groups(text), all.count == 8 else { return nil }
            return all
        case 2:
            guard let head = groups(halves[0]), let tail = groups(halves[1]),
                head.count + tail.count <= 7
            else { return nil }
            return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        default:
            return nil
        }
    }
}
