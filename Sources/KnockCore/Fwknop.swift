import Crypto
import Foundation
import _CryptoExtras

/// The SPA packets of fwknop 2.x clients (`fwknop`, fwknop-gui, Fwknop2, Termux).
///
/// Symmetric mode with HMAC, as `fwknop --key-gen` keys make them. Pure: no I/O, no clock.
///
/// A packet is one line of text (a UDP datagram, default port 62201):
///
///     base64(ciphertext) without "U2FsdGVkX1" and without "=" padding | base64(HMAC) without "="
///
/// - ciphertext: `"Salted__" ‖ salt (8) ‖ AES-256-CBC(PKCS#7)` with key and IV from OpenSSL's
///   `EVP_BytesToKey(MD5, salt, encryption key, count 1)`: D₁ = MD5(key ‖ salt),
///   Dᵢ = MD5(Dᵢ₋₁ ‖ key ‖ salt); key = D₁ ‖ D₂, IV = D₃. The first 10 base64 characters are
///   always "U2FsdGVkX1" (the encoding of "Salted__"), so fwknop leaves them off the wire.
/// - HMAC: HMAC-SHA256(HMAC key, "U2FsdGVkX1" ‖ the ciphertext's base64 on the wire), in base64
///   (43 characters): encrypt-then-MAC, so a packet is authenticated before anything is decrypted.
/// - plaintext: `random:b64(user):timestamp:version:type:b64(message)[:b64(nat)][:b64(server auth)][:timeout]:digest`,
///   with `random` 16 decimal digits, base64 fields unpadded, and `digest` the unpadded base64 of
///   SHA-256 (or SHA-384/512, told by its length) of everything before its colon. An access
///   message is `ADDRESS,proto/port[,proto/port…]`; address `0.0.0.0` stands for the packet's source.
public enum Fwknop {
    /// The port fwknop clients send to unless told otherwise.
    public static let defaultPort = Port(nonZero: 62201)
    /// The base64 of "Salted__", which fwknop leaves off the wire.
    public static let saltedPrefix = Array("U2FsdGVkX1".utf8)
    /// Characters of the HMAC-SHA256 at the end of a packet (32 bytes in unpadded base64).
    public static let hmacLength = 43
    /// The longest packet fwknop makes (its MAX_SPA_ENCODED_MSG_SIZE).
    public static let maximumPacketLength = 1500
    /// The shortest packet worth a look: one AES block after the salt, and the HMAC.
    public static let minimumPacketLength = 54 + hmacLength
    /// The version string our client writes (fwknop 2.6's protocol version).
    public static let clientVersion = "3.0.0"

    /// A client's two keys, as `fwknop --key-gen` prints them (`KEY_BASE64`, `HMAC_KEY_BASE64`).
    public struct Keys: Equatable, Sendable {
        /// The Rijndael passphrase bytes (1 to 32; `--key-gen` makes 32).
        public var encryptionKey: Secret
        /// The HMAC-SHA256 key bytes (`--key-gen` makes 64).
        public var hmacKey: Secret

        /// Makes keys.
        public init(encryptionKey: Secret, hmacKey: Secret) {
            self.encryptionKey = encryptionKey
            self.hmacKey = hmacKey
        }

        /// Why these keys cannot be used, or nil.
        public var problem: String? {
            if encryptionKey.bytes.isEmpty || encryptionKey.bytes.count > 32 { return "KEY_BASE64 must be 1 to 32 bytes" }
            if hmacKey.bytes.isEmpty || hmacKey.bytes.count > 128 { return "HMAC_KEY_BASE64 must be 1 to 128 bytes" }
            return nil
        }

        /// Reads a key file in `fwknop --key-gen`'s output form.
        ///
        /// `KEY_BASE64: …` and
        /// `HMAC_KEY_BASE64: …` lines; `KEY_BASE64 …` as in access.conf too; `#` comments and fwknop's
        /// `[*]` notes are skipped).
        /// Throws a message naming the missing or bad line, never a key.
        public init(parsing text: String) throws(KeyFileError) {
            var encryption: [UInt8]?
            var hmac: [UInt8]?
            for rawLine in text.split(whereSeparator: \.isNewline) {
                let line = rawLine.trimmingCharacters(in: .whitespaces)
                // fwknop's own notes ("[*] Creating initial rc file…") may be in saved --key-gen output.
                if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("[*]") { continue }
                guard let separator = line.firstIndex(where: { $0 == ":" || $0 == " " || $0 == "\t" }) else {
                    throw KeyFileError("expected \"KEY_BASE64: …\" and \"HMAC_KEY_BASE64: …\" lines")
                }
                let name = String(line[..<separator])
                let value = line[line.index(after: separator)...].trimmingCharacters(in: .whitespaces)
                switch name {
                case "KEY_BASE64", "HMAC_KEY_BASE64":
                    guard let data = Data(base64Encoded: value) else { throw KeyFileError("\(name) is not base64") }
                    if name == "KEY_BASE64" { encryption = Array(data) } else { hmac = Array(data) }
                case "HMAC_DIGEST_TYPE":
                    guard value.uppercased() == "SHA256" else { throw KeyFileError("only HMAC_DIGEST_TYPE SHA256 is supported") }
                case "KEY", "HMAC_KEY":
                    throw KeyFileError("\(name) (a passphrase) is not supported; use \(name)_BASE64 from fwknop --key-gen")
                default:
                    throw KeyFileError("unknown line \"\(name)\"; expected KEY_BASE64 and HMAC_KEY_BASE64")
                }
            }
            guard let encryption else { throw KeyFileError("KEY_BASE64 is missing") }
            guard let hmac else {
                throw KeyFileError(
                    "HMAC_KEY_BASE64 is missing: fwknop packets without an HMAC are refused; make keys with fwknop --key-gen and send with --use-hmac")
            }
            self.init(encryptionKey: Secret(bytes: encryption), hmacKey: Secret(bytes: hmac))
            if let problem { throw KeyFileError(problem) }
        }

        /// The key file text `fwknop --key-gen` prints for these keys (and fwknop's QR code text, on one line).
        public var keyFileText: String {
            "KEY_BASE64: \(Data(encryptionKey.bytes).base64EncodedString())\nHMAC_KEY_BASE64: \(Data(hmacKey.bytes).base64EncodedString())\n"
        }
    }

    /// Why a key file cannot be used.
    public struct KeyFileError: Error, Equatable, Sendable, CustomStringConvertible {
        /// What is wrong.
        public var message: String
        /// Makes an error.
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// fwknop's message types.
    public enum MessageType: Int, Sendable, CaseIterable {
        /// A command to run on the server (never honoured).
        case command = 0
        /// Open ports for an address.
        case access = 1
        /// Forward a port to an inner host (not supported).
        case natAccess = 2
        /// Open ports, for the client's own timeout.
        case clientTimeoutAccess = 3
        /// NAT access with a timeout (not supported).
        case clientTimeoutNATAccess = 4
        /// Local NAT (not supported).
        case localNATAccess = 5
        /// Local NAT with a timeout (not supported).
        case clientTimeoutLocalNATAccess = 6

        /// Whether a NAT field follows the message.
        var hasNATField: Bool { [.natAccess, .clientTimeoutNATAccess, .localNATAccess, .clientTimeoutLocalNATAccess].contains(self) }
        /// Whether a client timeout field comes last.
        var hasTimeoutField: Bool { [.clientTimeoutAccess, .clientTimeoutNATAccess, .clientTimeoutLocalNATAccess].contains(self) }
    }

    /// A decrypted message.
    public struct Message: Equatable, Sendable {
        /// 16 random decimal digits.
        public var random: String
        /// The client's user name.
        public var user: String
        /// When the client made the packet, seconds since the Unix epoch.
        public var timestamp: Int64
        /// The client's protocol version, such as "3.0.0".
        public var version: String
        /// What the client asks for.
        public var type: MessageType
        /// The address to open; nil for `0.0.0.0` (the packet's source).
        public var address: PeerAddress?
        /// The ports asked for (for access messages).
        public var access: [ServicePort]
        /// The NAT field, when the type has one (decoded text).
        public var natAccess: String?
        /// The timeout the client asks for, in seconds, when the type has one.
        public var clientTimeout: Int?

        /// Makes a message.
        public init(
            random: String, user: String, timestamp: Int64, version: String = Fwknop.clientVersion, type: MessageType = .access,
            address: PeerAddress?, access: [ServicePort], natAccess: String? = nil, clientTimeout: Int? = nil
        ) {
            self.random = random
            self.user = user
            self.timestamp = timestamp
            self.version = version
            self.type = type
            self.address = address
            self.access = access
            self.natAccess = natAccess
            self.clientTimeout = clientTimeout
        }
    }

    /// Why bytes are not a usable fwknop packet.
    public enum DecodingError: Error, Equatable, Sendable, CustomStringConvertible {
        /// Too short or too long for a packet with an HMAC.
        case length(Int)
        /// A character outside base64.
        case notBase64
        /// The HMAC verified but the encryption key did not decrypt it (wrong KEY_BASE64).
        case decryptionFailed
        /// The plaintext is not fwknop's field layout; the reason names the field.
        case fields(String)
        /// The digest inside the message does not match the message.
        case digestMismatch

        public var description: String {
            switch self {
            case .length(let count): "\(count) bytes is no fwknop packet with an HMAC"
            case .notBase64: "not base64 text"
            case .decryptionFailed: "the HMAC is right but the encryption key is not (KEY_BASE64 differs)"
            case .fields(let reason): "bad message: \(reason)"
            case .digestMismatch: "the message digest does not match"
            }
        }
    }

    // MARK: Checks in order

    /// Whether `packet` is well-formed on the outside: its length and alphabet.
    ///
    /// Cheap, no key.
    public static func outerProblem(_ packet: some Collection<UInt8>) -> DecodingError? {
        guard (minimumPacketLength...maximumPacketLength).contains(packet.count) else { return .length(packet.count) }
        for byte in packet where !isBase64(byte) { return .notBase64 }
        return nil
    }

    /// Whether `packet`'s trailing HMAC is right for `hmacKey`.
    ///
    /// The base64 text is compared in constant time, so the two spare bits of its last character
    /// cannot make a second valid form. Call ``outerProblem(_:)`` first.
    public static func hasValidHMAC(_ packet: some Collection<UInt8>, hmacKey: Secret) -> Bool {
        let bytes = Array(packet)
        guard bytes.count > hmacLength else { return false }
        let body = bytes[..<(bytes.count - hmacLength)]
        let expected = hmacText(ofWireCiphertext: body, hmacKey: hmacKey)
        var difference: UInt8 = 0
        for (left, right) in zip(expected, bytes[(bytes.count - hmacLength)...]) { difference |= left ^ right }
        return difference == 0 && expected.count == hmacLength
    }

    /// Decrypts and parses the ciphertext part of an authenticated `packet`.
    public static func open(_ packet: some Collection<UInt8>, encryptionKey: Secret) -> Result<Message, DecodingError> {
        let bytes = Array(packet)
        guard bytes.count > hmacLength else { return .failure(.length(bytes.count)) }
        var text = saltedPrefix + bytes[..<(bytes.count - hmacLength)]
        while text.count % 4 != 0 { text.append(UInt8(ascii: "=")) }
        guard let raw = Data(base64Encoded: Data(text)).map(Array.init), raw.count >= 32, (raw.count - 16) % 16 == 0,
            raw.starts(with: Array("Salted__".utf8))
        else { return .failure(.decryptionFailed) }
        let salt = raw[8..<16]
        let (key, iv) = deriveKeyAndIV(passphrase: encryptionKey.bytes, salt: salt)
        guard let ivValue = try? AES._CBC.IV(ivBytes: iv),
            let plain = try? AES._CBC.decrypt(raw[16...], using: SymmetricKey(data: key), iv: ivValue)
        else { return .failure(.decryptionFailed) }
        return parse(Array(plain))
    }

    /// Parses decrypted plaintext (pure, for tests and fuzzing).
    public static func parse(_ plain: [UInt8]) -> Result<Message, DecodingError> {
        guard let text = String(validating: plain, as: UTF8.self), text.allSatisfy({ $0.isASCII && !$0.isNewline }) else {
            return .failure(.decryptionFailed)
        }
        guard let lastColon = text.lastIndex(of: ":") else { return .failure(.fields("no digest")) }
        let encoded = text[..<lastColon]
        let digest = text[text.index(after: lastColon)...]
        let expected: String
        switch digest.count {
        case 43: expected = unpaddedBase64(Array(SHA256.hash(data: Array(encoded.utf8))))
        case 64: expected = unpaddedBase64(Array(SHA384.hash(data: Array(encoded.utf8))))
        case 86: expected = unpaddedBase64(Array(SHA512.hash(data: Array(encoded.utf8))))
        default: return .failure(.fields("digest of \(digest.count) characters (SHA-256, SHA-384 or SHA-512 expected)"))
        }
        guard expected == digest else { return .failure(.digestMismatch) }
        let fields = encoded.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count >= 6, fields.count <= 9 else { return .failure(.fields("\(fields.count + 1) fields")) }
        let random = fields[0]
        guard random.count == 16, random.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return .failure(.fields("random value is not 16 digits"))
        }
        guard let user = decodeBase64Text(fields[1]), (1...64).contains(user.utf8.count) else {
            return .failure(.fields("user name"))
        }
        guard (1...12).contains(fields[2].count), fields[2].allSatisfy({ $0.isASCII && $0.isNumber }), let timestamp = Int64(fields[2]) else {
            return .failure(.fields("timestamp"))
        }
        let version = String(fields[3])
        guard (1...8).contains(version.count) else { return .failure(.fields("version")) }
        guard fields[4].count == 1, let number = Int(fields[4]), let type = MessageType(rawValue: number) else {
            return .failure(.fields("message type"))
        }
        guard let body = decodeBase64Text(fields[5]), (1...256).contains(body.utf8.count) else {
            return .failure(.fields("message"))
        }
        var rest = fields.dropFirst(6)
        var nat: String?
        if type.hasNATField {
            guard let field = rest.popFirst(), let decoded = decodeBase64Text(field) else { return .failure(.fields("NAT access")) }
            nat = decoded
        }
        var timeout: Int?
        if type.hasTimeoutField {
            guard let field = rest.popLast(), (1...10).contains(field.count), field.allSatisfy({ $0.isASCII && $0.isNumber }),
                let seconds = Int(field)
            else { return .failure(.fields("client timeout")) }
            timeout = seconds
        }
        // What remains can only be a server-auth field, which pknockd does not use.
        guard rest.count <= 1 else { return .failure(.fields("too many fields for message type \(type.rawValue)")) }
        var message = Message(
            random: String(random), user: user, timestamp: timestamp, version: version, type: type, address: nil, access: [],
            natAccess: nat, clientTimeout: timeout)
        if type != .command {
            guard let (address, ports) = parseAccess(body) else { return .failure(.fields("access request \"\(body)\"")) }
            message.address = address
            message.access = ports
        }
        return .success(message)
    }

    /// `ADDRESS,proto/port[,proto/port…]`: the address (nil for 0.0.0.0) and the ports; nil when malformed.
    static func parseAccess(_ text: String) -> (PeerAddress?, [ServicePort])? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count >= 2, let address = PeerAddress(String(parts[0])) else { return nil }
        var ports: [ServicePort] = []
        for part in parts.dropFirst() {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count == 2, let transport = TransportProtocol(name: pieces[0]), let port = Port(pieces[1]) else { return nil }
            ports.append(ServicePort(port, transport))
        }
        return (address == PeerAddress(ipv4: 0) ? nil : address, ports)
    }

    // MARK: Encoding (our client, tests)

    /// The plaintext fwknop would encrypt for `message` (with a SHA-256 digest).
    public static func plaintext(_ message: Message) -> String {
        var text = "\(message.random):\(unpaddedBase64(Array(message.user.utf8))):\(message.timestamp):\(message.version):\(message.type.rawValue):"
        let address = message.address?.description ?? "0.0.0.0"
        let access = ([address] + message.access.map { "\($0.transport)/\($0.port)" }).joined(separator: ",")
        text += unpaddedBase64(Array(access.utf8))
        if let nat = message.natAccess { text += ":" + unpaddedBase64(Array(nat.utf8)) }
        if let timeout = message.clientTimeout { text += ":\(timeout)" }
        return text + ":" + unpaddedBase64(Array(SHA256.hash(data: Array(text.utf8))))
    }

    /// The wire packet for `message`: encrypted with `keys.encryptionKey` under `salt` (8 random
    /// bytes), then the HMAC appended.
    public static func encode(_ message: Message, keys: Keys, salt: [UInt8]) throws -> [UInt8] {
        precondition(salt.count == 8, "the salt is 8 bytes")
        let (key, iv) = deriveKeyAndIV(passphrase: keys.encryptionKey.bytes, salt: salt[...])
        let cipher = try AES._CBC.encrypt(Array(plaintext(message).utf8), using: SymmetricKey(data: key), iv: AES._CBC.IV(ivBytes: iv))
        let text = Array(unpaddedBase64(Array("Salted__".utf8) + salt + Array(cipher)).utf8)
        let wire = Array(text.dropFirst(saltedPrefix.count))
        return wire + hmacText(ofWireCiphertext: wire[...], hmacKey: keys.hmacKey)
    }

    /// A random value as fwknop makes it: 16 decimal digits.
    public static func randomValue<G: RandomNumberGenerator>(using generator: inout G) -> String {
        String(format: "%016llu", UInt64.random(in: 0..<10_000_000_000_000_000, using: &generator))
    }

    // MARK: Pieces

    /// OpenSSL's EVP_BytesToKey with MD5 and one iteration: a 32-byte key and a 16-byte IV.
    public static func deriveKeyAndIV(passphrase: [UInt8], salt: ArraySlice<UInt8>) -> (key: [UInt8], iv: [UInt8]) {
        var derived: [UInt8] = []
        var previous: [UInt8] = []
        while derived.count < 48 {
            previous = Array(Insecure.MD5.hash(data: previous + passphrase + salt))
            derived += previous
        }
        return (Array(derived[0..<32]), Array(derived[32..<48]))
    }

    /// The base64 HMAC-SHA256 text over "U2FsdGVkX1" ‖ the wire ciphertext.
    static func hmacText(ofWireCiphertext wire: ArraySlice<UInt8>, hmacKey: Secret) -> [UInt8] {
        var authenticator = HMAC<SHA256>(key: SymmetricKey(data: hmacKey.bytes))
        authenticator.update(data: saltedPrefix)
        authenticator.update(data: wire)
        return Array(unpaddedBase64(Array(authenticator.finalize())).utf8)
    }

    /// Standard base64 without trailing "=".
    public static func unpaddedBase64(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// Unpadded (or padded) base64 of UTF-8 text; nil when either is wrong.
    static func decodeBase64Text(_ field: Substring) -> String? {
        var text = String(field)
        while text.utf8.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text) else { return nil }
        return String(validating: Array(data), as: UTF8.self)
    }

    private static func isBase64(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2B
            || byte == 0x2F
    }
}

extension Port {
    /// A port from a literal known not to be 0 (checked).
    init(nonZero value: UInt16) {
        precondition(value != 0, "port 0 is no port")
        self.rawValue = value
    }
}
