import KnockDaemon
import Testing

/// The grant-latency histogram: buckets, percentiles of the latest samples, and its exposition.
@Suite struct LatencyHistogramTests {
    @Test func samplesLandInTheirBucketsAndPercentilesAreExact() {
        var histogram = LatencyHistogram()
        #expect(histogram.quantile(0.5) == nil)
        for microseconds in [10, 25, 26, 80, 90, 150, 400, 900, 3_000, 70_000, 2_000_000] as [Int64] {
            histogram.record(.microseconds(microseconds))
        }
        // ≤25: 10, 25 · ≤50: 26 · ≤100: 80, 90 · ≤200: 150 · ≤500: 400 · ≤1000: 900 · ≤5000: 3000 ·
        // ≤100000: 70000 · +Inf: 2000000
        #expect(histogram.bucketCounts == [2, 1, 2, 1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1])
        #expect(histogram.count == 11)
        #expect(histogram.quantile(0.5) == .microseconds(150))
        #expect(histogram.quantile(1) == .microseconds(2_000_000))
        #expect(histogram.quantile(0) == .microseconds(10))
    }

    @Test func percentilesFollowTheLatestSamplesOnly() {
        var histogram = LatencyHistogram()
        for _ in 0..<LatencyHistogram.recentCapacity { histogram.record(.milliseconds(9)) }
        for _ in 0..<LatencyHistogram.recentCapacity { histogram.record(.microseconds(40)) }
        #expect(histogram.quantile(0.99) == .microseconds(40))
        #expect(histogram.count == 2 * LatencyHistogram.recentCapacity)
    }

    /// Fleet commits take milliseconds (etcd's quorum write): the buckets reach a second.
    @Test func bucketsReachASecondForFleetCommits() {
        var histogram = LatencyHistogram()
        histogram.record(.milliseconds(15))
        histogram.record(.milliseconds(150))
        let lines = MetricsSnapshot(grantLatency: histogram).exposition.split(separator: "\n")
        #expect(lines.contains(#"pknock_grant_latency_seconds_bucket{le="0.01"} 0"#))
        #expect(lines.contains(#"pknock_grant_latency_seconds_bucket{le="0.02"} 1"#))
        #expect(lines.contains(#"pknock_grant_latency_seconds_bucket{le="0.1"} 1"#))
        #expect(lines.contains(#"pknock_grant_latency_seconds_bucket{le="0.2"} 2"#))
        #expect(lines.contains(#"pknock_grant_latency_seconds_bucket{le="1"} 2"#))
    }

    @Test func theExpositionIsACumulativePrometheusHistogram() {
        var histogram = LatencyHistogram()
        histogram.record(.microseconds(30))
        histogram.record(.microseconds(30))
        histogram.record(.microseconds(700))
        let lines = MetricsSnapshot(grantLatency: histogram).exposition.split(separator: "\n")
        #expect(lines.contains("# TYPE pknock_grant_latency_seconds histogram"))
        #expect(lines.contains(#"pknock_grant_latency_seconds_bucket{le="0.000025"} 0"#))
        #expect(lines.contains(#"pknock_grant_latency_seconds_bucket{le="0.00005"} 2"#))
        #expect(lines.contains(#"pknock_grant_latency_seconds_bucket{le="0.001"} 3"#))
        #expect(lines.contains(#"pknock_grant_latency_seconds_bucket{le="+Inf"} 3"#))
        #expect(lines.contains("pknock_grant_latency_seconds_sum 0.00076"))
        #expect(lines.contains("pknock_grant_latency_seconds_count 3"))
    }
}
