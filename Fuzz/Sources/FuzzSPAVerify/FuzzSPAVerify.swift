import CFuzzDriver
import Crypto
import KnockCore

private let keys = [
    SPAKey(format: .sha256, secret: Secret("fuzz-open-secret")),
    SPAKey(format: .md5, secret: Secret("fuzz-open-secret")),
]

// SPA v2: two configured clients with fixed keys, so the fuzzer gets past the authenticator.
private let hmacKey = SymmetricKey(data: [UInt8](repeating: 0x42, count: 32))
private let ed25519Key: Curve25519.Signing.PrivateKey = {
    // Any 32-byte seed is a valid Ed25519 private key.
    guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 0x24, count: 32)) else {
        preconditionFailure("a fixed seed was refused")
    }
    return key
}()
private let ssh = RuleName(rawValue: "SSH") ?? { preconditionFailure("SSH is a rule name") }()
private let ftp = RuleName(rawValue: "FTP") ?? { preconditionFailure("FTP is a rule name") }()
private let clients = [
    SPAv2Client(id: "phone", key: .hmac(hmacKey), rules: [ssh], mayNameAddress: true),
    SPAv2Client(id: "laptop", key: .ed25519(ed25519Key.publicKey), rules: [ssh, ftp]),
]
private let serverNow: Int64 = 1_764_072_000
private let window: Int64 = 60

/// libFuzzer entry. Bits 2–3 of byte 0 pick the mode:
///
/// - 0, SPA v1: bit 0 picks the format and bit 1 the address family, then 4 or 16 address bytes and
///   8 bytes of epoch minute, then the payload. The oracle: `verify` is true exactly when the payload
///   has the format's length and starts with the hex MAC `payload(source:epochMinute:)` computes.
/// - 1, SPA v2 raw: the rest is a datagram for a verifier with two configured clients (HMAC and
///   Ed25519). The oracle: no trap, and a packet that verifies is a replay the second time.
/// - 2 (HMAC client) and 3 (Ed25519 client), SPA v2 signed: the input supplies the fields, the target
///   signs them with the client's key, so every check after the authenticator is reached. Bytes:
///   8 timestamp (big-endian; with bit 4 of byte 0 only the low byte counts, as a signed offset
///   from the server clock, to land near the window), 8 server clock (with bit 5; else a fixed
///   time), 16 nonce, 1 rule (even: SSH, odd: FTP), 1 address (0: none, 1: the source, 2: another
///   IPv4, 3: another IPv6), 1 flags (bit 0: the rule allows named addresses; bit 1: flip the byte
///   at the next input byte's position). The oracle computes the expected verdict in 128-bit
///   arithmetic, independently of the verifier.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSPAVerify(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data, count > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: count))
    switch (input[0] >> 2) & 3 {
    case 0: fuzzVersion1(input)
    case 1: fuzzVersion2Raw(input)
    default: fuzzVersion2Signed(input, ed25519: (input[0] >> 2) & 3 == 3)
    }
    return 0
}

private func fuzzVersion1(_ input: [UInt8]) {
    let key = keys[Int(input[0] & 1)]
    let addressLength = input[0] & 2 == 0 ? 4 : 16
    guard input.count >= 1 + addressLength + 8, let source = PeerAddress(bytes: input[1..<(1 + addressLength)]) else { return }
    var minute: Int64 = 0
    for byte in input[(1 + addressLength)..<(1 + addressLength + 8)] { minute = minute << 8 | Int64(byte) }
    let payload = input[(1 + addressLength + 8)...]

    let verified = key.verify(payload, source: source, epochMinute: minute)
    let expected = key.payload(source: source, epochMinute: minute)
    let matches = key.hasPayloadLength(payload.count) && payload.prefix(key.hexLength).elementsEqual(expected.prefix(key.hexLength))
    precondition(verified == matches, "verify disagrees with the computed MAC")
    // The genuine payload, and the genuine MAC with any last byte, always verify.
    precondition(key.verify(expected, source: source, epochMinute: minute), "a genuine payload failed")
    if let last = payload.last {
        precondition(key.verify(expected.prefix(key.hexLength) + [last], source: source, epochMinute: minute), "the extra byte mattered")
    }
}

private let source = PeerAddress(ipv4: 0xC000_0207)  // 192.0.2.7

private func fuzzVersion2Raw(_ input: [UInt8]) {
    var verifier = SPAv2Verifier(clients: clients, clockWindow: .seconds(window))
    let bytes = input.dropFirst()
    let now = WallTime(secondsSinceEpoch: serverNow)
    let first = verifier.verify(bytes, source: source, rule: ssh, ruleAllowsAddress: input[0] & 0x10 != 0, now: now)
    if case .success = first {
        precondition(
            verifier.verify(bytes, source: source, rule: ssh, ruleAllowsAddress: input[0] & 0x10 != 0, now: now)
                == .failure(.replayed(client: (try? SPAv2.decode(bytes).get())?.message.clientID ?? "")),
            "a valid packet was not a replay the second time")
    }
    verifier.prune(now: now)
}

private func int64(_ bytes: ArraySlice<UInt8>) -> Int64 {
    Int64(bitPattern: bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
}

private func fuzzVersion2Signed(_ input: [UInt8], ed25519: Bool) {
    let flags = input[0]
    guard input.count >= 1 + 8 + 8 + 16 + 3 else { return }
    var cursor = 1
    func take(_ count: Int) -> ArraySlice<UInt8> {
        defer { cursor += count }
        return input[cursor..<(cursor + count)]
    }
    func takeByte() -> UInt8 {
        defer { cursor += 1 }
        return input[cursor]
    }
    let rawTimestamp = take(8)
    let rawNow = take(8)
    let nowSeconds = flags & 0x20 != 0 ? int64(rawNow) : serverNow
    let timestamp =
        flags & 0x10 != 0
        ? nowSeconds.addingReportingOverflow(Int64(Int8(bitPattern: rawTimestamp.last ?? 0))).partialValue
        : int64(rawTimestamp)
    let nonce = Array(take(16))
    let rule = takeByte() & 1 == 0 ? ssh : ftp
    let addressChoice = takeByte() & 3
    let options = takeByte()
    let addresses: [PeerAddress?] = [nil, source, PeerAddress(ipv4: 0xCB00_7105), PeerAddress(high: 0x2001_0db8_0000_0000, low: 5)]
    let named = addresses[Int(addressChoice)]
    let ruleAllowsAddress = options & 1 != 0
    let client = ed25519 ? clients[1] : clients[0]
    let message = SPAv2.Message(clientID: client.id, timestamp: timestamp, nonce: nonce, rule: rule, address: named)
    guard var packet = try? SPAv2.encode(message, key: ed25519 ? .ed25519(ed25519Key) : .hmac(hmacKey)) else {
        preconditionFailure("a well-formed message did not encode")
    }
    var tampered = false
    if options & 2 != 0, cursor < input.count {
        let position = Int(input[cursor]) % packet.count
        packet[position] ^= 0x01
        tampered = true
    }
    var verifier = SPAv2Verifier(clients: clients, clockWindow: .seconds(window))
    let now = WallTime(secondsSinceEpoch: nowSeconds)
    let result = verifier.verify(packet, source: source, rule: ssh, ruleAllowsAddress: ruleAllowsAddress, now: now)

    // The expected verdict, in arithmetic that cannot overflow.
    let distance = (Int128(timestamp) - Int128(nowSeconds)).magnitude
    let addressOK = named == nil || named == source || (client.mayNameAddress && ruleAllowsAddress)
    let acceptable = distance <= UInt128(window) && rule == ssh && addressOK
    if tampered {
        if case .success = result { preconditionFailure("a tampered packet verified") }
        return
    }
    if acceptable {
        precondition(
            result == .success(.init(clientID: client.id, rule: ssh, address: named ?? source)), "a valid packet was refused: \(result)")
        precondition(
            verifier.verify(packet, source: source, rule: ssh, ruleAllowsAddress: ruleAllowsAddress, now: now)
                == .failure(.replayed(client: client.id)),
            "a replay was not refused")
    } else if distance > UInt128(window) {
        guard case .failure(.outsideClockWindow(client.id, let skew)) = result else {
            preconditionFailure("a packet outside the window was not refused for it: \(result)")
        }
        precondition((skew < 0) == (Int128(timestamp) < Int128(nowSeconds)), "the skew has the wrong sign")
        precondition(verifier.seenNonces.isEmpty, "a refused packet changed the nonce memory")
    } else {
        if case .success = result { preconditionFailure("a packet for another rule or address verified") }
        precondition(verifier.seenNonces.isEmpty, "a refused packet changed the nonce memory")
    }
    verifier.prune(now: now)
}

/// The executable's entry point (SwiftPM points `main` here): runs libFuzzer with this target.
@_cdecl("FuzzSPAVerify_main")
func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, count in fuzzSPAVerify(data, count) }
}
