/// One packet delivered by NFLOG: its layer-3 bytes and how the kernel labelled it.
public struct NFLogPacket: Equatable, Sendable {
    /// The EtherType of IPv4 (`ETH_P_IP`).
    public static let etherTypeIPv4: UInt16 = 0x0800
    /// The EtherType of IPv6 (`ETH_P_IPV6`).
    public static let etherTypeIPv6: UInt16 = 0x86DD

    /// The packet from its IPv4 or IPv6 header onward, cut at the snap length.
    public var payload: [UInt8]
    /// The packet's EtherType in host order: ``etherTypeIPv4`` or ``etherTypeIPv6``.
    ///
    /// 0 if the kernel gave none. The corresponding C function is `nflog_get_msg_packet_hdr`.
    public var hardwareProtocol: UInt16
    /// The prefix of the nft `log prefix "…"` statement that logged it, if any.
    public var prefix: String?

    /// Makes a packet value (the reader does this; tests may too).
    public init(payload: [UInt8], hardwareProtocol: UInt16, prefix: String? = nil) {
        self.payload = payload
        self.hardwareProtocol = hardwareProtocol
        self.prefix = prefix
    }
}

/// Where the daemon's intake loop gets packets: ``NFLogReader`` in production, a fake in tests.
///
/// The loop polls ``fileDescriptor`` itself and then takes what is queued, so one `poll` covers
/// every source it waits on.
public protocol PacketSource: AnyObject {
    /// Readable while packets are queued.
    var fileDescriptor: Int32 { get }
    /// How often packets were lost before reaching the source (NFLOG's `ENOBUFS`).
    var enobufsCount: Int { get }
    /// Hands every queued packet to `handler` without waiting; returns how many.
    ///
    /// The handler gets each packet from its IPv4 or IPv6 header on (cut at the snap length) as a
    /// borrowed view, valid for the call only, and its EtherType in host order (0 if the kernel gave
    /// none): no copy, no reference counting per packet.
    func receiveQueued(_ handler: (_ packet: Span<UInt8>, _ hardwareProtocol: UInt16) -> Void) throws(NetfilterError) -> Int
    /// Asks the kernel to gather up to `threshold` packets per datagram (1: each at once).
    func setQueueThreshold(_ threshold: UInt32) throws(NetfilterError)
    /// Datagrams read (a batch of packets is one).
    var datagramCount: Int { get }
}

extension PacketSource {
    /// Sources that are not the kernel's (fakes, tests) have no queue to batch.
    public func setQueueThreshold(_ threshold: UInt32) throws(NetfilterError) {}
    /// Sources that are not the kernel's count no datagrams.
    public var datagramCount: Int { 0 }
}
