import Glibc

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
    public static func resolve(_ host: String, family: FamilyPreference) throws(NetfilterError) -> [[UInt8]] {
        let familyCode: Int32 =
            switch family {
            case .any: AF_UNSPEC
            case .ipv4: AF_INET
            case .ipv6: AF_INET6
            }
        var hints = unsafe addrinfo()
        unsafe hints.ai_family = familyCode
        unsafe hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = unsafe getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            let text = unsafe String(cString: gai_strerror(status))
            throw NetfilterError(operation: "getaddrinfo", errno: nil, message: "cannot resolve \(host): \(text)")
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
    public static func sendSYN(to address: [UInt8], port: UInt16) throws(NetfilterError) {
        let descriptor = try openSocket(family: address.count == 4 ? AF_INET : AF_INET6, type: SOCK_STREAM)
        defer { _ = Glibc.close(descriptor) }
        let result = unsafe withSocketAddress(address, port) { pointer, length in
            unsafe connect(descriptor, pointer, length)
        }
        if result == -1 && currentErrno != EINPROGRESS {
            throw NetfilterError(operation: "connect", errno: currentErrno, message: "TCP knock to port \(port)")
        }
    }

    /// Sends one UDP datagram carrying `payload` to `address`:`port`.
    public static func sendDatagram(_ payload: [UInt8], to address: [UInt8], port: UInt16) throws(NetfilterError) {
        let descriptor = try openSocket(family: address.count == 4 ? AF_INET : AF_INET6, type: SOCK_DGRAM)
        defer { _ = Glibc.close(descriptor) }
        let sent = unsafe payload.withUnsafeBytes { bytes in
            unsafe withSocketAddress(address, port) { pointer, length in
                unsafe sendto(descriptor, bytes.baseAddress, bytes.count, 0, pointer, length)
            }
        }
        if sent < 0 {
            throw NetfilterError(operation: "sendto", errno: currentErrno, message: "UDP knock to port \(port)")
        }
    }

    /// The local address the kernel would send from toward `address` (no packet is sent).
    ///
    /// The corresponding C functions are `connect` on a UDP socket and `getsockname`.
    public static func localAddress(toward address: [UInt8], port: UInt16) throws(NetfilterError) -> [UInt8] {
        let descriptor = try openSocket(family: address.count == 4 ? AF_INET : AF_INET6, type: SOCK_DGRAM)
        defer { _ = Glibc.close(descriptor) }
        let connected = unsafe withSocketAddress(address, port) { pointer, length in
            unsafe connect(descriptor, pointer, length)
        }
        if connected == -1 {
            throw NetfilterError(operation: "connect", errno: currentErrno, message: "finding the route to the server")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = unsafe withUnsafeMutablePointer(to: &storage) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe getsockname(descriptor, $0, &length) }
        }
        if named == -1 {
            throw NetfilterError(operation: "getsockname", errno: currentErrno)
        }
        let address = unsafe withUnsafePointer(to: &storage) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe bytes(of: $0) }
        }
        guard let address else { throw NetfilterError(operation: "getsockname", errno: nil, message: "unknown address family") }
        return address
    }

    /// Whether a TCP connection to `address`:`port` completes within `timeoutMilliseconds`.
    public static func canConnect(to address: [UInt8], port: UInt16, timeoutMilliseconds: Int32) -> Bool {
        guard let descriptor = try? openSocket(family: address.count == 4 ? AF_INET : AF_INET6, type: SOCK_STREAM) else {
            return false
        }
        defer { _ = Glibc.close(descriptor) }
        let result = unsafe withSocketAddress(address, port) { pointer, length in
            unsafe connect(descriptor, pointer, length)
        }
        if result == 0 { return true }
        guard currentErrno == EINPROGRESS else { return false }
        var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        guard unsafe poll(&poller, 1, timeoutMilliseconds) == 1 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard unsafe getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return false }
        return error == 0
    }

    private static func openSocket(family: Int32, type: __socket_type) throws(NetfilterError) -> Int32 {
        let descriptor = socket(family, Int32(type.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if descriptor < 0 {
            throw NetfilterError(operation: "socket", errno: currentErrno)
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

/// Asking for a secret on the controlling terminal with echo off, as ssh and gpg do.
public enum TerminalPrompt {
    /// Whether standard input is a terminal (the only case in which a client should ask).
    ///
    /// The corresponding C function is `isatty`.
    public static var standardInputIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }

    /// Writes `prompt` to `/dev/tty`, reads one line there with echo off and restores the terminal.
    ///
    /// Returns the line without its newline (at most 4096 bytes). The corresponding C functions
    /// are `tcgetattr` and `tcsetattr`.
    public static func readHiddenLine(prompt: String) throws(NetfilterError) -> [UInt8] {
        let descriptor = unsafe open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
        if descriptor < 0 {
            throw NetfilterError(operation: "open", errno: currentErrno, message: "no terminal to ask for the secret on")
        }
        defer { _ = Glibc.close(descriptor) }
        var saved = termios()
        if unsafe tcgetattr(descriptor, &saved) != 0 {
            throw NetfilterError(operation: "tcgetattr", errno: currentErrno, message: "/dev/tty")
        }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        quiet.c_lflag |= tcflag_t(ECHONL)
        if unsafe tcsetattr(descriptor, TCSAFLUSH, &quiet) != 0 {
            throw NetfilterError(operation: "tcsetattr", errno: currentErrno, message: "turning echo off")
        }
        defer { _ = unsafe tcsetattr(descriptor, TCSAFLUSH, &saved) }
        let promptBytes = Array(prompt.utf8)
        _ = unsafe promptBytes.withUnsafeBytes { unsafe write(descriptor, $0.baseAddress, $0.count) }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < 4096 {
            let count = unsafe read(descriptor, &byte, 1)
            if count < 0 && currentErrno == EINTR { continue }
            if count < 0 { throw NetfilterError(operation: "read", errno: currentErrno, message: "/dev/tty") }
            if count == 0 || byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return line
    }
}
