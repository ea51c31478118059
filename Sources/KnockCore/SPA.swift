import Crypto
import Foundation  // DataProtocol/ContiguousBytes conformances of raw buffers, used by swift-crypto

/// Computes and checks the original PortKnockO SPA payloads.
///
/// `sha256` (xt_pknock `--opensecret`): the 64 lowercase hex digits of
/// HMAC-SHA256(secret, source address ‖ epoch minute as UInt32 little-endian), then any one byte.
/// `md5` (the original `--secure`): the 32 lowercase hex digits of
/// HMAC-MD5(secret, source address ‖ epoch minute as UInt64 little-endian), then optionally one byte.
/// The source address is 4 bytes in network order for IPv4 and, our extension, 16 bytes for IPv6.
public struct SPAKey: Sendable {
    /// The wire format.
    public let format: SPAFormat
    private let key: SymmetricKey

    /// Prepares `secret` for `format`.
    public init(format: SPAFormat, secret: Secret) {
        self.format = format
        self.key = SymmetricKey(data: secret.bytes)
    }

    /// Number of hex digits in a MAC of this format.
    public var hexLength: Int { format == .sha256 ? 64 : 32 }

    /// Whether a payload has the length of this format (digits, or digits plus one byte).
    public func hasPayloadLength(_ count: Int) -> Bool { count == hexLength || count == hexLength + 1 }

    /// The full payload a client sends: hex MAC followed by `\n` (the reference client's extra byte).
    public func payload(source: PeerAddress, epochMinute: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hexLength + 1)
        let hexDigits = Array("0123456789abcdef".utf8)
        withMAC(source: source, epochMinute: epochMinute) { mac in
            for byte in mac {
                bytes.append(hexDigits[Int(byte >> 4)])
                bytes.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Whether `payload` carries the MAC for `source` in `epochMinute`, compared in constant time.
    ///
    /// Only lowercase hex is accepted, as the original compared the hex text. Does not allocate.
    public func verify(_ payload: some RandomAccessCollection<UInt8>, source: PeerAddress, epochMinute: Int64) -> Bool {
        guard hasPayloadLength(payload.count) else { return false }
        let macLength = hexLength / 2
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: macLength) { decoded in
            var index = payload.startIndex
            for position in 0..<macLength {
                guard let high = Self.hexValue(payload[index]) else { return false }
                index = payload.index(after: index)
                guard let low = Self.hexValue(payload[index]) else { return false }
                index = payload.index(after: index)
                decoded[position] = high << 4 | low
            }
            let claimed = UnsafeRawBufferPointer(decoded)
            return withMessage(source: source, epochMinute: epochMinute) { message in
                switch format {
                case .sha256:
                    return HMAC<SHA256>.isValidAuthenticationCode(claimed, authenticating: message, using: key)
                case .md5:
                    return HMAC<Insecure.MD5>.isValidAuthenticationCode(claimed, authenticating: message, using: key)
                }
            }
        }
    }

    private func withMAC(source: PeerAddress, epochMinute: Int64, _ body: (UnsafeRawBufferPointer) -> Void) {
        withMessage(source: source, epochMinute: epochMinute) { message in
            switch format {
            case .sha256:
                HMAC<SHA256>.authenticationCode(for: message, using: key).withUnsafeBytes(body)
            case .md5:
                HMAC<Insecure.MD5>.authenticationCode(for: message, using: key).withUnsafeBytes(body)
            }
        }
    }

    /// Calls `body` with the MAC input: address bytes ‖ epoch minute, little-endian, 4 or 8 bytes.
    private func withMessage<R>(source: PeerAddress, epochMinute: Int64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { buffer in
            var count = source.withNetworkBytes { address in
                for (offset, byte) in address.enumerated() { buffer[offset] = byte }
                return address.count
            }
            let minuteBytes = format == .sha256 ? 4 : 8
            let minute = UInt64(bitPattern: epochMinute)
            for shift in 0..<minuteBytes {
                buffer[count] = UInt8(truncatingIfNeeded: minute >> UInt64(8 * shift))
                count += 1
            }
            return body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<count]))
        }
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
