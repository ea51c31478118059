/// A point on the daemon's monotonic clock, in nanoseconds since an origin of its choosing.
///
/// Tests start their clocks at zero. Never compared with wall-clock time: SPA freshness takes a
/// separate ``WallTime``.
public struct Instant: Hashable, Comparable, Sendable {
    /// Nanoseconds since the clock's origin.
    public var nanoseconds: Int64

    /// Makes an instant `nanoseconds` after the origin.
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The clock's origin.
    public static let zero = Instant(nanoseconds: 0)

    /// Makes an instant `seconds` after the origin (saturating at the ends of the range).
    public static func seconds(_ seconds: Int64) -> Instant {
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return Instant(nanoseconds: overflow ? (seconds < 0 ? Int64.min : Int64.max) : product)
    }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// The instant `duration` later, saturating instead of overflowing.
    public static func + (lhs: Instant, rhs: Duration) -> Instant {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.nanosecondsClamped)
        return Instant(nanoseconds: overflow ? Int64.max : sum)
    }

    /// The time from `rhs` to `lhs`, saturating instead of overflowing (an instant adopted from the
    /// kernel may lie at the end of the range).
    public static func - (lhs: Instant, rhs: Instant) -> Duration {
        .nanoseconds(lhs.nanoseconds.subtractingSaturating(rhs.nanoseconds))
    }
}

/// Wall-clock time in whole seconds since the Unix epoch, used only for SPA freshness.
public struct WallTime: Hashable, Comparable, Sendable {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var secondsSinceEpoch: Int64

    /// Makes a wall time from seconds since the Unix epoch.
    public init(secondsSinceEpoch: Int64) { self.secondsSinceEpoch = secondsSinceEpoch }

    /// Minutes since the Unix epoch, rounded down: the time input of the original SPA MACs.
    public var epochMinute: Int64 {
        // Floor division without `secondsSinceEpoch - 59`, which would overflow near Int64.min.
        let (quotient, remainder) = secondsSinceEpoch.quotientAndRemainder(dividingBy: 60)
        return remainder < 0 ? quotient - 1 : quotient
    }

    public static func < (lhs: WallTime, rhs: WallTime) -> Bool { lhs.secondsSinceEpoch < rhs.secondsSinceEpoch }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to the range of `Int64`.
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min : Int64.max }
        let (sum, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? Int64.min : Int64.max }
        return sum
    }

    /// The duration in whole seconds, rounded down.
    public var wholeSeconds: Int64 { components.seconds }
}

extension Int64 {
    /// `self - other`, clamped to the range of Int64 instead of trapping.
    @inlinable
    func subtractingSaturating(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        guard overflow else { return difference }
        // Overflow needs opposite signs; the true difference has `self`'s sign.
        return self < 0 ? Int64.min : Int64.max
    }

    /// `self + other`, clamped to the range of Int64 instead of trapping.
    @inlinable
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        // Overflow needs equal signs; the true sum has that sign.
        return self < 0 ? Int64.min : Int64.max
    }
}
