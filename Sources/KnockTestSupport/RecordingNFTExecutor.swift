import KnockCore
import Netfilter

/// An ``NFTExecutor`` that records every script and answers from canned replies, like
/// google/nftables' `nftest.Recorder`.
open class RecordingNFTExecutor: NFTExecutor {
    /// Every script run, in order.
    public private(set) var scripts: [NFTScript] = []
    /// Replies for scripts whose text starts with a key (longest key wins); unmatched scripts return "".
    public var replies: [String: Result<String, NetfilterError>] = [:]
    /// When set, every script that is not a `list` command fails with this error.
    public var failChanges: NetfilterError?

    /// Every table claim, in order: the table's name and the flags asked for.
    public private(set) var claims: [(table: String, flags: NFTablesNetlink.TableFlags)] = []
    /// What a claim answers: by default `EOPNOTSUPP`, as a kernel without `persist` (< 6.9) does;
    /// nil makes claims succeed.
    public var claimError: NetfilterError? = NetfilterError(operation: "NFT_MSG_NEWTABLE", errno: 95)

    /// Makes an executor that accepts every script (claims answer as a kernel without `persist`).
    public init() {}

    /// The scripts run through ``runTerse(_:)`` (also recorded in ``scripts``).
    public private(set) var terseScripts: [NFTScript] = []

    open func runTerse(_ script: NFTScript) throws(NetfilterError) -> String {
        terseScripts.append(script)
        return try run(script)
    }

    open func claimTable(_ name: String, flags: NFTablesNetlink.TableFlags) throws(NetfilterError) {
        claims.append((name, flags))
        if let claimError { throw claimError }
    }

    open func run(_ script: NFTScript) throws(NetfilterError) -> String {
        scripts.append(script)
        if let failChanges, !script.text.hasPrefix("list") { throw failChanges }
        let key = replies.keys.filter { script.text.hasPrefix($0) }.max { $0.count < $1.count }
        guard let key, let reply = replies[key] else { return "" }
        switch reply {
        case .success(let text): return text
        case .failure(let error): throw error
        }
    }

    /// The recorded scripts' texts, `list` commands left out.
    public var changes: [String] { scripts.map(\.text).filter { !$0.hasPrefix("list") } }
}
