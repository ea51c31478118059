import Foundation
import InMemoryLogging
import KnockConfig
import KnockDaemon
import KnockPOSIX
import Logging
import Synchronization
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// The Prometheus exposition and its tiny HTTP responder.
@Suite struct MetricsTests {
    func snapshot() -> MetricsSnapshot {
        var counters = KnockService.Counters()
        counters.packets = 12
        counters.allowed = 2
        counters.rejected = 5
        var snapshot = MetricsSnapshot(counters: counters, peers: [("SSH", 1, 2)], enobufs: 3, hookFailures: 4, eventReaders: 1)
        snapshot.datagrams = 7
        snapshot.queueThreshold = 50
        return snapshot
    }

    @Test func theExpositionHasEveryCounter() {
        let text = snapshot().exposition
        for line in [
            "# TYPE pknock_packets_total counter", "pknock_packets_total 12", "pknock_knocks_total{outcome=\"allowed\"} 2",
            "pknock_knocks_total{outcome=\"rejected\"} 5", "pknock_nflog_enobufs_total 3", "pknock_hook_failures_total 4",
            "pknock_peers{rule=\"SSH\",state=\"matching\"} 1", "pknock_peers{rule=\"SSH\",state=\"allowed\"} 2", "pknock_event_readers 1",
            "pknock_nflog_datagrams_total 7", "# TYPE pknock_nflog_queue_threshold gauge", "pknock_nflog_queue_threshold 50",
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

    let quiet = Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A TCP connection to 127.0.0.1:`port` whose reads time out after `timeout` seconds.
    func connectLoopback(_ port: UInt16, timeout: Int = 10) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        var value = timeval(tv_sec: timeout, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Reads until the peer closes (true) or a read times out or fails otherwise (false).
    func readToEnd(_ fd: Int32) -> (bytes: [UInt8], closedByPeer: Bool) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { bytes += chunk[..<count]; continue }
            if count == 0 { return (bytes, true) }
            if errno == EINTR { continue }
            return (bytes, errno == ECONNRESET)
        }
    }

    /// A whole scrape: request, then the reply up to the server's close (reads time out after 5 s).
    func scrape(_ port: UInt16) throws -> String {
        let fd = try connectLoopback(port, timeout: 5)
        defer { close(fd) }
        let request = Array("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return String(decoding: readToEnd(fd).bytes, as: UTF8.self)
    }

    func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test func aTricklingClientDoesNotHoldUpAnotherScrapeAndIsCutOffAtTheDeadline() throws {
        let server = try MetricsServer(host: "127.0.0.1", port: 0, logger: quiet)
        defer { server.stop() }
        server.update(snapshot())
        let port = try #require(server.port)
        let trickler = try connectLoopback(port)
        defer { close(trickler) }
        // A byte every 300 ms, never the blank line that ends a request (the attack of issue 11: a
        // byte every 1.5 s kept a per-read timeout from ever firing).
        let bytes = Array("GET /metrics HTTP/1.0\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "y"), count: 100)
        let sender = Thread {
            for byte in bytes {
                var one = byte
                if send(trickler, &one, 1, Int32(MSG_NOSIGNAL)) < 0 { return }
                usleep(300_000)
            }
        }
        sender.start()
        #expect(waitUntil { server.activeConnections == 1 }, "the server took the trickling connection first")
        let reply = try scrape(port)
        #expect(reply.hasPrefix("HTTP/1.0 200 OK"), "another client's scrape is answered: \(reply)")
        #expect(reply.contains("pknock_hook_failures_total 4"))
        // The trickler is disconnected at the request deadline (2 s), long before it would finish (30 s).
        #expect(readToEnd(trickler).closedByPeer, "the trickling client was not cut off")
    }

    @Test func connectionsBeyondTheBoundAreClosedAtOnce() throws {
        let server = try MetricsServer(host: "127.0.0.1", port: 0, logger: quiet, requestDeadline: .seconds(60), maxConnections: 2)
        defer { server.stop() }
        let port = try #require(server.port)
        let idle = try (0..<2).map { _ in try connectLoopback(port) }
        #expect(waitUntil { server.activeConnections == 2 })
        // The deadline is 60 s, so only the bound can close this one within the read timeout (10 s).
        let third = try connectLoopback(port)
        #expect(readToEnd(third).closedByPeer, "a connection beyond the bound was kept waiting")
        close(third)
        for fd in idle { close(fd) }
        #expect(waitUntil { server.activeConnections == 0 }, "closed connections free their slots")
        #expect(try scrape(port).hasPrefix("HTTP/1.0 200 OK"))
    }

    @Test func aListenAddressThatIsNotLoopbackIsWarnedAbout() throws {
        for host in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] { #expect(MetricsServer.isLoopback(host), "\(host)") }
        for host in ["0.0.0.0", "::", "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1", "localhost"] {
            #expect(!MetricsServer.isLoopback(host), "\(host)")
        }
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "t", factory: { _ in handler })
        let server = try MetricsServer(host: "127.0.0.1", port: 0, logger: logger)
        server.stop()
        #expect(handler.entries.filter { $0.level == .warning }.isEmpty)
        // Not an address of this host, so the bind fails after the warning: nothing listens anywhere.
        #expect(throws: SystemCallError.self) { try MetricsServer(host: "198.51.100.77", port: 9472, logger: logger) }
        let warnings = handler.entries.filter { $0.level == .warning }
        #expect(warnings.count == 1)
        #expect(warnings.first?.metadata["metrics.listen"] == "198.51.100.77:9472")
    }
}
