/// nft command text, as `nft -f` reads it: one or more commands separated by newlines.
///
/// Rendering is pure; an ``NFTExecutor`` applies a whole script as one atomic transaction.
public struct NFTScript: Equatable, Hashable, Sendable {
    /// The command text.
    public var text: String

    /// Wraps command text as it is.
    public init(_ text: String) {
        self.text = text
    }

    /// Joins commands, one per line.
    public init(lines: [String]) {
        self.text = lines.joined(separator: "\n")
    }

    /// True when the script holds no command (only whitespace).
    public var isEmpty: Bool {
        text.allSatisfy(\.isWhitespace)
    }

    /// This script followed by `other` on a new line, for one transaction holding both.
    public func appending(_ other: NFTScript) -> NFTScript {
        if isEmpty { return other }
        if other.isEmpty { return self }
        let separator = text.hasSuffix("\n") ? "" : "\n"
        return NFTScript(text + separator + other.text)
    }

    /// Joins two scripts into one transaction; see ``appending(_:)``.
    public static func + (lhs: NFTScript, rhs: NFTScript) -> NFTScript {
        lhs.appending(rhs)
    }
}

extension NFTScript: ExpressibleByStringLiteral {
    /// Makes a script from a string literal.
    public init(stringLiteral value: String) {
        self.init(value)
    }
}

extension NFTScript: CustomStringConvertible {
    /// The command text.
    public var description: String { text }
}

/// Runs nft scripts: the one seam between firewall decisions and the kernel.
///
/// ``NFTContext`` is the real one; tests use a fake that records scripts.
public protocol NFTExecutor {
    /// Applies `script` as one transaction (all or nothing) and returns what it printed,
    /// e.g. the listing of a `list` command; throws with the library's error text.
    func run(_ script: NFTScript) throws(NetfilterError) -> String

    /// Creates the `inet` table `name` with `flags` (or sets them on it) through the same netlink
    /// socket as ``run(_:)``, so the scripts that follow may change a table it owns. See
    /// ``NFTContext/claimTable(_:flags:)``.
    func claimTable(_ name: String, flags: NFTablesNetlink.TableFlags) throws(NetfilterError)

    /// Applies set-element changes (grants and revocations) as one transaction, all or nothing.
    func apply(_ batch: NFTablesNetlink.ElementBatch) throws(NetfilterError)

    /// When the kernel had the last batch of ``apply(_:)``: the moment its `send` returned, by which
    /// time the kernel had applied (or refused) all of it and queued its answer. Nil where that
    /// cannot be told (batches run as scripts through libnftables, fakes).
    var lastBatchHandled: ContinuousClock.Instant? { get }

    /// Runs a `list` command without set elements in its output (nft `-t`): for reading which sets
    /// exist without parsing a kernel-filled set of 65,536 sources.
    func runTerse(_ script: NFTScript) throws(NetfilterError) -> String
}

extension NFTExecutor {
    /// Executors without output options run the script as it is.
    public func runTerse(_ script: NFTScript) throws(NetfilterError) -> String {
        try run(script)
    }

    /// Applies set-element changes as one transaction; executors that only speak text run the
    /// batch's script (``NFTContext`` sends prepared netlink messages instead, skipping the parse).
    public func apply(_ batch: NFTablesNetlink.ElementBatch) throws(NetfilterError) {
        _ = try run(batch.script)
    }

    /// Executors that only speak text cannot tell when the kernel had a batch.
    public var lastBatchHandled: ContinuousClock.Instant? { nil }

    /// Executors without a netlink socket of their own cannot claim tables: `ENOTSUP`.
    public func claimTable(_ name: String, flags: NFTablesNetlink.TableFlags) throws(NetfilterError) {
        throw NetfilterError(operation: "NFT_MSG_NEWTABLE", errno: 95, message: "this executor cannot claim tables")
    }
}
