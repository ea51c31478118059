import KnockConfig
import KnockControl
import KnockCore
import KnockFleet
import KnockPOSIX
import Synchronization

/// What the intake loop asks of the fleet service.
public enum FleetRequest: Equatable, Sendable {
    /// Commit grant `id` (the firewall waits for the answer).
    case commit(id: UInt64, FleetGrant)
    /// Delete a grant key (the local revoke is already done).
    case revoke(rule: RuleName, peer: PeerAddress)
}

/// What the fleet service tells the intake loop.
public enum FleetResult: Equatable, Sendable {
    /// Grant `id` is in etcd: apply it.
    case committed(id: UInt64)
    /// Grant `id` could not be committed in time; `local` when `on_unreachable = "local"` lets it in anyway.
    case unreachable(id: UInt64, reason: String, local: Bool)
    /// Grant `id`'s replay key exists: the packet opened at another gateway already (or is a replay).
    case replayed(id: UInt64)
    /// Every grant etcd holds, for a (re)start or resync of the mirror.
    case snapshot([MirroredGrant: GrantValue])
    /// A grant was put in etcd (by any node).
    case put(MirroredGrant, GrantValue)
    /// A grant was deleted in etcd.
    case delete(MirroredGrant)
}

/// The fleet's state, for `pknock status` and the metrics.
public struct FleetStatus: Equatable, Sendable {
    /// This node's name.
    public var node: String
    /// Whether etcd answers.
    public var connected = false
    /// The last revision seen.
    public var revision: Int64 = 0
    /// Commit → the watch delivered that revision, for this node's last commit.
    public var watchLag: Duration?
    /// Since when etcd does not answer, and why (when not connected).
    public var unreachableSince: ContinuousClock.Instant?
    public var reason: String?
    /// Full resyncs (start-up, reconnect, compaction).
    public var resyncs = 0
    /// Commit latency (grant handed over → etcd's answer).
    public var commitLatency = LatencyHistogram()

    /// Makes the status of a node not yet connected.
    public init(node: String) { self.node = node }
}

/// The two bounded queues between the intake loop and the fleet service, and the shared status.
///
/// The intake loop never waits on it: a full request queue refuses the grant at once, and results
/// wake the loop through its ``WakeSignal`` (as control requests do).
public final class FleetBridge: Sendable {
    /// The fleet's settings.
    public let settings: FleetSettings
    /// Requests, in order, for the fleet service.
    public let requests: AsyncStream<FleetRequest>
    private let continuation: AsyncStream<FleetRequest>.Continuation
    private let results = Mutex<[FleetResult]>([])
    private let statusBox: Mutex<FleetStatus>
    private let wake: WakeSignal?
    /// The most requests waiting.
    public let capacity: Int

    /// Makes a bridge; each result wakes `wake`.
    public init(settings: FleetSettings, capacity: Int = 1024, wake: WakeSignal?) {
        self.settings = settings
        self.capacity = capacity
        self.wake = wake
        (requests, continuation) = AsyncStream.makeStream(of: FleetRequest.self, bufferingPolicy: .bufferingOldest(capacity))
        statusBox = Mutex(FleetStatus(node: settings.node))
    }

    /// Queues `request`; false when the queue is full (or the fleet service has stopped).
    public func submit(_ request: FleetRequest) -> Bool {
        if case .enqueued = continuation.yield(request) { return true }
        return false
    }

    /// Ends the request stream (the fleet service then returns).
    public func finish() { continuation.finish() }

    /// Hands `result` to the intake loop and wakes it.
    public func post(_ result: FleetResult) {
        results.withLock { $0.append(result) }
        wake?.wake()
    }

    /// Takes every waiting result, in order.
    public func drain(_ body: (FleetResult) -> Void) {
        let taken = results.withLock { queue -> [FleetResult] in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        for result in taken { body(result) }
    }

    /// The status now.
    public var status: FleetStatus { statusBox.withLock { $0 } }

    /// Changes the status.
    public func updateStatus(_ change: (inout FleetStatus) -> Void) {
        statusBox.withLock { change(&$0) }
    }
}

extension FleetStatus {
    /// The status as the control protocol carries it.
    public func report(now: ContinuousClock.Instant = .now) -> FleetStatusReport {
        FleetStatusReport(
            node: node, connected: connected, revision: revision, watchLagMs: watchLag.map { $0.nanosecondsClamped / 1_000_000 },
            unreachableForSeconds: connected ? nil : unreachableSince.map { (now - $0).components.seconds } ?? 0, reason: connected ? nil : reason)
    }
}
