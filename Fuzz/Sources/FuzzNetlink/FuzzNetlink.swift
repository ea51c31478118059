import CFuzzDriver
import Netfilter

/// libFuzzer entry for what pknockd reads from netlink sockets: NFLOG datagrams
/// (``NFLogMessages``) and nf_tables notifications and acknowledgements (``NFTablesNetlink``).
/// Checks that nothing traps and that every payload and prefix range lies inside the datagram.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNetlink(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data, count > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: count))
    // The datagram may be read from a larger buffer: only `count` bytes of it are the kernel's.
    let buffer = bytes + [UInt8](repeating: 0xA5, count: 64)
    let found = NFLogMessages.forEachPacket(in: buffer, count: bytes.count) { packet in
        precondition(packet.payload.lowerBound >= 0 && packet.payload.upperBound <= bytes.count, "payload outside the datagram")
        if let prefix = packet.prefix {
            precondition(prefix.lowerBound >= 0 && prefix.upperBound <= bytes.count, "prefix outside the datagram")
        }
    }
    precondition(found >= 0)
    // The same datagram in a slot of a batched receive buffer (NFLogReader's recvmmsg): the same
    // packets, at the slot's offset, never outside the slot.
    let offset = 1 + Int(data[0] % 61)
    let slotted = [UInt8](repeating: 0x5A, count: offset) + buffer
    var inSlot = 0
    NFLogMessages.forEachPacket(in: slotted, range: offset..<offset + bytes.count) { packet in
        precondition(packet.payload.lowerBound >= offset && packet.payload.upperBound <= offset + bytes.count, "payload outside the slot")
        if let prefix = packet.prefix {
            precondition(prefix.lowerBound >= offset && prefix.upperBound <= offset + bytes.count, "prefix outside the slot")
        }
        inSlot += 1
    }
    precondition(inSlot == found, "a datagram in a slot parsed differently")
    _ = NFTablesNetlink.changes(in: bytes, table: "pknock", ignoringPortID: 1)
    _ = NFTablesNetlink.acknowledgement(in: bytes, sequence: UInt32(truncatingIfNeeded: count))
    return 0
}

/// The executable's entry point (SwiftPM points `main` here): runs libFuzzer with this target.
@_cdecl("FuzzNetlink_main")
func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, count in fuzzNetlink(data, count) }
}
