import CNFTables
import Glibc

/// A libnftables context: parses nft command text and applies it to the kernel.
///
/// Each ``run(_:)`` is one `nft_run_cmd_from_buffer` call, so a whole script is applied as one
/// atomic netlink transaction: either every command takes effect or none does. Output and error
/// text are buffered (`nft_ctx_buffer_output`, `nft_ctx_buffer_error`) and returned or thrown.
///
/// Not thread-safe: one context belongs to one task or thread at a time. Creating one needs no
/// privileges; applying or listing needs CAP_NET_ADMIN in the network namespace.
@safe
public final class NFTContext: NFTExecutor {
    /// How libnftables prints listings and echoes.
    ///
    /// Each option is one `NFT_CTX_OUTPUT_*` flag for `nft_ctx_output_set_flags`.
    public struct OutputOptions: OptionSet, Hashable, Sendable {
        /// The `NFT_CTX_OUTPUT_*` bits.
        public var rawValue: UInt32

        /// Makes options from `NFT_CTX_OUTPUT_*` bits.
        public init(rawValue: UInt32) {
            self.rawValue = rawValue
        }

        /// JSON output (`nft -j`): `NFT_CTX_OUTPUT_JSON`.
        public static let json = OutputOptions(rawValue: UInt32(NFT_CTX_OUTPUT_JSON))
        /// Show rule and object handles (`nft -a`): `NFT_CTX_OUTPUT_HANDLE`.
        public static let handles = OutputOptions(rawValue: UInt32(NFT_CTX_OUTPUT_HANDLE))
        /// Print what was added, with handles (`nft -e`): `NFT_CTX_OUTPUT_ECHO`.
        public static let echo = OutputOptions(rawValue: UInt32(NFT_CTX_OUTPUT_ECHO))
        /// Leave out stateful data such as counters (`nft -s`): `NFT_CTX_OUTPUT_STATELESS`.
        public static let stateless = OutputOptions(rawValue: UInt32(NFT_CTX_OUTPUT_STATELESS))
        /// Leave out set contents (`nft -t`): `NFT_CTX_OUTPUT_TERSE`.
        public static let terse = OutputOptions(rawValue: UInt32(NFT_CTX_OUTPUT_TERSE))
        /// Print numbers instead of names for protocols, priorities, symbols and times (`nft -nnn -T`):
        /// `NFT_CTX_OUTPUT_NUMERIC_ALL`.
        public static let numeric = OutputOptions(rawValue: UInt32(NFT_CTX_OUTPUT_NUMERIC_ALL))
    }

    private let raw: OpaquePointer

    /// Makes a context with buffered output and errors.
    ///
    /// The corresponding C functions are `nft_ctx_new(NFT_CTX_DEFAULT)`, `nft_ctx_buffer_output`,
    /// `nft_ctx_buffer_error` and `nft_ctx_output_set_flags`.
    public init(output: OutputOptions = []) throws(NetfilterError) {
        resetErrno()
        guard let context = unsafe nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else {
            throw NetfilterError(operation: "nft_ctx_new", errno: currentErrno == 0 ? ENOMEM : currentErrno)
        }
        unsafe self.raw = context
        if unsafe nft_ctx_buffer_output(context) != 0 {
            unsafe nft_ctx_free(context)
            throw NetfilterError(operation: "nft_ctx_buffer_output", errno: currentErrno)
        }
        if unsafe nft_ctx_buffer_error(context) != 0 {
            unsafe nft_ctx_free(context)
            throw NetfilterError(operation: "nft_ctx_buffer_error", errno: currentErrno)
        }
        unsafe nft_ctx_output_set_flags(context, output.rawValue)
    }

    deinit {
        unsafe nft_ctx_free(raw)
    }

    /// How listings are printed.
    ///
    /// The corresponding C functions are `nft_ctx_output_get_flags` and `nft_ctx_output_set_flags`.
    public var output: OutputOptions {
        get { OutputOptions(rawValue: unsafe nft_ctx_output_get_flags(raw)) }
        set { unsafe nft_ctx_output_set_flags(raw, newValue.rawValue) }
    }

    /// When true, scripts are parsed and checked against the kernel's state but not committed.
    ///
    /// The corresponding C functions are `nft_ctx_get_dry_run` and `nft_ctx_set_dry_run`.
    public var isDryRun: Bool {
        get { unsafe nft_ctx_get_dry_run(raw) }
        set { unsafe nft_ctx_set_dry_run(raw, newValue) }
    }

    /// Applies `script` as one atomic transaction and returns what it printed.
    ///
    /// The output is a listing for `list` commands and empty for most changes. The corresponding
    /// C function is `nft_run_cmd_from_buffer`.
    ///
    /// Throws a ``NetfilterError`` whose `message` is the libnftables error buffer (parse errors
    /// with their caret lines, or the kernel's refusal) and whose `errno` is the errno the
    /// failure left, when the error text confirms it. Quirk of libnftables 1.0.6: the caret
    /// context quotes the first line of the script whatever line failed (the column range is
    /// right). Unprivileged, libnftables also prints "… (you must be root)" to the process's
    /// stderr, outside the buffer.
    public func run(_ script: NFTScript) throws(NetfilterError) -> String {
        resetErrno()
        let status = unsafe script.text.withCString { text in
            unsafe nft_run_cmd_from_buffer(raw, text)
        }
        let code = currentErrno
        // Read both buffers every time: reading one rewinds it for the next run.
        let output = unsafe String(cString: nft_ctx_get_output_buffer(raw))
        let errors = unsafe String(cString: nft_ctx_get_error_buffer(raw))
        guard status == 0 else {
            throw NetfilterError(
                operation: "nft_run_cmd_from_buffer",
                errno: Self.errno(reported: code, errorText: errors),
                message: errors.isEmpty ? nil : errors
            )
        }
        return output
    }

    /// Checks that this process may use nftables here, by running `list tables` on a fresh context.
    ///
    /// Returns nil when it may, otherwise the error (errno EPERM when not permitted).
    public static func probe() -> NetfilterError? {
        do {
            let context = try NFTContext()
            _ = try context.run("list tables")
            return nil
        } catch {
            return error
        }
    }

    /// The errno to report for a failed run.
    ///
    /// libnftables prints the kernel's reason as strerror text, while the errno it leaves can be
    /// stale (a parse error may leave one from an unrelated lookup), so report errno only when
    /// the error text names it, and recognise EPERM by its text alone.
    private static func errno(reported: Int32, errorText: String) -> Int32? {
        if reported != 0, errorText.contains(errnoDescription(reported)) { return reported }
        if errorText.contains(errnoDescription(EPERM)) { return EPERM }
        return nil
    }
}
