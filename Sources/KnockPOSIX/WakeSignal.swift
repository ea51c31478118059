#if canImport(Glibc)
    import CKnockPOSIX
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A descriptor that becomes readable when another thread calls ``wake()``: how requests reach a
/// loop that waits in `poll` (the daemon's intake loop waits for knocks, and is woken for control
/// requests, reloads and shutdown).
///
/// A self-pipe: portable, and wakes coalesce.
///
/// Thread-safe: ``wake()`` may be called from any thread; ``drain()`` by the loop that polls.
public final class WakeSignal: Sendable {
    private let readEnd: Int32
    private let writeEnd: Int32

    /// Makes the pipe (both ends non-blocking and close-on-exec).
    ///
    /// The corresponding C functions are `pipe` and `fcntl`.
    public init() throws(SystemCallError) {
        var ends: (Int32, Int32) = (-1, -1)
        _ = try retryingOnInterrupt("pipe") {
            unsafe withUnsafeMutableBytes(of: &ends) { unsafe pipe($0.baseAddress?.assumingMemoryBound(to: Int32.self)) }
        }
        for end in [ends.0, ends.1] {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        (readEnd, writeEnd) = ends
    }

    deinit {
        _ = close(readEnd)
        _ = close(writeEnd)
    }

    /// The descriptor to poll for readability.
    public var fileDescriptor: Int32 { readEnd }

    /// Makes ``fileDescriptor`` readable (a full pipe already is, so a failed write is fine).
    public func wake() {
        var byte: UInt8 = 1
        _ = unsafe write(writeEnd, &byte, 1)
    }

    /// Empties the pipe, so the next poll waits again.
    public func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while unsafe buffer.withUnsafeMutableBytes({ unsafe read(readEnd, $0.baseAddress, $0.count) }) > 0 {}
    }
}

/// Waits until one of three descriptors is readable (a negative descriptor is ignored), for at most
/// `timeoutMilliseconds` (negative: forever); EINTR returns early with none ready.
///
/// The corresponding C function is `poll`. One call, no allocation: the daemon's intake loop waits
/// here for knocks, nf_tables notifications and its ``WakeSignal``.
public func waitReadable(
    _ first: Int32, _ second: Int32, _ third: Int32, timeoutMilliseconds: Int32
) throws(SystemCallError) -> (first: Bool, second: Bool, third: Bool) {
    var entries = (
        pollfd(fd: first, events: Int16(POLLIN), revents: 0), pollfd(fd: second, events: Int16(POLLIN), revents: 0),
        pollfd(fd: third, events: Int16(POLLIN), revents: 0)
    )
    let ready = unsafe withUnsafeMutableBytes(of: &entries) { raw in
        unsafe poll(raw.baseAddress?.assumingMemoryBound(to: pollfd.self), 3, timeoutMilliseconds)
    }
    if ready < 0 {
        let code = lastErrno()
        if code == EINTR { return (false, false, false) }
        throw SystemCallError(operation: "poll", errno: code)
    }
    return (entries.0.revents != 0, entries.1.revents != 0, entries.2.revents != 0)
}

/// ``waitReadable(_:_:_:timeoutMilliseconds:)`` with a timeout in nanoseconds (negative: forever),
/// for waits shorter than a millisecond (the intake loop's pause while a flood lets packets queue).
///
/// The corresponding C function is `ppoll`. One call, no allocation.
public func waitReadable(
    _ first: Int32, _ second: Int32, _ third: Int32, timeoutNanoseconds: Int64
) throws(SystemCallError) -> (first: Bool, second: Bool, third: Bool) {
    var entries = (
        pollfd(fd: first, events: Int16(POLLIN), revents: 0), pollfd(fd: second, events: Int16(POLLIN), revents: 0),
        pollfd(fd: third, events: Int16(POLLIN), revents: 0)
    )
    let ready = unsafe withUnsafeMutableBytes(of: &entries) { raw in
        unsafe CKnockPOSIX_ppoll(raw.baseAddress?.assumingMemoryBound(to: pollfd.self), 3, timeoutNanoseconds)
    }
    if ready < 0 {
        let code = lastErrno()
        if code == EINTR { return (false, false, false) }
        throw SystemCallError(operation: "ppoll", errno: code)
    }
    return (entries.0.revents != 0, entries.1.revents != 0, entries.2.revents != 0)
}
