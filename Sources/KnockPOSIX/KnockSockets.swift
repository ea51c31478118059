#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A host name that did not resolve.
public struct ResolutionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The name asked for.
    public var host: String
    /// The resolver's reason (`gai_strerror`).
    public var reason: String

    /// Makes an error.
    public init(host: String, reason: String) {
        self.host = host
        self.reason = reason
    }

    /// "cannot resolve HOST: REASON".
    public var description: String { "cannot resolve \(host): \(reason)" }
}

/// The socket calls a knock client needs.
///
/// Resolve, send a TCP SYN or a UDP datagram, learn the local address the kernel would use, and
/// probe a TCP port. Addresses are 4 (IPv4) or 16 (IPv6)
/// bytes in network order; no root is needed for any of it.
public enum KnockSockets {
    /// Which address families a name may resolve to.
    public enum FamilyPreference: Sendable {
        /// IPv4 or IPv6, in the resolver's order.
        case any
        /// IPv4 only (`-4`).
        case ipv4
        /// IPv6 only (`-6`).
        case ipv6
    }

    /// The addresses `host` resolves to (numeric text is taken as is).
    ///
    /// The corresponding C function is `getaddrinfo`.
    public static func resolve(_ host: String, family: FamilyPreference) throws(ResolutionError) -> [[UInt8]] {
        let familyCode: Int32 =
            switch family {
            case .any: AF_UNSPEC
            case .ipv4: AF_INET
            case .ipv6: AF_INET6
            }
        var hints = unsafe addrinfo()
        unsafe hints.ai_family = familyCode
        unsafe hints.ai_socktype = datagramSocketType
        var list: UnsafeMutablePointer<addrinfo>?
        let status = unsafe getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            let text = unsafe String(cString: gai_strerror(status))
            throw ResolutionError(host: host, reason: text)
        }
        defer { unsafe freeaddrinfo(list) }
        var found: [[UInt8]] = []
        var cursor = unsafe list
        while let entry = unsafe cursor {
            if let address = unsafe bytes(of: entry.pointee.ai_addr), !found.contains(address) {
                found.append(address)
            }
            unsafe cursor = unsafe entry.pointee.ai_next
        }
        return found
    }

    /// Sends one TCP SYN to `address`:`port` from a non-blocking `connect` and closes the socket at
    /// once: no handshake, no retransmission, no root.
    public static func sendSYN(to address: [UInt8], port: UInt16) throws(SystemCallError) {
        let descriptor = try openSocket(family: address.count == 4 ? AF_INET : AF_INET6, type: streamSocketType)
        defer { closeDescriptor(descriptor) }
        let result = unsafe withSocketAddress(address, port) { pointer, length in
            unsafe connect(descriptor, pointer, length)
        }
        if result == -1 && lastErrno() != EINPROGRESS {
            throw SystemCallError(operation: "connect", subject: "TCP knock to port \(port)", errno: lastErrno())
        }
    }

    /// Sends one UDP datagram carrying `payload` to `address`:`port`.
    public static func sendDatagram(_ payload: [UInt8], to address: [UInt8], port: UInt16) throws(SystemCallError) {
        let descriptor = try openSocket(family: address.count == 4 ? AF_INET : AF_INET6, type: datagramSocketType)
        defer { closeDescriptor(descriptor) }
        let sent = unsafe payload.withUnsafeBytes { bytes in
            unsafe withSocketAddress(address, port) { pointer, length in
                unsafe sendto(descriptor, bytes.baseAddress, bytes.count, 0, pointer, length)
            }
        }
        if sent < 0 {
            throw SystemCallError(operation: "sendto", subject: "UDP knock to port \(port)", errno: lastErrno())
        }
    }

    /// The local address the kernel would send from toward `address` (no packet is sent).
    ///
    /// The corresponding C functions are `connect` on a UDP socket and `getsockname`.
    public static func localAddress(toward address: [UInt8], port: UInt16) throws(SystemCallError) -> [UInt8] {
        let descriptor = try openSocket(family: address.count == 4 ? AF_INET : AF_INET6, type: datagramSocketType)
        defer { closeDescriptor(descriptor) }
        let connected = unsafe withSocketAddress(address, port) { pointer, length in
            unsafe connect(descriptor, pointer, length)
        }
        if connected == -1 {
            throw SystemCallError(operation: "connect", subject: "finding the route to the server", errno: lastErrno())
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = unsafe withUnsafeMutablePointer(to: &storage) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe getsockname(descriptor, $0, &length) }
        }
        if named == -1 {
            throw SystemCallError(operation: "getsockname", errno: lastErrno())
        }
        let address = unsafe withUnsafePointer(to: &storage) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe bytes(of: $0) }
        }
        guard let address else { throw SystemCallError(operation: "getsockname", subject: "unknown address family", errno: EAFNOSUPPORT) }
        return address
    }

    /// Whether a TCP connection to `address`:`port` completes within `timeoutMilliseconds`.
    public static func canConnect(to address: [UInt8], port: UInt16, timeoutMilliseconds: Int32) -> Bool {
        guard let descriptor = try? openSocket(family: address.count == 4 ? AF_INET : AF_INET6, type: streamSocketType) else {
            return false
        }
        defer { closeDescriptor(descriptor) }
        let result = unsafe withSocketAddress(address, port) { pointer, length in
            unsafe connect(descriptor, pointer, length)
        }
        if result == 0 { return true }
        guard lastErrno() == EINPROGRESS else { return false }
        var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        guard unsafe poll(&poller, 1, timeoutMilliseconds) == 1 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard unsafe getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return false }
        return error == 0
    }

    private static func openSocket(family: Int32, type: Int32) throws(SystemCallError) -> Int32 {
        let descriptor = KnockPOSIX.openSocket(family: family, type: type, nonBlocking: true)
        if descriptor < 0 {
            throw SystemCallError(operation: "socket", errno: lastErrno())
        }
        return descriptor
    }

    private static func withSocketAddress<R>(
        _ address: [UInt8], _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R
    ) -> R {
        if address.count == 4 {
            var storage = sockaddr_in()
            storage.sin_family = sa_family_t(AF_INET)
            storage.sin_port = port.bigEndian
            unsafe withUnsafeMutableBytes(of: &storage.sin_addr) { raw in
                for (index, byte) in address.enumerated() { unsafe raw[index] = byte }
            }
            return unsafe withUnsafePointer(to: &storage) { pointer in
                unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    unsafe body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        var storage = sockaddr_in6()
        storage.sin6_family = sa_family_t(AF_INET6)
        storage.sin6_port = port.bigEndian
        unsafe withUnsafeMutableBytes(of: &storage.sin6_addr) { raw in
            for (index, byte) in address.prefix(16).enumerated() { unsafe raw[index] = byte }
        }
        return unsafe withUnsafePointer(to: &storage) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                unsafe body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    }

    private static func bytes(of address: UnsafePointer<sockaddr>?) -> [UInt8]? {
        guard let address = unsafe address else { return nil }
        switch Int32(unsafe address.pointee.sa_family) {
        case AF_INET:
            return unsafe address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var inAddress = unsafe pointer.pointee.sin_addr
                return unsafe withUnsafeBytes(of: &inAddress) { unsafe Array($0) }
            }
        case AF_INET6:
            return unsafe address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                var inAddress = unsafe pointer.pointee.sin6_addr
                return unsafe withUnsafeBytes(of: &inAddress) { unsafe Array($0) }
            }
        default:
            return nil
        }
    }
}
