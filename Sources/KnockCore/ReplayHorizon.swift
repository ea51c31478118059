/// How far back a replay memory that forgets by timestamp still remembers, so that a wider clock
/// window never admits a packet whose entry the narrower one already dropped.
///
/// SPA v2 nonces and fwknop digests are kept only while their timestamps are inside the clock
/// window; after that the clock check alone refuses them. When the window widens (a reload, or a
/// restart with a new configuration), timestamps between the new window's edge and what the old
/// memory still covers would pass the clock check with nothing left to recognise a replay: they
/// stay refused until the new window has moved past them. The horizon is saved with the memory it
/// describes, so a restart keeps it too.
public struct ReplayHorizon: Equatable, Sendable, Codable {
    /// The clock window the memory prunes by, in whole seconds.
    public let windowSeconds: Int64
    /// Entries with older timestamps may have been forgotten (`Int64.min`: nothing forgotten yet).
    public private(set) var forgottenBefore: Int64
    /// Packets with older timestamps are refused although inside the window (`Int64.min`: none are).
    public private(set) var refusedBefore: Int64

    /// The horizon of a new, empty memory.
    public init(windowSeconds: Int64) {
        self.windowSeconds = max(0, windowSeconds)
        forgottenBefore = .min
        refusedBefore = .min
    }

    /// The horizon of a memory carried over from `previous` (a reload, or one restored from disk)
    /// under a window of `windowSeconds`.
    ///
    /// Only a wider window needs the floor: under the same or a narrower one the clock check
    /// refuses everything `previous` may have forgotten (the floor would otherwise outlive a
    /// backward clock step and refuse current packets).
    public init(windowSeconds: Int64, continuing previous: ReplayHorizon) {
        self.init(windowSeconds: windowSeconds)
        forgottenBefore = previous.forgottenBefore
        refusedBefore = self.windowSeconds > previous.windowSeconds ? max(previous.refusedBefore, previous.forgottenBefore) : previous.refusedBefore
    }

    /// Whether a packet stamped `timestamp` may be checked against the memory at all.
    public func admits(_ timestamp: Int64) -> Bool { timestamp >= refusedBefore }

    /// Records that entries older than `oldest` are being dropped.
    public mutating func forget(before oldest: Int64) {
        forgottenBefore = max(forgottenBefore, oldest)
        // Once the window has moved past the floor, the clock check alone refuses what it refused.
        if oldest >= refusedBefore { refusedBefore = .min }
    }

    private enum CodingKeys: String, CodingKey {
        case windowSeconds = "window_seconds"
        case forgottenBefore = "forgotten_before"
        case refusedBefore = "refused_before"
    }
}
