import CNFLog
import Glibc

/// Reads the packets the kernel logs to one NFLOG group (nft `log group N`), through
/// libnetfilter_log.
///
/// The reader owns one netlink socket bound to the group in copy-packet mode. ``receive(timeoutMilliseconds:_:)``
/// waits with `poll()` so a caller can stop its loop between calls. Not thread-safe: one reader
/// belongs to one task or thread. Binding needs CAP_NET_ADMIN in the network namespace.
///
/// Datagrams are read in batches (`recvmmsg`) into one reused receive buffer and parsed in place
/// (``NFLogMessages``, pure Swift): ``receiveQueued(_:)`` allocates nothing per packet; ``receive(timeoutMilliseconds:_:)`` copies
/// each into an ``NFLogPacket`` for callers that keep them.
@safe
public final class NFLogReader: PacketSource {
    /// The NFLOG group this reader is bound to.
    public let group: UInt16
    /// How many bytes of each packet the kernel copies (from the IP header on).
    public let snaplen: UInt32
    /// How many times the kernel dropped log messages because the receive buffer was full.
    ///
    /// Each is one `ENOBUFS` from `recvmmsg`. Packets lost this way are not delivered; the reader
    /// goes on.
    public private(set) var enobufsCount: Int = 0
    /// How many datagrams were longer than a receive slot (their last packets are lost; only a
    /// snap length beyond what the slots were sized for does this).
    public private(set) var truncatedCount: Int = 0

    private var handle: OpaquePointer?
    private var groupHandle: OpaquePointer?
    private let descriptor: Int32
    /// `slots` datagram slots of `slotBytes` each, filled by one `recvmmsg`: 64 slots sized for one
    /// packet, or, while the kernel may send batches, fewer slots sized for a batch.
    private var buffer: [UInt8]
    private var slots: Int
    private var slotBytes: Int
    /// The queue threshold the kernel applies now (``setQueueThreshold(_:)``).
    public private(set) var queueThreshold: UInt32
    private let flushTimeoutCentiseconds: UInt32
    /// After batching ends: once the socket was found empty past this instant, no batch can be
    /// queued any more and the one-packet slots come back.
    private var singleSlotsAfter: ContinuousClock.Instant?
    /// How many datagrams were read (a batch is one).
    public private(set) var datagramCount: Int = 0
    private var lengths: [UInt32]
    private var flags: [UInt32]

    /// The most datagrams, or packets in batched datagrams, one ``receiveQueued(_:)`` reads before
    /// returning, so a flood cannot keep a caller from checking for shutdown (about a millisecond of
    /// work).
    public static let maxDatagramsPerReceive = 512

    /// Binds a new netlink socket to NFLOG `group` in copy-packet mode.
    ///
    /// - Parameters:
    ///   - group: the NFLOG group (nft `log group N`).
    ///   - snaplen: bytes of each packet to copy, from the IP header on (`nflog_set_mode` with
    ///     `NFULNL_COPY_PACKET`). An nft rule's own `snaplen` is applied first.
    ///   - receiveBufferBytes: the socket receive buffer; set with `SO_RCVBUFFORCE` (beyond
    ///     `net.core.rmem_max`, needs CAP_NET_ADMIN), else `SO_RCVBUF`.
    ///   - queueThreshold: how many packets the kernel batches into one datagram
    ///     (`nflog_set_qthresh`). 1, the default, sends each packet at once; the kernel's own
    ///     default of 100 would delay a lone knock by the flush timeout.
    ///   - flushTimeoutCentiseconds: the longest the kernel holds a partial batch
    ///     (`nflog_set_timeout`, in 1/100 s).
    ///
    /// The corresponding C functions are `nflog_open`, `nflog_unbind_pf`/`nflog_bind_pf` (for
    /// AF_INET and AF_INET6; no-ops on kernels since 3.17 but needed on older ones),
    /// `nflog_bind_group`, `nflog_set_mode`, `nflog_set_qthresh` and `nflog_set_timeout`. When another socket holds the group, throws an error for
    /// `nflog_bind_group` with the kernel's errno (EPERM) and a message saying the group is taken.
    public init(
        group: UInt16,
        snaplen: UInt32 = 512,
        receiveBufferBytes: Int = 8 << 20,
        queueThreshold: UInt32 = 1,
        flushTimeoutCentiseconds: UInt32 = 1
    ) throws(NetfilterError) {
        self.group = group
        self.snaplen = snaplen
        self.queueThreshold = queueThreshold
        self.flushTimeoutCentiseconds = flushTimeoutCentiseconds
        let single = Self.singlePacketSlotBytes(snaplen: snaplen)
        let batch = Self.batchSlotBytes(snaplen: snaplen)
        // One buffer for both layouts: 64 one-packet slots, or as many batch slots as fit (at least 4).
        self.buffer = [UInt8](repeating: 0, count: max(Int(CNFLog_batchMax) * single, 4 * batch))
        self.slotBytes = queueThreshold > 1 ? batch : single
        self.slots = min(Int(CNFLog_batchMax), buffer.count / slotBytes)
        self.lengths = [UInt32](repeating: 0, count: slots)
        self.flags = [UInt32](repeating: 0, count: slots)

        resetErrno()
        let opened = unsafe netfilterSocketCreation.withLock { _ in unsafe nflog_open() }
        guard let handle = unsafe opened else {
            throw NetfilterError(operation: "nflog_open", errno: Self.errnoOrUnknown())
        }
        unsafe self.handle = handle
        self.descriptor = unsafe nflog_fd(handle)

        do throws(NetfilterError) {
            for family in [UInt16(AF_INET), UInt16(AF_INET6)] {
                // An unbind error only means nothing was bound; the bind's error matters.
                _ = unsafe nflog_unbind_pf(handle, family)
                resetErrno()
                if unsafe nflog_bind_pf(handle, family) < 0 {
                    let code = Self.errnoOrUnknown()
                    throw NetfilterError(
                        operation: "nflog_bind_pf",
                        errno: code,
                        message: code == EPERM ? "reading NFLOG needs CAP_NET_ADMIN in this network namespace" : nil
                    )
                }
            }
            resetErrno()
            guard let groupHandle = unsafe nflog_bind_group(handle, group) else {
                // The kernel answers EPERM when another socket owns the group (nfulnl_recv_config
                // compares the owner's port id); nflog_bind_pf above already proved we hold
                // CAP_NET_ADMIN, so EPERM here means busy. EBUSY is accepted too, for safety.
                let code = Self.errnoOrUnknown()
                let busy = code == EPERM || code == EBUSY
                throw NetfilterError(
                    operation: "nflog_bind_group",
                    errno: code,
                    message: busy
                        ? "NFLOG group \(group) is already bound by another socket (another pknockd, ulogd, or a second reader)"
                        : "cannot bind NFLOG group \(group)"
                )
            }
            unsafe self.groupHandle = groupHandle
            try Self.check("nflog_set_mode", unsafe nflog_set_mode(groupHandle, CNFLog_copyPacket, snaplen))
            try Self.check("nflog_set_qthresh", unsafe nflog_set_qthresh(groupHandle, queueThreshold))
            try Self.check("nflog_set_timeout", unsafe nflog_set_timeout(groupHandle, flushTimeoutCentiseconds))
            try setReceiveBuffer(bytes: receiveBufferBytes)
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
    }

    /// A one-packet datagram: the snap length and its netlink and attribute headers (under 300 bytes).
    private static func singlePacketSlotBytes(snaplen: UInt32) -> Int { (Int(snaplen) + 1_024 + 63) & ~63 }
    /// A batching kernel fills datagrams up to its batch buffer (``batchBufferBytes``), or one packet
    /// if that is larger.
    private static func batchSlotBytes(snaplen: UInt32) -> Int { (batchBufferBytes + Int(snaplen) + 1_024 + 63) & ~63 }

    /// The kernel's buffer for a batch while batching (`NFULA_CFG_NLBUFSIZ`), sent with every
    /// threshold above 1.
    ///
    /// Room for about 80 knock packets (a knock's message is about 190 bytes), so
    /// a batch ends at its threshold (at most 64) rather than at the kernel's default buffer
    /// (NLMSG_GOODSIZE, about 3.7 KiB: 20 knocks). Just under 16 KiB with the kernel's bookkeeping,
    /// so a batch's buffer is an order-2 allocation. The kernel keeps it after batching ends (it
    /// refuses sizes below its default, so it cannot be set back); a lone packet's datagram is
    /// trimmed to its size before it is queued.
    public static let batchBufferBytes = 16_000

    /// Tells the kernel to gather up to `threshold` packets into one datagram (1: each packet at
    /// once), keeping the flush timeout the reader was made with.
    ///
    /// Sent on the reader's own socket without an acknowledgement, so packets keep flowing; from
    /// the first threshold above 1 the receive slots are sized for batches, until the socket was
    /// found empty two flush timeouts after batching ended (a partial batch the kernel still held
    /// has come by then). The corresponding C function is `sendto` (an `NFULNL_MSG_CONFIG` message
    /// with `NFULA_CFG_QTHRESH` and `NFULA_CFG_TIMEOUT`, and above 1 `NFULA_CFG_NLBUFSIZ` of
    /// ``batchBufferBytes``).
    public func setQueueThreshold(_ threshold: UInt32) throws(NetfilterError) {
        try requireOpen("NFLogReader.setQueueThreshold")
        let threshold = max(1, threshold)
        guard threshold != queueThreshold else { return }
        let bufferBytes = threshold > 1 ? UInt32(Self.batchBufferBytes) : 0
        if CNFLog_sendQueueThreshold(descriptor, group, threshold, flushTimeoutCentiseconds, bufferBytes) != 0 {
            throw NetfilterError(
                operation: "sendto(NFULNL_MSG_CONFIG)", errno: Self.errnoOrUnknown(),
                message: "setting the queue threshold of NFLOG group \(group)")
        }
        queueThreshold = threshold
        if threshold > 1 {
            singleSlotsAfter = nil
            useSlots(of: Self.batchSlotBytes(snaplen: snaplen))
        } else {
            singleSlotsAfter = .now + .milliseconds(20 * Int64(max(1, flushTimeoutCentiseconds)))
        }
    }

    private func useSlots(of bytes: Int) {
        slotBytes = bytes
        slots = min(Int(CNFLog_batchMax), buffer.count / bytes)
    }

    /// The socket was found empty: after batching ended and its last partial batch was due, one-packet slots again.
    private func socketWasEmpty() {
        if let after = singleSlotsAfter, ContinuousClock.now >= after {
            singleSlotsAfter = nil
            useSlots(of: Self.singlePacketSlotBytes(snaplen: snaplen))
        }
    }

    /// The netlink socket's descriptor (for an external poll loop); -1 once closed.
    ///
    /// The corresponding C function is `nflog_fd`.
    public var fileDescriptor: Int32 {
        unsafe handle == nil ? -1 : descriptor
    }

    /// The receive buffer the kernel granted, in bytes.
    ///
    /// The kernel reports twice what was asked, to cover its bookkeeping.
    /// The corresponding C function is `getsockopt(SO_RCVBUF)`.
    public var effectiveReceiveBufferBytes: Int {
        get throws(NetfilterError) {
            try requireOpen("getsockopt")
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = try valueOrErrno("getsockopt(SO_RCVBUF)") {
                unsafe getsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &value, &length)
            }
            return Int(value)
        }
    }

    /// Blocks until at least one datagram arrives (or the timeout passes), then delivers every
    /// packet in it to `handler` and returns how many were delivered.
    ///
    /// Datagrams already queued behind the first are read too (as ``receiveQueued(_:)``). `ENOBUFS` is
    /// counted in ``enobufsCount``, not thrown. EINTR is retried with the time that remains.
    /// Other errors throw. A negative timeout waits forever; 0 only takes what is queued.
    /// The corresponding C functions are `poll` and `recvmmsg`.
    public func receive(
        timeoutMilliseconds: Int32,
        _ handler: (borrowing NFLogPacket) -> Void
    ) throws(NetfilterError) -> Int {
        try requireOpen("NFLogReader.receive")
        guard try waitUntilReadable(timeoutMilliseconds: timeoutMilliseconds) else { return 0 }
        return try receiveQueuedMessages { bytes, packet in
            let prefix = packet.prefix.map { String(decoding: bytes[$0], as: UTF8.self) }
            handler(NFLogPacket(payload: Array(bytes[packet.payload]), hardwareProtocol: packet.etherType, prefix: prefix))
        }
    }

    /// Delivers the packets already queued, without waiting (for a caller that polled
    /// ``fileDescriptor`` itself); returns how many.
    ///
    /// Datagrams are read in batches, up to 64 per `recvmmsg` (one system call for all that are
    /// queued), each into its own slot of the one receive buffer, and parsed in place by
    /// ``NFLogMessages``: each packet is a `Span` of that buffer (no copy, no allocation, no
    /// reference counting), valid during the call. Reading stops when the socket is empty or after
    /// ``maxDatagramsPerReceive`` datagrams or packets, so a flood cannot keep the caller from its
    /// other work.
    /// `ENOBUFS` is counted in ``enobufsCount``, not thrown. The corresponding C function is
    /// `recvmmsg`.
    public func receiveQueued(_ handler: (_ packet: Span<UInt8>, _ hardwareProtocol: UInt16) -> Void) throws(NetfilterError) -> Int {
        try receiveQueuedMessages { bytes, packet in
            handler(bytes.span.extracting(packet.payload), packet.etherType)
        }
    }

    /// The reading of ``receiveQueued(_:)``: `body` gets the receive buffer (borrowed) and where
    /// each packet's parts are in it.
    private func receiveQueuedMessages(_ body: ([UInt8], NFLogMessages.Packet) -> Void) throws(NetfilterError) -> Int {
        try requireOpen("NFLogReader.receiveQueued")
        var delivered = 0
        var read = 0
        // Batches count as their packets: one call does about the same work either way.
        batches: while read < Self.maxDatagramsPerReceive && delivered < Self.maxDatagramsPerReceive {
            let count = unsafe buffer.withUnsafeMutableBytes { bytes in
                unsafe lengths.withUnsafeMutableBufferPointer { lengths in
                    unsafe flags.withUnsafeMutableBufferPointer { flags in
                        unsafe CNFLog_receiveBatch(
                            descriptor, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), slotBytes, UInt32(slots),
                            lengths.baseAddress, flags.baseAddress)
                    }
                }
            }
            if count < 0 {
                switch currentErrno {
                case EINTR:
                    continue batches
                case EAGAIN, EWOULDBLOCK:
                    if singleSlotsAfter != nil { socketWasEmpty() }
                    break batches
                case ENOBUFS:
                    // The kernel dropped messages; what is still queued can be read.
                    enobufsCount += 1
                    continue batches
                case let code:
                    throw NetfilterError(operation: "recvmmsg", errno: code, message: "reading NFLOG group \(group)")
                }
            }
            if count == 0 { break }
            read += Int(count)
            datagramCount &+= Int(count)
            // One reference for the whole batch: the views below are slices of it.
            let bytes = buffer
            for slot in 0..<Int(count) {
                if flags[slot] & UInt32(MSG_TRUNC) != 0 { truncatedCount += 1 }
                let start = slot * slotBytes
                let datagram = start..<start + min(Int(lengths[slot]), slotBytes)
                delivered += NFLogMessages.forEachPacket(in: bytes, range: datagram) { packet in body(bytes, packet) }
            }
            // Fewer than the slots: the socket is empty (a recvmmsg more would only say EAGAIN).
            if Int(count) < slots {
                if singleSlotsAfter != nil { socketWasEmpty() }
                break
            }
        }
        return delivered
    }

    /// Unbinds the group and closes the socket; later receives throw.
    ///
    /// Safe to call more than once. The corresponding C functions are `nflog_unbind_group` and
    /// `nflog_close`.
    public func close() {
        if let groupHandle = unsafe groupHandle {
            _ = unsafe nflog_unbind_group(groupHandle)
            unsafe self.groupHandle = nil
        }
        if let handle = unsafe handle {
            _ = unsafe nflog_close(handle)
            unsafe self.handle = nil
        }
    }

    // MARK: - Private

    private func requireOpen(_ operation: String) throws(NetfilterError) {
        if unsafe handle == nil {
            throw NetfilterError(operation: operation, errno: EBADF, message: "the NFLOG reader is closed")
        }
    }

    /// Polls for input, retrying EINTR with the time that remains; false on timeout.
    private func waitUntilReadable(timeoutMilliseconds: Int32) throws(NetfilterError) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(max(timeoutMilliseconds, 0)))
        var timeout = timeoutMilliseconds
        while true {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = unsafe poll(&entry, 1, timeout)
            if ready > 0 {
                // POLLERR is how a pending ENOBUFS shows; recvmmsg reports and clears it.
                return true
            }
            if ready == 0 { return false }
            let code = currentErrno
            guard code == EINTR else {
                throw NetfilterError(operation: "poll", errno: code, message: "waiting on NFLOG group \(group)")
            }
            if timeoutMilliseconds > 0 {
                let left = clock.now.duration(to: deadline)
                let (seconds, attoseconds) = left.components
                timeout = Int32(clamping: max(0, seconds * 1_000 + attoseconds / 1_000_000_000_000_000))
            }
        }
    }

    private func setReceiveBuffer(bytes: Int) throws(NetfilterError) {
        var value = Int32(clamping: bytes)
        let size = socklen_t(MemoryLayout<Int32>.size)
        let forced = unsafe setsockopt(descriptor, SOL_SOCKET, CNFLog_soRcvbufForce, &value, size)
        if forced == 0 { return }
        guard currentErrno == EPERM else {
            throw NetfilterError(operation: "setsockopt(SO_RCVBUFFORCE)", errno: currentErrno)
        }
        // Without CAP_NET_ADMIN the kernel caps SO_RCVBUF at net.core.rmem_max.
        _ = try valueOrErrno("setsockopt(SO_RCVBUF)") {
            unsafe setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &value, size)
        }
    }

    private static func check(_ operation: String, _ status: Int32) throws(NetfilterError) {
        if status < 0 {
            throw NetfilterError(operation: operation, errno: errnoOrUnknown())
        }
    }

    /// libnetfilter_log reports failures through errno; if it left none, say EIO rather than nil.
    private static func errnoOrUnknown() -> Int32 {
        let code = currentErrno
        return code == 0 ? EIO : code
    }
}
