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
