#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// What differs between Linux and Darwin in opening and using sockets, in one place: Linux sets
// close-on-exec and non-blocking in `socket(2)` and suppresses SIGPIPE per `send(2)`; Darwin needs
// `fcntl` and the SO_NOSIGPIPE socket option instead.

/// `SOCK_STREAM` as the `type` argument of `socket`.
#if canImport(Glibc)
    let streamSocketType = Int32(SOCK_STREAM.rawValue)
    /// `SOCK_DGRAM` as the `type` argument of `socket`.
    let datagramSocketType = Int32(SOCK_DGRAM.rawValue)
    /// The flags of `send` that keep a closed peer from raising SIGPIPE.
    let sendFlags = Int32(MSG_NOSIGNAL)
#else
    let streamSocketType = SOCK_STREAM
    /// `SOCK_DGRAM` as the `type` argument of `socket`.
    let datagramSocketType = SOCK_DGRAM
    /// The flags of `send` that keep a closed peer from raising SIGPIPE (SO_NOSIGPIPE does it here).
    let sendFlags: Int32 = 0
#endif

/// Opens a close-on-exec socket that never raises SIGPIPE, non-blocking when asked; -1 with errno set on failure.
///
/// The corresponding C function is `socket`.
func openSocket(family: Int32, type: Int32, nonBlocking: Bool = false) -> Int32 {
    #if canImport(Glibc)
        let flags = Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        return socket(family, type | flags, 0)
    #else
        let descriptor = socket(family, type, 0)
        guard descriptor >= 0 else { return descriptor }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        if nonBlocking { _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) }
        var one: Int32 = 1
        _ = unsafe setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        return descriptor
    #endif
}

/// Closes `descriptor`, ignoring the result (there is nothing to do about a failed close).
///
/// The corresponding C function is `close`.
func closeDescriptor(_ descriptor: Int32) {
    #if canImport(Glibc)
        _ = Glibc.close(descriptor)
    #else
        _ = Darwin.close(descriptor)
    #endif
}

/// The text of errno `code`.
///
/// The corresponding C function is `strerror`.
func errorText(_ code: Int32) -> String {
    unsafe String(cString: strerror(code))
}
