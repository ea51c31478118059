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

    /// The netlink socket libnftables opened for this context, found by its appearance during
    /// `nft_ctx_new`; nil if it could not be told apart (then ``claimTable(_:flags:)`` refuses).
    ///
    /// libnftables has no call that names its socket, and table ownership is per socket: a table
    /// claimed on any other socket would refuse every later change this context makes.
    private let socketDescriptor: Int32?

    /// The netlink port ID of this context's socket (bound at creation): nf_tables notifications
    /// caused by this context's changes carry it.
    ///
    /// Nil when the socket was not found.
    public let portID: UInt32?

    /// Makes a context with buffered output and errors.
    ///
    /// The corresponding C functions are `nft_ctx_new(NFT_CTX_DEFAULT)`, `nft_ctx_buffer_output`,
    /// `nft_ctx_buffer_error` and `nft_ctx_output_set_flags`.
    public init(output: OutputOptions = []) throws(NetfilterError) {
        resetErrno()
        // Every nfnetlink socket of this process is opened under this lock, so the one that appears
        // during nft_ctx_new is libnftables'.
        let (created, netlinkSockets) = unsafe netfilterSocketCreation.withLock { _ in
            let descriptorsBefore = NetlinkSocket.openDescriptors()
            let created = unsafe nft_ctx_new(UInt32(NFT_CTX_DEFAULT))
            let sockets = NetlinkSocket.openDescriptors().subtracting(descriptorsBefore).filter {
                NetlinkSocket.netfilterPortID(of: $0) != nil
            }
            return (unsafe created, sockets.sorted())
        }
        // Exactly one new nfnetlink socket is libnftables'; more (another thread opened one at the
        // same moment) cannot be told apart, and then ownership is not offered.
        if netlinkSockets.count == 1, let bound = NetlinkSocket.bindAutomatically(netlinkSockets[0]) {
            (socketDescriptor, portID) = (netlinkSockets[0], bound)
        } else {
            (socketDescriptor, portID) = (nil, nil)
        }
        guard let context = unsafe created else {
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
        // libnftables may leave answers unread on the socket ``exchange`` uses.
        mayHoldStaleAnswers = true
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

    /// Creates the `inet` table `name` with `flags`, or sets them on the existing table, through this
    /// context's own netlink socket, and waits for the kernel's answer (at most 2 s).
    ///
    /// With ``NFTablesNetlink/TableFlags/owner`` the table then belongs to this context: other
    /// processes can list it but not change, flush or delete it, and this context's later scripts
    /// work as before. libnftables 1.0.6 cannot write `persist`, hence this message of our own. Errors
    /// from the kernel: `EOPNOTSUPP` when it lacks a flag (owner: Linux 5.12, persist: 6.9) or the
    /// table is owned by this context already with other flags; `EPERM` when another process owns
    /// it. The corresponding kernel message is `NFT_MSG_NEWTABLE` in its own batch.
    public func claimTable(_ name: String, flags: NFTablesNetlink.TableFlags) throws(NetfilterError) {
        let first = claimSequence &+ 1
        claimSequence &+= 3
        let bytes = NFTablesNetlink.claimTableBatch(name: name, flags: flags, sequence: first)
        try exchange(
            bytes, sequences: first, count: 3, awaiting: first &+ 1, operation: "NFT_MSG_NEWTABLE", subject: "claiming table inet \(name)")
    }

    /// Applies `batch` as prepared netlink messages on this context's socket (no text to parse: the
    /// grant path of pknockd), or as its script where the socket is unknown.
    ///
    /// The corresponding kernel messages are `NFT_MSG_NEWSETELEM` and `NFT_MSG_DELSETELEM` in one
    /// batch; the kernel applies all of them or none.
    public func apply(_ batch: NFTablesNetlink.ElementBatch) throws(NetfilterError) {
        guard socketDescriptor != nil else {
            lastBatchHandled = nil
            _ = try run(batch.script)
            return
        }
        let first = claimSequence &+ 1
        let count = batch.template.messageCount
        claimSequence &+= UInt32(count)
        // Into a buffer kept from one grant to the next: no allocation on the grant path.
        batch.encode(sequence: first, into: &sendBuffer)
        // The script is rendered only for an error's message.
        try exchange(
            sendBuffer, sequences: first, count: count, awaiting: batch.template.acknowledgedSequence(startingAt: first),
            operation: "NFT_MSG_NEWSETELEM", subject: batch.script.text)
    }

    /// Sends one batch (`count` messages numbered from `first`) on this context's socket and waits
    /// (at most 2 s) for the kernel's answer to `awaiting`; throws the first refusal of any of its
    /// messages.
    ///
    /// The kernel handles a batch within `send` and queues its answers before `send` returns (the
    /// refusals, then the acknowledgement asked for), so they are read at once, and `poll` is
    /// called only when nothing is queued.
    private func exchange(
        _ bytes: [UInt8], sequences first: UInt32, count: Int, awaiting: UInt32, operation: String, subject: @autoclosure () -> String
    ) throws(NetfilterError) {
        guard let descriptor = socketDescriptor else {
            throw NetfilterError(
                operation: operation, errno: ENOTSUP, message: "the libnftables context's netlink socket could not be identified")
        }
        // Whatever libnftables or an aborted exchange left unread must not be taken for our answer.
        if mayHoldStaleAnswers {
            while case .datagram = try NetlinkSocket.receive(on: descriptor, into: &receiveBuffer) {}
            mayHoldStaleAnswers = false
        }
        try NetlinkSocket.send(bytes, on: descriptor)
        lastBatchHandled = .now
        var answered = false
        var refusal: Int32?
        var deadline: ContinuousClock.Instant?
        while !answered {
            let received = try NetlinkSocket.receive(on: descriptor, into: &receiveBuffer)
            guard case .datagram(let length) = received else {
                let clock = ContinuousClock()
                let limit = deadline ?? clock.now + .seconds(2)
                deadline = limit
                if clock.now >= limit { break }
                // After a refusal the kernel has aborted the batch; the answer still due comes at once.
                guard try NetlinkSocket.waitReadable(descriptor, milliseconds: refusal == nil ? 100 : 20) else {
                    if refusal != nil { break }
                    continue
                }
                continue
            }
            NFTablesNetlink.forEachAcknowledgement(in: receiveBuffer[..<length]) { sequence, code in
                // Wrapping arithmetic: the numbers may run past UInt32.max within one batch.
                guard sequence &- first < UInt32(count) else { return }
                if code != 0, refusal == nil { refusal = code }
                if sequence == awaiting { answered = true }
            }
        }
        if refusal != nil || !answered { mayHoldStaleAnswers = true }
        if let refusal { throw NetfilterError(operation: operation, errno: refusal, message: subject()) }
        if !answered {
            throw NetfilterError(operation: operation, errno: ETIMEDOUT, message: "no answer from the kernel within 2 s: \(subject())")
        }
    }

    /// When the kernel had the last batch sent on this context's own socket (``NFTExecutor/lastBatchHandled``).
    public private(set) var lastBatchHandled: ContinuousClock.Instant?

    /// Whether answers not ours may be queued on the socket: after libnftables used it, or after an
    /// exchange that ended on a refusal or without its answer.
    private var mayHoldStaleAnswers = true

    /// Where each batch is encoded before it is sent; reused, so it keeps its capacity.
    private var sendBuffer: [UInt8] = {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1_024)
        return buffer
    }()

    /// Where answers to our own messages are read; allocated once.
    private var receiveBuffer = [UInt8](repeating: 0, count: 65_536)

    /// Sequence numbers of our own messages, far from libnftables' (it counts from the time of day).
    private var claimSequence: UInt32 = 0x7000_0000

    /// Runs `script` with ``OutputOptions/terse`` added for this call only (listings leave out set
    /// elements), then restores the output options.
    public func runTerse(_ script: NFTScript) throws(NetfilterError) -> String {
        let saved = output
        output = saved.union(.terse)
        defer { output = saved }
        return try run(script)
    }

    /// Whether ``claimTable(_:flags:)`` can work: this context's netlink socket was identified.
    public var canClaimTables: Bool { socketDescriptor != nil }

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
