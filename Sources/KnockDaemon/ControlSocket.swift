import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// The socket calls of the control socket and the metrics responder. They stay in KnockDaemon rather
// than Netfilter/CInterop because they have nothing to do with netfilter; this file is the only place
// in KnockDaemon that touches pointers.

/// An error from a control-socket system call: the call and its errno text.
public struct ControlSocketError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The failing operation, for example "bind /run/pknock/control.sock".
    public var operation: String
    /// `strerror` of the errno.
    public var reason: String
    /// The errno.
    public var errno: Int32

    init(_ operation: String, errno code: Int32 = Glibc.errno) {
        self.operation = operation
        self.errno = code
        self.reason = String(cString: strerror(code))
    }

    /// "operation: reason".
    public var description: String { "\(operation): \(reason)" }
}

/// A connected stream socket read and written in lines.
///
/// Owns its descriptor.
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

    deinit { if !closed { Glibc.close(descriptor) } }

    /// Connects to the Unix stream socket at `path`.
    public static func connect(unixPath path: String) throws(ControlSocketError) -> LineSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError("socket") }
        let result = withUnixAddress(path) { address, length in Glibc.connect(fd, address, length) }
        guard let result, result == 0 else {
            let code = result == nil ? ENAMETOOLONG : Glibc.errno
            Glibc.close(fd)
            throw ControlSocketError("connect \(path)", errno: code)
        }
        return LineSocket(descriptor: fd)
    }

    /// Sets how long a read or write may block (SO_RCVTIMEO/SO_SNDTIMEO); nil for forever.
    public func setTimeouts(read: Duration?, write: Duration?) {
        func set(_ option: Int32, _ duration: Duration?) {
            let nanoseconds = duration?.nanosecondsClamped ?? 0
            var value = timeval(tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int(nanoseconds % 1_000_000_000 / 1000))
            _ = setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
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
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && Glibc.errno == EINTR { continue }
            if count < 0 { return .failed }
            if count == 0 { return .endOfStream }
            buffer += chunk[..<count]
        }
    }

    /// Reads an HTTP request head: the bytes up to the blank line that ends it (CRLF CRLF or LF LF).
    ///
    /// Nil when `deadline` passes first, however slowly bytes trickle in, when the peer closes first,
    /// or when more than `limit` bytes come without the blank line.
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
            let ready = poll(&request, 1, milliseconds)
            if ready < 0 && Glibc.errno == EINTR { continue }
            if ready < 0 { return nil }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count == 0 { return nil }
            if count < 0 {
                if Glibc.errno == EINTR || Glibc.errno == EAGAIN || Glibc.errno == EWOULDBLOCK { continue }
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

    /// Writes every byte; false on failure.
    ///
    /// Never raises SIGPIPE.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                send(descriptor, raw.baseAddress.map { $0 + offset }, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if count < 0 && Glibc.errno == EINTR { continue }
            if count <= 0 { return false }
            offset += count
        }
        return true
    }

    /// Wakes any blocked read or write on this socket (both directions shut down).
    public func shutdown() { _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR)) }

    /// Closes the descriptor.
    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(descriptor)
    }
}

/// A listening stream socket: the control socket (Unix) or the metrics responder (TCP).
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
    public static func unix(path: String, backlog: Int32 = 16) throws(ControlSocketError) -> ListeningSocket {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            guard mkdir(directory, 0o700) == 0 || Glibc.errno == EEXIST else { throw ControlSocketError("mkdir \(directory)") }
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            // Replace only a socket (a leftover from a previous run), never another kind of file.
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw ControlSocketError("\(path) exists and is not a socket", errno: EEXIST) }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError("socket") }
        // The umask makes the socket owner-only from its creation; chmod below makes sure.
        let previousMask = umask(0o177)
        let bound = withUnixAddress(path) { address, length in bind(fd, address, length) }
        let bindErrno = Glibc.errno
        umask(previousMask)
        guard let bound, bound == 0 else {
            Glibc.close(fd)
            throw ControlSocketError("bind \(path)", errno: bound == nil ? ENAMETOOLONG : bindErrno)
        }
        guard chmod(path, 0o600) == 0, listen(fd, backlog) == 0 else {
            let code = Glibc.errno
            Glibc.close(fd)
            unlink(path)
            throw ControlSocketError("listen \(path)", errno: code)
        }
        return ListeningSocket(descriptor: fd, path: path)
    }

    /// Listens on TCP `host:port`, host an IPv4 or IPv6 literal.
    public static func tcp(host: String, port: UInt16, backlog: Int32 = 16) throws(ControlSocketError) -> ListeningSocket {
        var v4 = in_addr()
        var v6 = in6_addr()
        let fd: Int32
        let bound: Int32
        if inet_pton(AF_INET, host, &v4) == 1 {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw ControlSocketError("socket") }
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr = v4
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw ControlSocketError("socket") }
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = v6
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            throw ControlSocketError("\(host) is not an IP address", errno: EINVAL)
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let code = Glibc.errno
            Glibc.close(fd)
            throw ControlSocketError("listen \(host) port \(port)", errno: code)
        }
        return ListeningSocket(descriptor: fd, path: nil)
    }

    /// The TCP port bound (useful after binding port 0); nil for a Unix socket.
    public var tcpPort: UInt16? {
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0, path == nil else { return nil }
        // sin_port and sin6_port sit at the same offset.
        return UInt16(bigEndian: storage.sin6_port)
    }

    /// Waits for the next connection; nil once the socket is shut down, and then the descriptor is
    /// closed here, by the one thread that uses it, so its number cannot be reused under that thread.
    public func accept() -> LineSocket? {
        while true {
            let fd = Glibc.accept(descriptor, nil, nil)
            if fd >= 0 {
                // accept4 is not in Glibc's Swift module; hooks must not inherit the connection.
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return LineSocket(descriptor: fd)
            }
            switch Glibc.errno {
            case EINTR, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM:
                if Glibc.errno != EINTR && Glibc.errno != ECONNABORTED { usleep(100_000) }
                continue
            default:
                Glibc.close(descriptor)
                return nil
            }
        }
    }

    /// Stops accepting (wakes a blocked ``accept()``, which then closes the descriptor) and removes
    /// the socket file.
    public func close() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
        if let path { unlink(path) }
    }
}

/// Calls `body` with a `sockaddr_un` for `path`; nil when the path does not fit.
private func withUnixAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32? {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard !bytes.isEmpty, bytes.count < capacity else { return nil }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}
