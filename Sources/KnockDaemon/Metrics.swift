import Foundation
import Logging
import Synchronization

/// What pknockd exposes to Prometheus: a copy of its counters taken on the intake loop's thread.
public struct MetricsSnapshot: Equatable, Sendable {
    /// The service's counters.
    public var counters: KnockService.Counters
    /// Peers per rule: (rule, matching, allowed).
    public var peers: [(rule: String, matching: Int, allowed: Int)]
    /// NFLOG messages the kernel dropped (ENOBUFS).
    public var enobufs: Int
    /// Hook runs that failed, timed out or were dropped.
    public var hookFailures: Int
    /// Open hooks dropped for a full queue.
    public var hooksDropped: Int
    /// Event readers connected.
    public var eventReaders: Int

    /// Makes a snapshot.
    public init(
        counters: KnockService.Counters = .init(), peers: [(rule: String, matching: Int, allowed: Int)] = [], enobufs: Int = 0,
        hookFailures: Int = 0, hooksDropped: Int = 0, eventReaders: Int = 0
    ) {
        self.counters = counters
        self.peers = peers
        self.enobufs = enobufs
        self.hookFailures = hookFailures
        self.hooksDropped = hooksDropped
        self.eventReaders = eventReaders
    }

    /// Compares every field.
    public static func == (lhs: MetricsSnapshot, rhs: MetricsSnapshot) -> Bool {
        lhs.counters == rhs.counters && lhs.enobufs == rhs.enobufs && lhs.hookFailures == rhs.hookFailures
            && lhs.hooksDropped == rhs.hooksDropped && lhs.eventReaders == rhs.eventReaders && lhs.peers.elementsEqual(rhs.peers) { $0 == $1 }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    public var exposition: String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Int)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        let c = counters
        metric("pknock_packets_total", "counter", "Packets received through NFLOG.", [("", c.packets)])
        metric("pknock_malformed_packets_total", "counter", "Packets that were not well-formed TCP/UDP.", [("", c.malformedPackets)])
        metric(
            "pknock_knocks_total", "counter", "Knock outcomes.",
            [
                ("{outcome=\"matching\"}", c.matching), ("{outcome=\"allowed\"}", c.allowed), ("{outcome=\"rejected\"}", c.rejected),
                ("{outcome=\"expired\"}", c.expired),
            ])
        metric("pknock_grants_closed_total", "counter", "Grants ended by a close knock, autoclose or pknock close.", [("", c.closed)])
        metric(
            "pknock_grants_refused_total", "counter", "Grants refused because the rule already allowed max_allowed_peers peers.",
            [("", c.refusedGrants)])
        metric("pknock_firewall_errors_total", "counter", "Firewall changes the kernel refused.", [("", c.firewallErrors)])
        metric("pknock_nflog_enobufs_total", "counter", "NFLOG messages lost to a full socket buffer.", [("", enobufs)])
        metric("pknock_hook_failures_total", "counter", "Hook runs that failed, timed out or were dropped.", [("", hookFailures)])
        metric("pknock_hooks_dropped_total", "counter", "Open hooks dropped because too many were waiting.", [("", hooksDropped)])
        metric("pknock_event_readers", "gauge", "Clients following the event stream.", [("", eventReaders)])
        metric(
            "pknock_peers", "gauge", "Peers tracked, by rule and state.",
            peers.flatMap { peer in
                [("{rule=\"\(peer.rule)\",state=\"matching\"}", peer.matching), ("{rule=\"\(peer.rule)\",state=\"allowed\"}", peer.allowed)]
            })
        return out
    }
}

/// A tiny HTTP responder for Prometheus scrapes: every GET gets the latest snapshot. Runs on its
/// own thread; the intake loop only swaps in a new snapshot.
public final class MetricsServer: Sendable {
    private let listener: ListeningSocket
    private let snapshot = Mutex<MetricsSnapshot>(MetricsSnapshot())
    private let logger: Logger

    /// Listens on TCP `host:port` and starts serving.
    public init(host: String, port: UInt16, logger: Logger) throws(ControlSocketError) {
        self.listener = try ListeningSocket.tcp(host: host, port: port)
        self.logger = logger
        let thread = Thread { [self] in serve() }
        thread.name = "pknockd-metrics"
        thread.start()
    }

    /// The port bound (port 0 asks the kernel for one).
    public var port: UInt16? { listener.tcpPort }

    /// Replaces what scrapes see.
    public func update(_ new: MetricsSnapshot) { snapshot.withLock { $0 = new } }

    /// Stops serving.
    public func stop() { listener.close() }

    private func serve() {
        while let connection = listener.accept() {
            connection.setTimeouts(read: .seconds(2), write: .seconds(2))
            let response: String
            let requestLine = connection.readLine(limit: 2048)
            // Read the headers up to the blank line, so closing does not reset the connection.
            for _ in 0..<64 {
                guard case .line(let header) = connection.readLine(limit: 2048), !(header.isEmpty || header == [13]) else { break }
            }
            if case .line(let line) = requestLine, line.starts(with: Array("GET ".utf8)) {
                let body = snapshot.withLock { $0.exposition }
                response =
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
                    + body
            } else {
                response = "HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
            connection.write(Array(response.utf8))
            connection.close()
        }
    }
}
