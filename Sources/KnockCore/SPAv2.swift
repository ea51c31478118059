import Crypto
import Foundation

/// Single packet authorization, wire format v2: per-client keys, a timestamp and a random nonce,
/// the rule requested, optionally the address to open (for clients behind NAT), and an HMAC-SHA256
/// tag or an Ed25519 signature over all of it.
///
/// One UDP datagram of at most 175 bytes.
///
/// Layout (integers big-endian), specified with test vectors in Docs/spa-v2.md:
///
///     magic "PKO" 0x02 (4) | authenticator kind (1) | client id length n (1) | client id (n)
///     | timestamp, Unix seconds, signed (8) | nonce (16) | rule length r (1) | rule name (r)
///     | address length a: 0, 4 or 16 (1) | address (a) | tag (32, HMAC) or signature (64, Ed25519)
public enum SPAv2 {
    /// The first four bytes of every v2 packet: "PKO" and the version.
    public static let magic: [UInt8] = [0x50, 0x4B, 0x4F, 0x02]
    /// Bytes of random nonce in each packet.
    public static let nonceLength = 16
    /// The longest client id.
    public static let maximumClientIDLength = 32
    /// The largest packet the format allows.
    public static let maximumPacketLength = 4 + 1 + 1 + 32 + 8 + 16 + 1 + 31 + 1 + 16 + 64

    /// How a packet is authenticated.
    public enum AuthenticatorKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
        /// HMAC-SHA256 with the client's own 32-byte key; 32-byte tag.
        case hmacSHA256 = 1
        /// An Ed25519 signature; the server holds only the public key; 64 bytes.
        case ed25519 = 2

        /// Bytes of authenticator at the end of the packet.
        public var length: Int { self == .hmacSHA256 ? 32 : 64 }

        /// `hmac-sha256` or `ed25519`.
        public var description: String { self == .hmacSHA256 ? "hmac-sha256" : "ed25519" }
    }

    /// The signed content of a packet.
    public struct Message: Equatable, Sendable {
        /// Who is knocking: 1 to 32 of letters, digits, `.`, `_`, `-`.
        public var clientID: String
        /// When the client made the packet, seconds since the Unix epoch.
        public var timestamp: Int64
        /// 16 random bytes, never reused within the server's clock window.
        public var nonce: [UInt8]
        /// The rule whose ports the client asks for.
        public var rule: RuleName
        /// The address to open instead of the packet's source (behind NAT); nil: the source.
        public var address: PeerAddress?

        /// Makes a message.
        public init(clientID: String, timestamp: Int64, nonce: [UInt8], rule: RuleName, address: PeerAddress? = nil) {
            self.clientID = clientID
            self.timestamp = timestamp
            self.nonce = nonce
            self.rule = rule
            self.address = address
        }

        /// Whether `text` can be a client id.
        public static func isValidClientID(_ text: String) -> Bool {
            (1...maximumClientIDLength).contains(text.utf8.count)
                && text.unicodeScalars.allSatisfy {
                    ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "." || $0 == "_" || $0 == "-"
                }
        }
    }

    /// A decoded packet: its message, how it claims to be authenticated, and what to check.
    public struct Packet: Equatable, Sendable {
        /// The message.
        public var message: Message
        /// The authenticator kind the packet declares.
        public var kind: AuthenticatorKind
        /// The bytes the authenticator covers.
        public var signedBytes: [UInt8]
        /// The tag or signature.
        public var authenticator: [UInt8]
    }

    /// Why bytes are not a v2 packet.
    public enum DecodingError: Error, Equatable, Sendable {
        /// Does not start with the v2 magic (not a v2 packet at all).
        case notVersion2
        /// Unknown authenticator kind.
        case unknownAuthenticator(UInt8)
        /// Ends early, has bytes left over, or a length field out of range.
        case malformed
        /// The client id or rule name has characters or a length the format forbids.
        case badName
    }

    /// The client's secret, for making packets.
    public enum SigningKey: Sendable {
        /// A 32-byte HMAC key shared with the server.
        case hmac(SymmetricKey)
        /// An Ed25519 private key; the server has the public half.
        case ed25519(Curve25519.Signing.PrivateKey)

        var kind: AuthenticatorKind {
            switch self {
            case .hmac: .hmacSHA256
            case .ed25519: .ed25519
            }
        }
    }

    /// What the server knows about a client, for checking packets.
    public enum VerificationKey: Sendable {
        /// The shared HMAC key.
        case hmac(SymmetricKey)
        /// The client's Ed25519 public key.
        case ed25519(Curve25519.Signing.PublicKey)

        /// The authenticator kind packets checked with this key must declare.
        public var kind: AuthenticatorKind {
            switch self {
            case .hmac: .hmacSHA256
            case .ed25519: .ed25519
            }
        }

        /// The key's bytes (an HMAC key, or a public key's raw form), for comparing configurations.
        var rawKeyBytes: [UInt8] {
            switch self {
            case .hmac(let key): key.withUnsafeBytes { Array($0) }
            case .ed25519(let key): Array(key.rawRepresentation)
            }
        }

        /// Whether `packet`'s authenticator is valid for this key (constant time for HMAC).
        public func isValid(_ packet: Packet) -> Bool {
            guard packet.kind == kind else { return false }
            switch self {
            case .hmac(let key):
                return HMAC<SHA256>.isValidAuthenticationCode(packet.authenticator, authenticating: packet.signedBytes, using: key)
            case .ed25519(let key):
                return key.isValidSignature(packet.authenticator, for: packet.signedBytes)
            }
        }
    }

    /// The packet bytes for `message`, authenticated with `key`.
    public static func encode(_ message: Message, key: SigningKey) throws -> [UInt8] {
        guard Message.isValidClientID(message.clientID) else { throw DecodingError.badName }
        guard message.nonce.count == nonceLength else { throw DecodingError.malformed }
        var bytes = magic
        bytes.append(key.kind.rawValue)
        bytes.append(UInt8(message.clientID.utf8.count))
        bytes += message.clientID.utf8
        withUnsafeBytes(of: message.timestamp.bigEndian) { bytes += $0 }
        bytes += message.nonce
        bytes.append(UInt8(message.rule.rawValue.utf8.count))
        bytes += message.rule.rawValue.utf8
        let address = message.address?.networkBytes ?? []
        bytes.append(UInt8(address.count))
        bytes += address
        switch key {
        case .hmac(let symmetric):
            bytes += Array(HMAC<SHA256>.authenticationCode(for: bytes, using: symmetric))
        case .ed25519(let privateKey):
            bytes += Array(try privateKey.signature(for: bytes))
        }
        return bytes
    }

    /// Whether `bytes` start like a v2 packet (so a v1 payload is never mistaken for one).
    public static func hasMagic(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.starts(with: magic)
    }

    /// Splits `bytes` into message and authenticator without checking the authenticator.
    public static func decode(_ bytes: some Collection<UInt8>) -> Result<Packet, DecodingError> {
        let bytes = Array(bytes)
        guard bytes.starts(with: magic) else { return .failure(.notVersion2) }
        var cursor = magic.count
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, bytes.count - cursor >= count else { return nil }
            defer { cursor += count }
            return bytes[cursor..<(cursor + count)]
        }
        guard let kindByte = take(1)?.first else { return .failure(.malformed) }
        guard let kind = AuthenticatorKind(rawValue: kindByte) else { return .failure(.unknownAuthenticator(kindByte)) }
        guard let idLength = take(1)?.first, (1...maximumClientIDLength).contains(Int(idLength)),
            let idBytes = take(Int(idLength))
        else { return .failure(.malformed) }
        guard let clientID = String(validating: idBytes, as: UTF8.self), Message.isValidClientID(clientID) else {
            return .failure(.badName)
        }
        guard let timeBytes = take(8), let nonce = take(nonceLength) else { return .failure(.malformed) }
        let timestamp = timeBytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard let ruleLength = take(1)?.first, (1...RuleName.maximumLength).contains(Int(ruleLength)),
            let ruleBytes = take(Int(ruleLength))
        else { return .failure(.malformed) }
        guard let ruleText = String(validating: ruleBytes, as: UTF8.self), let rule = RuleName(rawValue: ruleText) else {
            return .failure(.badName)
        }
        guard let addressLength = take(1)?.first, [0, 4, 16].contains(addressLength),
            let addressBytes = take(Int(addressLength))
        else { return .failure(.malformed) }
        let signedEnd = cursor
        guard let authenticator = take(kind.length), cursor == bytes.count else { return .failure(.malformed) }
        let message = Message(
            clientID: clientID, timestamp: Int64(bitPattern: timestamp), nonce: Array(nonce), rule: rule,
            address: addressLength == 0 ? nil : PeerAddress(bytes: addressBytes))
        return .success(Packet(message: message, kind: kind, signedBytes: Array(bytes[0..<signedEnd]), authenticator: Array(authenticator)))
    }
}
