#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Stream sockets read and written in lines: the control socket's client and server and the metrics
// responder. Connecting and line I/O build everywhere (the client uses them); listening is the
// daemon's and Linux-only.

extension SystemCallError {
    /// The errno's text (`strerror`), such as "No such file or directory".
    public var reason: String { errorText(errno) }
}

/// A connected stream socket read and written in lines; it owns its descriptor.
public final class LineSocket: @unchecked Sendable {
    // @unchecked: used by one thread at a time (the connection's thread); `shutdown()` may come from another.
    /// The descriptor.
    public let descriptor: Int32
    private var buffer: [UInt8] = []
    private var closed = false

    /// Takes ownership of `descriptor`.
    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { if !closed { closeDescriptor(descriptor) } }

    /// Connects to the Unix stream socket at `path`.
    ///
    /// The corresponding C function is `connect`.
    public static func connect(unixPath path: String) throws(SystemCallError) -> LineSocket {
        let fd = openSocket(family: AF_UNIX, type: streamSocketType)
        guard fd >= 0 else { throw SystemCallError(operation: "socket", errno: lastErrno()) }
        let result = unsafe withUnixAddress(path) { address, length in
            #if canImport(Glibc)
                unsafe Glibc.connect(fd, address, length)
            #else
                unsafe Darwin.connect(fd, address, length)
            #endif
        }
        guard let result, result == 0 else {
            let code = result == nil ? ENAMETOOLONG : lastErrno()
            closeDescriptor(fd)
            throw SystemCallError(operation: "connect", subject: path, errno: code)
        }
        return LineSocket(descriptor: fd)
    }

    /// Sets how long a read or write may block (SO_RCVTIMEO/SO_SNDTIMEO); nil for forever.
    ///
    /// The corresponding C function is `setsockopt`.
    public func setTimeouts(read: Duration?, write: Duration?) {
        func set(_ option: Int32, _ duration: Duration?) {
            let (seconds, attoseconds) = max(.zero, duration ?? .zero).components
            var value = timeval(tv_sec: time_t(seconds), tv_usec: suseconds_t(attoseconds / 1_000_000_000_000))
            _ = unsafe setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
        }
        set(SO_RCVTIMEO, read)
        set(SO_SNDTIMEO, write)
    }

    /// The outcome of reading a line.
    public enum ReadResult: Equatable, Sendable {
        /// A line, without its newline (a trailing CR is kept).
        case line([UInt8])
        /// The peer closed the connection (any partial last line is discarded).
        case endOfStream
        /// More than `limit` bytes came without a newline.
        case tooLong
        /// The read timed out or failed.
        case failed
    }

    /// Reads up to the next newline, at most `limit` bytes before it.
    ///
    /// The corresponding C function is `recv`.
    public func readLine(limit: Int) -> ReadResult {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                guard newline <= limit else { return .tooLong }
                let line = Array(buffer[..<newline])
                buffer.removeFirst(newline + 1)
                return .line(line)
            }
            if buffer.count > limit { return .tooLong }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = unsafe chunk.withUnsafeMutableBytes { unsafe recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && lastErrno() == EINTR { continue }
            if count < 0 { return .failed }
            if count == 0 { return .endOfStream }
            buffer += chunk[..<count]
        }
    }

    /// Reads an HTTP request head: the bytes up to the blank line that ends it (CRLF CRLF or LF LF).
    ///
    /// Nil when `deadline` passes first, however slowly bytes trickle in, when the peer closes first,
    /// or when more than `limit` bytes come without the blank line.
    ///
    /// The corresponding C functions are `poll` and `recv`.
    public func readRequestHead(limit: Int, deadline: ContinuousClock.Instant) -> [UInt8]? {
        var head = buffer
        buffer = []
        var searched = 0
        while true {
            var index = max(0, searched - 3)
            while index < head.count {
                if head[index] == 10 {
                    if index + 1 < head.count, head[index + 1] == 10 { return Array(head[..<index]) }
                    if index + 2 < head.count, head[index + 1] == 13, head[index + 2] == 10 { return Array(head[..<index]) }
                }
                index += 1
            }
            searched = head.count
            if head.count > limit { return nil }
            let remaining = deadline - .now
            if remaining <= .zero { return nil }
            let (seconds, attoseconds) = remaining.components
            let milliseconds = Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = unsafe poll(&request, 1, milliseconds)
            if ready < 0 && lastErrno() == EINTR { continue }
            if ready < 0 { return nil }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = unsafe chunk.withUnsafeMutableBytes { unsafe recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count == 0 { return nil }
            if count < 0 {
                let code = lastErrno()
                if code == EINTR || code == EAGAIN || code == EWOULDBLOCK { continue }
                return nil
            }
            head += chunk[..<count]
        }
    }

    /// Writes `text` and a newline; false when the peer is gone or the write timed out.
    @discardableResult
    public func writeLine(_ text: String) -> Bool {
        write(Array((text + "\n").utf8))
    }

    /// Writes every byte, never raising SIGPIPE; false on failure.
    ///
    /// The corresponding C function is `send`.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = unsafe bytes.withUnsafeBytes { raw in
                unsafe send(descriptor, raw.baseAddress.map { unsafe $0 + offset }, raw.count - offset, sendFlags)
            }
            if count < 0 && lastErrno() == EINTR { continue }
            if count <= 0 { return false }
            offset += count
        }
        return true
    }

    /// Whether the other end has closed (a zero-length peek), without blocking.
    public var peerHasHungUp: Bool {
        var byte: UInt8 = 0
        let count = unsafe recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        let code = lastErrno()
        return count == 0 || (count < 0 && code != EAGAIN && code != EWOULDBLOCK && code != EINTR)
    }

    /// Wakes any blocked read or write on this socket (both directions shut down).
    ///
    /// The corresponding C function is `shutdown`.
    public func shutdown() {
        #if canImport(Glibc)
            _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
        #else
            _ = Darwin.shutdown(descriptor, SHUT_RDWR)
        #endif
    }

    /// Closes the descriptor.
    public func close() {
        guard !closed else { return }
        closed = true
        closeDescriptor(descriptor)
    }
}

#if canImport(Glibc)
    /// A listening stream socket, Linux only: the control socket (Unix) or the metrics responder (TCP).
    public final class ListeningSocket: @unchecked Sendable {
        // @unchecked: the descriptor is immutable; accept runs on one thread, close is idempotent via shutdown.
        /// The descriptor.
        public let descriptor: Int32
        /// The Unix socket's path, removed on close; nil for TCP.
        public let path: String?

        private init(descriptor: Int32, path: String?) {
            self.descriptor = descriptor
            self.path = path
        }

        /// Listens on a Unix socket at `path`: the directory is created mode 0700 when missing, a stale
        /// socket file is replaced, and the socket is made mode 0600 (owner only).
        ///
        /// The corresponding C functions are `bind` and `listen`.
        public static func unix(path: String, backlog: Int32 = 16) throws(SystemCallError) -> ListeningSocket {
            let directory = Self.directory(of: path)
            var info = stat()
            if !directory.isEmpty, unsafe stat(directory, &info) != 0 {
                guard unsafe mkdir(directory, 0o700) == 0 || lastErrno() == EEXIST else {
                    throw SystemCallError(operation: "mkdir", subject: directory, errno: lastErrno())
                }
            }
            if unsafe lstat(path, &info) == 0 {
                // Replace only a socket (a leftover from a previous run), never another kind of file.
                guard info.st_mode & S_IFMT == S_IFSOCK else {
                    throw SystemCallError(operation: "\(path) exists and is not a socket", errno: EEXIST)
                }
                unsafe unlink(path)
            }
            let fd = openSocket(family: AF_UNIX, type: streamSocketType)
            guard fd >= 0 else { throw SystemCallError(operation: "socket", errno: lastErrno()) }
            // The umask makes the socket owner-only from its creation; chmod below makes sure.
            let previousMask = umask(0o177)
            let bound = unsafe withUnixAddress(path) { address, length in unsafe bind(fd, address, length) }
            let bindErrno = lastErrno()
            umask(previousMask)
            guard let bound, bound == 0 else {
                closeDescriptor(fd)
                throw SystemCallError(operation: "bind", subject: path, errno: bound == nil ? ENAMETOOLONG : bindErrno)
            }
            guard unsafe chmod(path, 0o600) == 0, listen(fd, backlog) == 0 else {
                let code = lastErrno()
                closeDescriptor(fd)
                unsafe unlink(path)
                throw SystemCallError(operation: "listen", subject: path, errno: code)
            }
            return ListeningSocket(descriptor: fd, path: path)
        }

        /// The directory part of `path` ("" when there is none).
        static func directory(of path: String) -> String {
            guard let slash = path.lastIndex(of: "/") else { return "" }
            return slash == path.startIndex ? "/" : String(path[..<slash])
        }

        /// Listens on TCP `host:port`, host an IPv4 or IPv6 literal.
        ///
        /// The corresponding C functions are `inet_pton`, `bind` and `listen`.
        public static func tcp(host: String, port: UInt16, backlog: Int32 = 16) throws(SystemCallError) -> ListeningSocket {
            var v4 = in_addr()
            var v6 = in6_addr()
            let fd: Int32
            let bound: Int32
            if unsafe inet_pton(AF_INET, host, &v4) == 1 {
                fd = openSocket(family: AF_INET, type: streamSocketType)
                guard fd >= 0 else { throw SystemCallError(operation: "socket", errno: lastErrno()) }
                var one: Int32 = 1
                _ = unsafe setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = port.bigEndian
                address.sin_addr = v4
                bound = unsafe withUnsafePointer(to: &address) {
                    unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        unsafe bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            } else if unsafe inet_pton(AF_INET6, host, &v6) == 1 {
                fd = openSocket(family: AF_INET6, type: streamSocketType)
                guard fd >= 0 else { throw SystemCallError(operation: "socket", errno: lastErrno()) }
                var one: Int32 = 1
                _ = unsafe setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                var address = sockaddr_in6()
                address.sin6_family = sa_family_t(AF_INET6)
                address.sin6_port = port.bigEndian
                address.sin6_addr = v6
                bound = unsafe withUnsafePointer(to: &address) {
                    unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        unsafe bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                    }
                }
            } else {
                throw SystemCallError(operation: "\(host) is not an IP address", errno: EINVAL)
            }
            guard bound == 0, listen(fd, backlog) == 0 else {
                let code = lastErrno()
                closeDescriptor(fd)
                throw SystemCallError(operation: "listen", subject: "\(host) port \(port)", errno: code)
            }
            return ListeningSocket(descriptor: fd, path: nil)
        }

        /// The TCP port bound (useful after binding port 0); nil for a Unix socket.
        ///
        /// The corresponding C function is `getsockname`.
        public var tcpPort: UInt16? {
            var storage = sockaddr_in6()
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            let result = unsafe withUnsafeMutablePointer(to: &storage) {
                unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe getsockname(descriptor, $0, &length) }
            }
            guard result == 0, path == nil else { return nil }
            // sin_port and sin6_port sit at the same offset.
            return UInt16(bigEndian: storage.sin6_port)
        }

        /// Waits for the next connection; nil once the socket is shut down, and then the descriptor is
        /// closed here, by the one thread that uses it, so its number cannot be reused under that thread.
        ///
        /// The corresponding C function is `accept`.
        public func accept() -> LineSocket? {
            while true {
                let fd = Glibc.accept(descriptor, nil, nil)
                if fd >= 0 {
                    // accept4 is not in Glibc's Swift module; hooks must not inherit the connection.
                    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                    return LineSocket(descriptor: fd)
                }
                let code = lastErrno()
                switch code {
                case EINTR, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    if code != EINTR && code != ECONNABORTED { usleep(100_000) }
                    continue
                default:
                    closeDescriptor(descriptor)
                    return nil
                }
            }
        }

        /// Stops accepting (wakes a blocked ``accept()``, which then closes the descriptor) and removes
        /// the socket file.
        public func close() {
            _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
            if let path { unsafe unlink(path) }
        }
    }
#endif

/// Calls `body` with a `sockaddr_un` for `path`; nil when the path does not fit.
private func withUnixAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32? {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard !bytes.isEmpty, bytes.count < capacity else { return nil }
    unsafe withUnsafeMutableBytes(of: &address.sun_path) { raw in
        unsafe raw.copyBytes(from: bytes)
        unsafe raw[bytes.count] = 0
    }
    return unsafe withUnsafePointer(to: &address) {
        unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}
