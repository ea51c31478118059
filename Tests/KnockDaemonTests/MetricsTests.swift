import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import KnockConfig
import KnockDaemon
import Logging
import Testing

/// The Prometheus exposition and its tiny HTTP responder.
@Suite struct MetricsTests {
    func snapshot() -> MetricsSnapshot {
        var counters = KnockService.Counters()
        counters.packets = 12
        counters.allowed = 2
        counters.rejected = 5
        return MetricsSnapshot(counters: counters, peers: [("SSH", 1, 2)], enobufs: 3, hookFailures: 4, eventReaders: 1)
    }

    @Test func theExpositionHasEveryCounter() {
        let text = snapshot().exposition
        for line in [
            "# TYPE pknock_packets_total counter", "pknock_packets_total 12", "pknock_knocks_total{outcome=\"allowed\"} 2",
            "pknock_knocks_total{outcome=\"rejected\"} 5", "pknock_nflog_enobufs_total 3", "pknock_hook_failures_total 4",
            "pknock_peers{rule=\"SSH\",state=\"matching\"} 1", "pknock_peers{rule=\"SSH\",state=\"allowed\"} 2", "pknock_event_readers 1",
        ] {
            #expect(text.split(separator: "\n").contains(Substring(line)), "missing \(line)")
        }
    }

    @Test func listenAddressesParse() {
        #expect(MetricsListenAddress(parsing: "127.0.0.1:9472") == MetricsListenAddress(host: "127.0.0.1", port: 9472))
        #expect(MetricsListenAddress(parsing: "[::1]:9472") == MetricsListenAddress(host: "::1", port: 9472))
        #expect(MetricsListenAddress(parsing: "[::1]:9472")?.description == "[::1]:9472")
        for bad in ["localhost:9472", "127.0.0.1", "::1:9472", "127.0.0.1:0", "127.0.0.1:70000", "[::1]9472"] {
            #expect(MetricsListenAddress(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func aScrapeGetsTheLatestSnapshot() throws {
        let server = try MetricsServer(host: "127.0.0.1", port: 0, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { server.stop() }
        server.update(snapshot())
        let port = try #require(server.port)
        let url = try #require(URL(string: "http://127.0.0.1:\(port)/metrics"))
        let body = try String(contentsOf: url, encoding: .utf8)
        #expect(body.contains("pknock_hook_failures_total 4"))
    }
}
