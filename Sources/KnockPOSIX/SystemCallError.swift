#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed POSIX call: which call, on what, and the errno it left.
///
/// KnockPOSIX is the small layer of plain POSIX I/O that both binaries share (files that hold
/// secrets, child processes, sockets, terminals). It has no netfilter and no knock concepts, and
/// everything Linux-only in it stays behind `#if canImport(Glibc)`, so the client builds elsewhere.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The call that failed, such as `open` or `posix_spawn`.
    public var operation: String
    /// What it was called on (a path, a program), when that helps the reader.
    public var subject: String?
    /// The errno value.
    public var errno: Int32

    /// Makes an error.
    public init(operation: String, subject: String? = nil, errno: Int32) {
        self.operation = operation
        self.subject = subject
        self.errno = errno
    }

    /// `open /etc/pknock/x: No such file or directory`.
    public var description: String {
        let text = unsafe String(cString: strerror(errno))
        return operation + (subject.map { " " + $0 } ?? "") + ": " + text
    }
}

/// Calls `body` until it stops failing with EINTR; returns its result, or throws the errno of a
/// failure (`body` returns -1 and sets errno, as POSIX calls do).
public func retryingOnInterrupt(
    _ operation: String, subject: String? = nil, _ body: () -> Int32
) throws(SystemCallError) -> Int32 {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = lastErrno()
        if code == EINTR { continue }
        throw SystemCallError(operation: operation, subject: subject, errno: code)
    }
}

/// The calling thread's errno.
func lastErrno() -> Int32 {
    #if canImport(Glibc)
        Glibc.errno
    #else
        Darwin.errno
    #endif
}
