import Foundation
import KnockCore
import KnockPOSIX
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
    /// NFLOG datagrams read (a batch of packets is one).
    public var datagrams: Int = 0
    /// How many packets the kernel gathers per NFLOG datagram now (``NFLogBatching``).
    public var queueThreshold: Int = 1
    /// Hook runs that failed, timed out or were dropped.
    public var hookFailures: Int
    /// Open hooks dropped for a full queue.
    public var hooksDropped: Int
    /// Event readers connected.
    public var eventReaders: Int
    /// The daemon's share of knock → open: NFLOG message read → the kernel had applied the grant.
    public var grantLatency = LatencyHistogram()
    /// The fleet's state, when `[fleet]` is configured.
    public var fleet: FleetStatus?

    /// Makes a snapshot.
    public init(
        counters: KnockService.Counters = .init(), peers: [(rule: String, matching: Int, allowed: Int)] = [], enobufs: Int = 0,
        hookFailures: Int = 0, hooksDropped: Int = 0, eventReaders: Int = 0, grantLatency: LatencyHistogram = .init(),
        fleet: FleetStatus? = nil
    ) {
        self.fleet = fleet
        self.grantLatency = grantLatency
        self.counters = counters
        self.peers = peers
        self.enobufs = enobufs
        self.hookFailures = hookFailures
        self.hooksDropped = hooksDropped
        self.eventReaders = eventReaders
    }

    /// Compares every field.
    public static func == (lhs: MetricsSnapshot, rhs: MetricsSnapshot) -> Bool {
        lhs.counters == rhs.counters && lhs.enobufs == rhs.enobufs && lhs.datagrams == rhs.datagrams
            && lhs.queueThreshold == rhs.queueThreshold && lhs.hookFailures == rhs.hookFailures
            && lhs.hooksDropped == rhs.hooksDropped && lhs.eventReaders == rhs.eventReaders && lhs.grantLatency == rhs.grantLatency
            && lhs.fleet == rhs.fleet && lhs.peers.elementsEqual(rhs.peers) { $0 == $1 }
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
        metric("pknock_nflog_datagrams_total", "counter", "NFLOG datagrams read (a batch of packets counts once).", [("", datagrams)])
        metric(
            "pknock_nflog_queue_threshold", "gauge", "Packets the kernel gathers per NFLOG datagram now (more than 1 during a flood).",
            [("", queueThreshold)])
        metric(
            "pknock_table_foreign_changes_total", "counter", "Changes to the table by other processes (watch mode).",
            [("", c.foreignTableChanges)])
        metric("pknock_table_repairs_total", "counter", "Times the table was put back after such a change (watch mode).", [("", c.tableRepairs)])
        metric("pknock_hook_failures_total", "counter", "Hook runs that failed, timed out or were dropped.", [("", hookFailures)])
        metric("pknock_hooks_dropped_total", "counter", "Open hooks dropped because too many were waiting.", [("", hooksDropped)])
        metric("pknock_event_readers", "gauge", "Clients following the event stream.", [("", eventReaders)])
        metric(
            "pknock_peers", "gauge", "Peers tracked, by rule and state.",
            peers.flatMap { peer in
                [("{rule=\"\(peer.rule)\",state=\"matching\"}", peer.matching), ("{rule=\"\(peer.rule)\",state=\"allowed\"}", peer.allowed)]
            })
        func histogram(_ name: String, _ help: String, _ histogram: LatencyHistogram) {
            out += "# HELP \(name) \(help)\n"
            out += "# TYPE \(name) histogram\n"
            var cumulative = 0
            for (index, bound) in LatencyHistogram.boundsMicroseconds.enumerated() {
                cumulative += histogram.bucketCounts[index]
                out += "\(name)_bucket{le=\"\(Self.seconds(microseconds: bound))\"} \(cumulative)\n"
            }
            out += "\(name)_bucket{le=\"+Inf\"} \(histogram.count)\n"
            out += "\(name)_sum \(Self.seconds(microseconds: histogram.sumNanoseconds / 1_000))\n"
            out += "\(name)_count \(histogram.count)\n"
        }
        histogram(
            "pknock_grant_latency_seconds", "pknockd's share of knock to open: NFLOG message read to the kernel having applied the grant.",
            grantLatency)
        if let fleet {
            metric("pknock_fleet_connected", "gauge", "Whether etcd answers (1) or not (0).", [("", fleet.connected ? 1 : 0)])
            metric("pknock_fleet_revision", "gauge", "The last etcd revision seen.", [("", Int(fleet.revision))])
            out += "# HELP pknock_fleet_watch_lag_seconds This node's last commit to its arrival through the watch.\n"
            out += "# TYPE pknock_fleet_watch_lag_seconds gauge\n"
            out += "pknock_fleet_watch_lag_seconds \(Self.seconds(microseconds: (fleet.watchLag?.nanosecondsClamped ?? 0) / 1_000))\n"
            histogram("pknock_fleet_commit_latency_seconds", "Grant handed to the fleet to etcd's answer to its transaction.", fleet.commitLatency)
            metric(
                "pknock_fleet_refused_grants_total", "counter", "Grants refused because etcd could not commit them (unreachable or replayed).",
                [("", c.fleetRefusedGrants)])
            metric("pknock_fleet_resyncs_total", "counter", "Full reads of the grants from etcd (start, reconnect, compaction).", [("", fleet.resyncs)])
        }
        return out
    }
}

extension MetricsSnapshot {
    /// `microseconds` as decimal seconds without floating point: 25 → "0.000025".
    static func seconds(microseconds: Int64) -> String {
        let whole = microseconds / 1_000_000
        var fraction = String(microseconds % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? "\(whole)" : "\(whole).\(fraction)"
    }
}

/// A tiny HTTP responder for Prometheus scrapes: every GET gets the latest snapshot.
///
/// Accepts on its
/// own thread and answers each connection on a thread of its own, at most ``maxConnections`` at
/// once (further connections are closed at once); a client has ``requestDeadline`` to send its whole
/// request head, however it trickles it, or is disconnected. The intake loop only swaps in a new
/// snapshot.
public final class MetricsServer: Sendable {
    /// The default time a client has to send its request.
    public static let defaultRequestDeadline: Duration = .seconds(2)
    /// The default number of connections served at once.
    public static let defaultMaxConnections = 8
    /// The longest request head read.
    public static let requestHeadLimit = 8192

    /// The time a client has to send its request.
    public let requestDeadline: Duration
    /// The connections served at once.
    public let maxConnections: Int
    private let listener: ListeningSocket
    private let snapshot = Mutex<MetricsSnapshot>(MetricsSnapshot())
    private let active = Atomic<Int>(0)
    private let logger: Logger

    /// Listens on TCP `host:port` and starts serving.
    ///
    /// Warns when `host` is not a loopback address:
    /// the metrics tell anyone who can reach them which rules exist and how busy they are.
    public init(
        host: String, port: UInt16, logger: Logger, requestDeadline: Duration = MetricsServer.defaultRequestDeadline,
        maxConnections: Int = MetricsServer.defaultMaxConnections
    ) throws(SystemCallError) {
        if !Self.isLoopback(host) {
            logger.warning(
                "metrics_listen is not a loopback address: anyone who reaches it sees the rules and their activity",
                metadata: ["metrics.listen": "\(host):\(port)"])
        }
        self.listener = try ListeningSocket.tcp(host: host, port: port)
        self.logger = logger
        self.requestDeadline = requestDeadline
        self.maxConnections = max(1, maxConnections)
        let thread = Thread { [self] in serve() }
        thread.name = "pknockd-metrics"
        thread.start()
    }

    /// Whether `host` (an IP literal) is a loopback address: 127.0.0.0/8, ::1, or ::ffff:127.x.y.z.
    public static func isLoopback(_ host: String) -> Bool {
        guard let address = PeerAddress(host) else { return false }
        return address.isIPv4 ? address.description.hasPrefix("127.") : address.description == "::1"
    }

    /// The port bound (port 0 asks the kernel for one).
    public var port: UInt16? { listener.tcpPort }

    /// Connections being answered now.
    public var activeConnections: Int { active.load(ordering: .relaxed) }

    /// Replaces what scrapes see.
    public func update(_ new: MetricsSnapshot) { snapshot.withLock { $0 = new } }

    /// Stops serving.
    public func stop() { listener.close() }

    private func serve() {
        while let connection = listener.accept() {
            guard active.add(1, ordering: .relaxed).newValue <= maxConnections else {
                active.subtract(1, ordering: .relaxed)
                connection.close()
                continue
            }
            let thread = Thread { [self] in
                respond(on: connection)
                active.subtract(1, ordering: .relaxed)
            }
            thread.name = "pknockd-metrics-conn"
            thread.start()
        }
    }

    private func respond(on connection: LineSocket) {
        defer { connection.close() }
        connection.setTimeouts(read: requestDeadline, write: requestDeadline)
        // One deadline for the whole head, not per read: a byte every second never resets it.
        guard let head = connection.readRequestHead(limit: Self.requestHeadLimit, deadline: .now + requestDeadline) else { return }
        let response: String
        if head.starts(with: Array("GET ".utf8)) {
            let body = snapshot.withLock { $0.exposition }
            response =
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
                + body
        } else {
            response = "HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        }
        connection.write(Array(response.utf8))
    }
}
