import KnockCore

/// How long pknockd's own part of a grant takes: the knock's NFLOG message read → the kernel has
/// acknowledged the grant batch.
///
/// Fixed buckets for the metrics, and the latest samples for exact
/// percentiles in the stop log and the benchmark.
///
/// A value type with storage allocated once; recording allocates nothing. Owned by the intake loop.
public struct LatencyHistogram: Equatable, Sendable {
    /// Bucket upper bounds, in microseconds (Prometheus `le`), then +Inf.
    public static let boundsMicroseconds: [Int64] = [
        25, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
    ]
    /// How many of the latest samples are kept for percentiles.
    public static let recentCapacity = 4096

    /// Samples per bucket (not cumulative); the last is +Inf.
    public private(set) var bucketCounts = [Int](repeating: 0, count: boundsMicroseconds.count + 1)
    /// Every sample recorded.
    public private(set) var count = 0
    /// Their sum, in nanoseconds.
    public private(set) var sumNanoseconds: Int64 = 0
    private var recent = [Int64](repeating: 0, count: recentCapacity)

    /// Makes an empty histogram.
    public init() {}

    /// Adds one measurement.
    public mutating func record(_ duration: Duration) {
        let nanoseconds = max(0, duration.nanosecondsClamped)
        let microseconds = nanoseconds / 1_000
        var bucket = 0
        while bucket < Self.boundsMicroseconds.count && microseconds > Self.boundsMicroseconds[bucket] { bucket += 1 }
        bucketCounts[bucket] += 1
        recent[count % Self.recentCapacity] = nanoseconds
        count += 1
        sumNanoseconds &+= nanoseconds
    }

    /// The `fraction` quantile (0…1) of the latest samples, nil with none.
    public func quantile(_ fraction: Double) -> Duration? {
        let kept = min(count, Self.recentCapacity)
        guard kept > 0 else { return nil }
        let sorted = recent.prefix(kept).sorted()
        let index = min(kept - 1, Int((fraction * Double(kept - 1)).rounded()))
        return .nanoseconds(sorted[index])
    }
}
