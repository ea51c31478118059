import CFuzzDriver
import KnockCore

private let keys = [
    SPAKey(format: .sha256, secret: Secret("fuzz-open-secret")),
    SPAKey(format: .md5, secret: Secret("fuzz-open-secret")),
]

/// libFuzzer entry: byte 0 picks the format and the address family, then 4 or 16 address bytes and
/// 8 bytes of epoch minute, then the payload. The oracle: `verify` is true exactly when the payload
/// has the format's length and starts with the hex MAC `payload(source:epochMinute:)` computes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSPAVerify(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data, count > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: count))
    let key = keys[Int(input[0] & 1)]
    let addressLength = input[0] & 2 == 0 ? 4 : 16
    guard input.count >= 1 + addressLength + 8, let source = PeerAddress(bytes: input[1..<(1 + addressLength)]) else { return 0 }
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
    return 0
}

/// The executable's entry point (SwiftPM points `main` here): runs libFuzzer with this target.
@_cdecl("FuzzSPAVerify_main")
func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, count in fuzzSPAVerify(data, count) }
}
