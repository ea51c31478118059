import CFuzzDriver
import KnockCore

/// libFuzzer entry: the first byte picks the family hint (none, IPv4, IPv6, as NFLOG's EtherType
/// may give or not), the rest is a packet as NFLOG delivers it. Checks the parser's promises: it
/// never traps, the payload range lies inside the bytes, and a knock can be made from any success.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPacketParser(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data, count > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: count))
    let family: IPFamily? = [nil, .ipv4, .ipv6][Int(input[0] % 3)]
    let packet = Array(input.dropFirst())
    if case .success(let parsed) = PacketParser.parse(packet, family: family) {
        precondition(parsed.payload.lowerBound >= 0 && parsed.payload.upperBound <= packet.count, "payload outside the packet")
        precondition(family == nil || parsed.family == family, "family hint ignored")
        precondition(parsed.source.isIPv4 == (parsed.family == .ipv4), "source of the wrong family")
        let knock = parsed.knock(payloadFrom: packet[...])
        precondition(knock.payload.count == parsed.payload.count, "knock payload differs from the parsed range")
        precondition(parsed.transport == .udp || parsed.tcpFlags != nil, "TCP without flags")
        precondition((parsed.transport == .tcp) == (parsed.tcpSequenceNumber != nil), "a sequence number for TCP only")
        let fingerprint = knock.retransmissionFingerprint
        precondition(fingerprint != 0 && fingerprint <= 0x00FF_FFFF, "a parsed knock has a 24-bit retransmission fingerprint")
        precondition(parsed.knock(payloadFrom: packet[...]).retransmissionFingerprint == fingerprint, "fingerprint not stable")
    }
    // The same bytes at an offset (an ArraySlice with a non-zero start index) parse the same way.
    let shifted = ([0xEE] + packet).dropFirst()
    switch (PacketParser.parse(packet, family: family), PacketParser.parse(Array(shifted), family: family)) {
    case (.success(let a), .success(let b)): precondition(a == b, "parse depends on the buffer")
    case (.failure(let a), .failure(let b)): precondition(a == b, "parse depends on the buffer")
    default: preconditionFailure("parse depends on the buffer")
    }
    // The daemon's path: a view of the bytes at an offset parses as the array does, and the knock
    // made from it carries the same payload bytes and retransmission fingerprint.
    let shiftedArray = [0xEE] + packet
    let view = shiftedArray.span.extracting(1..<shiftedArray.count)
    switch (PacketParser.parse(packet, family: family), PacketParser.parse(view, family: family)) {
    case (.success(let a), .success(let b)):
        precondition(a == b, "a view parses differently")
        var storage: [UInt8] = []
        let fromView = b.knock(payloadFrom: view, storage: &storage)
        let fromArray = a.knock(payloadFrom: packet[...])
        precondition(fromView == fromArray, "a view's knock differs")
        precondition(fromView.retransmissionFingerprint == fromArray.retransmissionFingerprint, "a view's fingerprint differs")
    case (.failure(let a), .failure(let b)): precondition(a == b, "a view parses differently")
    default: preconditionFailure("a view parses differently")
    }
    // The array overload and the generic one (given a slice) are the same function.
    switch (PacketParser.parse(packet, family: family), PacketParser.parse(shifted, family: family)) {
    case (.success(let a), .success(let b)):
        precondition(a.payload.count == b.payload.count && a.source == b.source && a.tcpSequenceNumber == b.tcpSequenceNumber, "overloads differ")
    case (.failure(let a), .failure(let b)): precondition(a == b, "overloads differ")
    default: preconditionFailure("overloads differ")
    }
    return 0
}

/// The executable's entry point (SwiftPM points `main` here): runs libFuzzer with this target.
@_cdecl("FuzzPacketParser_main")
func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, count in fuzzPacketParser(data, count) }
}
