import CNFLog
import Glibc
import Synchronization

/// Held while any nfnetlink socket of this process is opened (libnftables contexts, NFLOG readers,
/// monitors), so ``NFTContext`` can tell which new socket is its own.
let netfilterSocketCreation = Mutex<Void>(())

/// The netlink socket calls nf_tables ownership and monitoring need: find a socket's port ID,
/// send one buffer, receive with a bounded wait.
///
/// `NETLINK_NETFILTER` sockets only.
enum NetlinkSocket {
    /// `NETLINK_NETFILTER`, the netlink protocol of nfnetlink (nf_tables, NFLOG).
    static let netfilterProtocol: Int32 = 12

    /// The descriptors this process has open now, from `/proc/self/fd`.
    ///
    /// The corresponding C functions are `opendir`, `readdir` and `closedir`.
    static func openDescriptors() -> Set<Int32> {
        var found: Set<Int32> = []
        guard let directory = unsafe opendir("/proc/self/fd") else { return found }
        defer { unsafe closedir(directory) }
        // The directory stream's own descriptor is listed too, and is gone once this returns.
        let own = unsafe dirfd(directory)
        while let entry = unsafe readdir(directory) {
            let name = unsafe withUnsafeBytes(of: entry.pointee.d_name) { raw in
                unsafe String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let descriptor = Int32(name), descriptor != own { found.insert(descriptor) }
        }
        return found
    }

    /// The port ID of `descriptor` if it is a bound `NETLINK_NETFILTER` socket, else nil.
    ///
    /// The corresponding C functions are `getsockopt(SO_PROTOCOL)` and `getsockname`.
    static func netfilterPortID(of descriptor: Int32) -> UInt32? {
        var proto: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard unsafe getsockopt(descriptor, SOL_SOCKET, SO_PROTOCOL, &proto, &length) == 0, proto == netfilterProtocol else {
            return nil
        }
        var address = sockaddr_nl()
        var addressLength = socklen_t(MemoryLayout<sockaddr_nl>.size)
        let status = unsafe withUnsafeMutablePointer(to: &address) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe getsockname(descriptor, $0, &addressLength) }
        }
        guard status == 0, address.nl_family == sa_family_t(AF_NETLINK) else { return nil }
        return address.nl_pid
    }

    /// Binds an unbound netlink socket to a port ID the kernel picks, and returns it; a socket that
    /// is bound already keeps its port ID.
    ///
    /// libnftables leaves its socket unbound until its first
    /// send; binding early names the port our changes will carry.
    ///
    /// The corresponding C function is `bind` with `nl_pid` 0.
    static func bindAutomatically(_ descriptor: Int32) -> UInt32? {
        if let bound = netfilterPortID(of: descriptor), bound != 0 { return bound }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        _ = unsafe withUnsafePointer(to: &address) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                unsafe bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
            }
        }
        return netfilterPortID(of: descriptor).flatMap { $0 == 0 ? nil : $0 }
    }

    /// Opens a `NETLINK_NETFILTER` socket subscribed to `group` (non-blocking, close-on-exec).
    ///
    /// The corresponding C functions are `socket`, `bind` and `setsockopt(NETLINK_ADD_MEMBERSHIP)`.
    static func openSubscribed(group: UInt32, receiveBufferBytes: Int) throws(NetfilterError) -> Int32 {
        let descriptor = try valueOrErrno("socket(AF_NETLINK)") {
            netfilterSocketCreation.withLock { _ in
                socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), netfilterProtocol)
            }
        }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let bound = unsafe withUnsafePointer(to: &address) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                unsafe bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
            }
        }
        var member = Int32(group)
        let joined = unsafe setsockopt(descriptor, CNFLog_solNetlink, CNFLog_netlinkAddMembership, &member, socklen_t(MemoryLayout<Int32>.size))
        if bound != 0 || joined != 0 {
            let code = currentErrno
            _ = Glibc.close(descriptor)
            throw NetfilterError(operation: bound != 0 ? "bind(AF_NETLINK)" : "setsockopt(NETLINK_ADD_MEMBERSHIP)", errno: code)
        }
        var size = Int32(clamping: receiveBufferBytes)
        // SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN; SO_RCVBUF is the unprivileged fallback.
        if unsafe setsockopt(descriptor, SOL_SOCKET, CNFLog_soRcvbufForce, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            _ = unsafe setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        return descriptor
    }

    /// Sends `bytes` as one datagram to the kernel.
    ///
    /// The corresponding C function is `send`.
    static func send(_ bytes: [UInt8], on descriptor: Int32) throws(NetfilterError) {
        let sent = try valueOrErrno("send(AF_NETLINK)") {
            unsafe bytes.withUnsafeBytes { unsafe Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
        }
        if sent != bytes.count {
            throw NetfilterError(operation: "send(AF_NETLINK)", errno: EMSGSIZE, message: "sent \(sent) of \(bytes.count) bytes")
        }
    }

    /// What one ``receive(on:into:)`` found.
    enum Received: Equatable {
        /// A datagram of this many bytes is at the start of the buffer.
        case datagram(Int)
        /// Nothing is queued.
        case empty
        /// The kernel dropped messages for lack of buffer space (`ENOBUFS`).
        case overrun
    }

    /// Takes one queued datagram without waiting.
    ///
    /// The corresponding C function is `recv(MSG_DONTWAIT)`.
    static func receive(on descriptor: Int32, into buffer: inout [UInt8]) throws(NetfilterError) -> Received {
        while true {
            let count = unsafe buffer.withUnsafeMutableBytes { unsafe recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count >= 0 { return .datagram(count) }
            switch currentErrno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .empty
            case ENOBUFS: return .overrun
            case let code: throw NetfilterError(operation: "recv(AF_NETLINK)", errno: code)
            }
        }
    }

    /// Waits up to `milliseconds` for `descriptor` to be readable; false on timeout.
    ///
    /// The corresponding C function is `poll`.
    static func waitReadable(_ descriptor: Int32, milliseconds: Int32) throws(NetfilterError) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = try valueOrErrno("poll") { unsafe poll(&entry, 1, milliseconds) }
        return ready > 0
    }
}
