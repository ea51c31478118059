#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writing key files (`pknock keygen`) so that they are never readable by others, not even briefly.
public enum KeyFile {
    /// Creates or truncates `path` with permission bits `mode` from the start and writes `bytes`.
    ///
    /// A symbolic link at `path` is refused (`O_NOFOLLOW`), and an existing file gets `mode` too
    /// (`fchmod`: `open` applies the mode only to a file it creates). The corresponding C functions
    /// are `open`, `fchmod` and `write`.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws(SystemCallError) {
        let descriptor = try retryingOnInterrupt("open", subject: path) {
            unsafe open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        }
        defer { closeDescriptor(descriptor) }
        _ = try retryingOnInterrupt("fchmod", subject: path) { fchmod(descriptor, mode) }
        var offset = 0
        while offset < bytes.count {
            let written = unsafe bytes.withUnsafeBytes { raw in
                unsafe writeBytes(descriptor, raw.baseAddress.map { unsafe $0 + offset }, raw.count - offset)
            }
            if written < 0 && lastErrno() == EINTR { continue }
            guard written > 0 else {
                throw SystemCallError(operation: "write", subject: path, errno: written < 0 ? lastErrno() : EIO)
            }
            offset += written
        }
    }
}

/// The C function `write`, named apart from ``KeyFile/write(_:to:mode:)``.
private func writeBytes(_ descriptor: Int32, _ pointer: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
        unsafe Glibc.write(descriptor, pointer, count)
    #else
        unsafe Darwin.write(descriptor, pointer, count)
    #endif
}
