import Glibc

/// The C library's text for an errno value, such as "Operation not permitted" for EPERM.
///
/// The corresponding C function is `strerror`.
func errnoDescription(_ code: Int32) -> String {
    // glibc's strerror is thread-safe (≥ 2.32: unknown codes use a thread-local buffer).
    unsafe String(cString: strerror(code))
}

/// The calling thread's current errno.
var currentErrno: Int32 {
    Glibc.errno
}

/// Sets the calling thread's errno (to 0 before calls that only sometimes set it).
func resetErrno() {
    Glibc.errno = 0
}

/// Runs a system call until it does not fail with EINTR, mapping -1 to a ``NetfilterError``.
///
/// The error names `operation`. EBADF and EFAULT mean a bug in this module and trap.
/// Modelled on swift-system's `valueOrErrno(retryOnInterrupt:)`.
func valueOrErrno<Result: FixedWidthInteger>(
    _ operation: String,
    _ body: () -> Result
) throws(NetfilterError) -> Result {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = currentErrno
        switch code {
        case EINTR:
            continue
        case EBADF, EFAULT:
            preconditionFailure("\(operation): \(errnoDescription(code)) — a bug in Netfilter")
        default:
            throw NetfilterError(operation: operation, errno: code)
        }
    }
}
