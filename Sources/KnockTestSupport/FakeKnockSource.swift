import KnockPOSIX
import Netfilter
import Synchronization

/// A ``PacketSource`` fed by the test: ``deliver(_:etherType:)`` queues a packet and makes the
/// descriptor readable, so a real ``DaemonLoop`` on its own thread wakes and takes it.
public final class FakeKnockSource: PacketSource, Sendable {
    private let readable: WakeSignal
    private let queue = Mutex<[NFLogPacket]>([])
    private let lost = Atomic<Int>(0)

    /// Makes an empty source.
    public init() throws(SystemCallError) { readable = try WakeSignal() }

    public var fileDescriptor: Int32 { readable.fileDescriptor }

    public var enobufsCount: Int { lost.load(ordering: .relaxed) }

    /// Queues a packet (layer-3 bytes, as ``PacketBuilder`` makes them) for the loop.
    public func deliver(_ bytes: [UInt8], etherType: UInt16) {
        queue.withLock { $0.append(NFLogPacket(payload: bytes, hardwareProtocol: etherType)) }
        readable.wake()
    }

    /// Pretends the kernel dropped `count` packets (as NFLOG's ENOBUFS).
    public func loseMessages(_ count: Int) { lost.add(count, ordering: .relaxed) }

    public func receiveQueued(_ handler: (_ packet: Span<UInt8>, _ hardwareProtocol: UInt16) -> Void) throws(NetfilterError) -> Int {
        readable.drain()
        let packets = queue.withLock { queue in
            defer { queue.removeAll() }
            return queue
        }
        for packet in packets { handler(packet.payload.span, packet.hardwareProtocol) }
        return packets.count
    }
}
