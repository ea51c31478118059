/// A failure at the kernel edge: which operation failed, the errno it left, and any text the
/// library or kernel gave (the libnftables error buffer, for instance).
///
/// Equatable so tests can compare whole errors; `errno` is a raw `Int32` because swift-system is
/// not a dependency of this package.
public struct NetfilterError: Error, Equatable, Sendable {
    /// The C function or step that failed, such as `nft_run_cmd_from_buffer` or `nflog_bind_group`.
    public var operation: String
    /// The errno value the failure left, if it left one.
    public var errno: Int32?
    /// Extra text: the libnftables error buffer, or our own explanation of a known errno.
    public var message: String?

    /// Makes an error from its parts.
    public init(operation: String, errno: Int32? = nil, message: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.message = message
    }
}

extension NetfilterError: CustomStringConvertible {
    /// What failed and why, on one line plus the library's own lines if any.
    ///
    /// For example `nft_run_cmd_from_buffer failed: No such file or directory (errno 2): Error: …`.
    public var description: String {
        var text = "\(operation) failed"
        if let code = errno {
            text += ": \(errnoDescription(code)) (errno \(code))"
        }
        if let message, !message.isEmpty {
            let trimmed = message.trimmingTrailingNewlines()
            text += trimmed.contains("\n") ? ":\n\(trimmed)" : ": \(trimmed)"
        }
        return text
    }
}

extension String {
    /// The string without the newlines libnftables ends its error buffer with.
    func trimmingTrailingNewlines() -> String {
        var result = Substring(self)
        while let last = result.last, last == "\n" || last == "\r" {
            result = result.dropLast()
        }
        return String(result)
    }
}
