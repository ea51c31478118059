import Foundation
import KnockConfig
import KnockCore
import KnockPOSIX
import Logging
import Netfilter
import Synchronization

/// Requests that reach the intake loop from other threads (signals, shutdown, the control socket):
/// each sets its flag and wakes the loop through ``wake``, so the loop sleeps until there is work.
public final class DaemonControl: Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private let reloadFlag = Atomic<Bool>(false)
    /// Readable while a request waits; the intake loop polls it beside its packet sources.
    public let wake: WakeSignal

    /// Makes a control with nothing requested.
    public init() throws(SystemCallError) {
        wake = try WakeSignal()
    }

    /// Asks the loop to return after the packets at hand.
    public func requestStop() {
        stopFlag.store(true, ordering: .releasing)
        wake.wake()
    }

    /// Asks the loop to reload the configuration.
    public func requestReload() {
        reloadFlag.store(true, ordering: .releasing)
        wake.wake()
    }

    var stopRequested: Bool { stopFlag.load(ordering: .acquiring) }
    func takeReloadRequest() -> Bool { reloadFlag.exchange(false, ordering: .acquiringAndReleasing) }
}

/// When the intake loop leaves the packet source alone for a moment, so that during a flood the
/// kernel queues packets and one wake-up reads a batch of them (one `recvmmsg`), instead of one
/// wake-up, poll and read per packet.
///
/// Wakes that read packets within ``pause`` of each other (or right after a pause) form a streak.
/// Once a streak has read ``streakPackets`` packets the loop waits ``pause`` after each read
/// without polling the packet source (control requests, stop and nf_tables notifications still
/// wake it at once). A knock sequence sent back to back (at most `Rule.maximumKnockPorts` knocks)
/// is read the moment each knock arrives, as is a lone knock; during a flood a knock waits at most
/// ``pause`` longer.
public struct IntakePacing: Sendable {
    /// How long a busy wake leaves the packet source unpolled; zero turns pacing off.
    public var pause: Duration
    /// The most packets one read delivers (the source's limit): a read that reached it left packets
    /// queued, so the next read comes at once, or the socket's buffer could overflow during a pause.
    public var readLimit: Int
    /// How many packets a streak reads before the loop pauses: one more than the longest knock
    /// sequence, so that the last knock of a sequence sent back to back does not wait for a pause
    /// (it did: about 0.24 ms more knock → open for three knocks, BENCHMARKS.md).
    public var streakPackets = Rule.maximumKnockPorts + 1
    private var lastPacketWake: Instant?
    private var streak = 0
    private var pausing = false

    /// Makes pacing with `pause` (``DaemonLoop/defaultPause`` in the daemon).
    public init(pause: Duration, readLimit: Int = NFLogReader.maxDatagramsPerReceive) {
        self.pause = pause
        self.readLimit = readLimit
    }

    /// Called after each read of the packet source, which gave `delivered` packets at `now`: how long
    /// to leave the source unpolled before the next read, or nil to poll it at once.
    ///
    /// While the kernel batches (`kernelBatches`: its queue threshold is above 1) its datagrams are
    /// the batches, and a pause would only add a second wake-up per datagram: nil.
    public mutating func afterReading(_ delivered: Int, at now: Instant, kernelBatches: Bool = false) -> Duration? {
        let continues = pausing || lastPacketWake.map { now - $0 < pause } ?? false
        pausing = false
        guard delivered > 0, pause > .zero, !kernelBatches else {
            streak = 0
            return nil
        }
        lastPacketWake = now
        streak = continues ? streak &+ delivered : delivered
        if delivered >= readLimit || streak < streakPackets { return nil }
        pausing = true
        return pause
    }
}

/// How many packets the kernel gathers into one NFLOG datagram (its queue threshold), following the
/// packet rate: one at a time while knocks are sparse, so a lone knock is sent at once; during a
/// flood about as many as arrive in ``targetDelay``, so the cost of a datagram (a wake-up, a
/// receive, the kernel's buffer) is shared by that many packets while a knock waits about
/// ``targetDelay`` longer for its datagram (at most the kernel's flush timeout, 10 ms, when a
/// flood stops).
///
/// The rate is measured over windows of ``window``; the threshold changes only to or from one, or
/// by a factor of two or more, so a steady flood sends the kernel a config message now and then,
/// not every window. A flood's onset is reviewed early: while packets come one at a time, a window
/// that has counted ``onsetPackets`` after ``onsetSpan`` is reviewed at once, so a flood at a
/// sender's maximum is batched within milliseconds instead of queueing a whole window of one-packet
/// datagrams (at 300k packets/s, 50 ms of them could overflow the socket's 16 MiB).
public struct NFLogBatching: Sendable {
    /// How long a rate is measured before the threshold is reviewed.
    public var window: Duration = .milliseconds(50)
    /// About how long a packet may wait for its batch at the measured rate.
    ///
    /// A legitimate knock during a flood waits too: a millisecond cut the CPU per packet at 50k
    /// packets/s by about a quarter but added about 0.35 ms to the knock → open median
    /// (BENCHMARKS.md, "Flood onset").
    public var targetDelay: Duration = .microseconds(500)
    /// Below this many packets per ``targetDelay`` (4,000 per second with the defaults), packets
    /// are sent one at a time.
    public var minimumBatch: Int = 2
    /// The largest threshold asked for (the kernel also sends a datagram when its buffer is full:
    /// `NFLogReader.batchBufferBytes` holds about 80 knock packets).
    public var maximumBatch: Int = 64
    /// While packets come one at a time, a window that has counted this many is reviewed early
    /// (5,120 packets/s or more reach it before the window ends)...
    public var onsetPackets: Int = 256
    /// ...once it is this long, so that the rate is measured over more than one read.
    public var onsetSpan: Duration = .milliseconds(2)
    /// The threshold asked for last.
    public private(set) var threshold: UInt32 = 1
    private var windowStart: Instant?
    private var packets = 0

    /// Makes the policy with the defaults.
    public init() {}

    /// Called on every wake of the intake loop with the packets it read (0 for none): the new
    /// threshold when it is due for a change, else nil.
    public mutating func afterReading(_ delivered: Int, at now: Instant) -> UInt32? {
        packets &+= delivered
        guard let start = windowStart else {
            windowStart = now
            return nil
        }
        let elapsed = now - start
        let onset = threshold == 1 && packets >= onsetPackets && elapsed >= onsetSpan
        guard elapsed >= window || onset else { return nil }
        windowStart = now
        let counted = packets
        packets = 0
        let perDelay = Int(min(Int64(Int32.max), Int64(counted) * targetDelay.nanosecondsClamped / max(1, elapsed.nanosecondsClamped)))
        let desired = UInt32(perDelay < minimumBatch ? 1 : min(perDelay, maximumBatch))
        let current = threshold
        guard desired != current, desired == 1 || current == 1 || desired >= 2 * current || 2 * desired <= current else { return nil }
        threshold = desired
        return desired
    }

    /// While batching, the loop wakes at least this often, so the threshold comes down when a flood
    /// stops; nil while packets are sent one at a time.
    public var reviewInterval: Duration? { threshold > 1 ? window : nil }
}

/// The daemon's single intake loop: NFLOG packets and timers into the ``KnockService``.
///
/// One thread does everything, in order, so the engine needs no locks. It sleeps in one `poll` on
/// the packet source, the nf_tables monitor (watch mode) and the control's ``DaemonControl/wake``,
/// until one is readable or the engine's next deadline; `maximumWait` only bounds how stale the
/// metrics snapshot may get. During a flood the kernel gathers packets into batched datagrams
/// (``batching``); while it sends them one at a time (batching off, or not yet on), ``pacing`` leaves
/// the packet source unpolled for a moment after each busy read, so packets are read in batches.
///
/// `@unchecked Sendable`: it is handed to the thread that runs it and used there only
/// (``IntakeService`` does that); the properties are set before it runs.
public final class DaemonLoop: @unchecked Sendable {
    private let service: KnockService
    private let reader: any PacketSource
    private let control: DaemonControl
    private let loadConfiguration: () throws -> Configuration
    private let logger: Logger
    private let origin = ContinuousClock.now
    private var reportedENOBUFS = 0

    /// The longest the loop sleeps when nothing happens (requests wake it at once).
    public var maximumWait: Duration = .seconds(1)
    /// The pacing pause the daemon uses (see ``IntakePacing``; measured in BENCHMARKS.md).
    public static let defaultPause: Duration = .microseconds(250)
    /// How reads of the packet source are paced during a flood.
    public var pacing = IntakePacing(pause: DaemonLoop.defaultPause)
    /// How many packets the kernel batches per NFLOG datagram; nil leaves the source's threshold alone.
    public var batching: NFLogBatching? = NFLogBatching()
    /// Control-socket requests, answered between packets on this thread; nil without a control socket.
    ///
    /// Make it with the control's ``DaemonControl/wake`` so a request wakes the loop.
    public var mailbox: ControlMailbox?
    /// Gets a fresh snapshot about once a second; nil without metrics.
    public var metrics: MetricsServer?
    /// Hook failures and event readers, for the metrics.
    public var hooks: HookRunner?
    /// The event stream, for the metrics' reader count.
    public var events: EventHub?
    private var lastMetricsUpdate: Instant?
    /// The daemon's share of each grant: NFLOG message read → the kernel had applied the batch.
    ///
    /// The end is when the batch's `send` returned (the kernel applies a batch and queues its
    /// acknowledgement within it), recorded once the acknowledgement said yes. Reading the
    /// acknowledgement comes after the port is open, so it is not counted.
    public private(set) var grantLatency = LatencyHistogram()
    /// When the datagram being handled was read; nil outside packet handling (control requests).
    private var datagramReadAt: Instant?
    /// nf_tables notifications about the table, where the table is watched rather than owned.
    public var tableMonitor: NFTablesMonitor?
    /// How often a watched table is checked even without notifications.
    public var tableCheckInterval: Duration = .seconds(2)
    private var lastTableCheck: Instant?
    /// How often the engine's timers run when none of its deadlines is due: for the housekeeping
    /// that has no deadline (pruning SPA replay memory past its clock window).
    ///
    /// Between those, a wake runs the timers only when the engine's next deadline has come, not
    /// after every read: on a guest whose idle CPU loses its caches, running them cold cost 3–20 µs
    /// a wake against 0.15 µs warm (`Scripts/bench/coldpath.sh`).
    public var housekeepingInterval: Duration = .seconds(1)
    private var lastHousekeeping: Instant?

    /// Makes a loop; `loadConfiguration` is called on each reload request.
    public init(
        service: KnockService, reader: any PacketSource, control: DaemonControl,
        loadConfiguration: @escaping () throws -> Configuration, logger: Logger
    ) {
        self.service = service
        self.reader = reader
        self.control = control
        self.loadConfiguration = loadConfiguration
        self.logger = logger
    }

    /// The monotonic time since the loop was made.
    public func now() -> Instant {
        Instant(nanoseconds: (ContinuousClock.now - origin).nanosecondsClamped)
    }

    /// `instant` on the loop's monotonic time line.
    private func instant(of instant: ContinuousClock.Instant) -> Instant {
        Instant(nanoseconds: (instant - origin).nanosecondsClamped)
    }

    /// The wall-clock time, for SPA freshness.
    public static func wallTime() -> WallTime {
        WallTime(secondsSinceEpoch: Int64(time(nil)))
    }

    /// Starts the service and runs until ``DaemonControl/requestStop()``.
    ///
    /// `protection` is handed to ``KnockService/start(now:wallTime:protection:)``; where the table
    /// ends up watched, `makeMonitor` is called once to subscribe to nf_tables notifications (a
    /// failure is logged and leaves the periodic check alone).
    public func run(
        protection: KnockService.TableProtectionChoice = .auto,
        makeMonitor: () throws(NetfilterError) -> NFTablesMonitor? = { nil }
    ) throws(NetfilterError) {
        try service.start(now: now(), wallTime: Self.wallTime(), protection: protection)
        // Set once: a closure made per wake would allocate on the knock path.
        service.onFirewallApplied = { [unowned self] handled in
            guard let datagramReadAt else { return }
            grantLatency.record((handled.map(instant(of:)) ?? now()) - datagramReadAt)
        }
        if service.tableProtection == .watched {
            do {
                tableMonitor = try makeMonitor()
            } catch {
                logger.error("cannot follow nf_tables notifications; the table is checked every few seconds only", metadata: ["error": "\(error)"])
            }
        }
        var pause: Duration? = nil
        while !control.stopRequested {
            if control.takeReloadRequest() { reload() }
            // Whatever falls due before the wait ends is known now: packets only add later deadlines.
            let deadline = service.nextDeadline
            let waitMilliseconds = milliseconds(until: deadline)
            let ready: (first: Bool, second: Bool, third: Bool)
            do {
                if let paused = pause {
                    // A flood: let packets queue for a batched read; everything else still wakes.
                    pause = nil
                    let nanoseconds = min(paused.nanosecondsClamped, Int64(waitMilliseconds) * 1_000_000)
                    let woken = try waitReadable(
                        -1, tableMonitor?.fileDescriptor ?? -1, control.wake.fileDescriptor, timeoutNanoseconds: nanoseconds)
                    ready = (true, woken.second, woken.third)
                } else {
                    ready = try waitReadable(
                        reader.fileDescriptor, tableMonitor?.fileDescriptor ?? -1, control.wake.fileDescriptor,
                        timeoutMilliseconds: waitMilliseconds)
                }
            } catch {
                throw NetfilterError(operation: "poll", errno: error.errno)
            }
            if ready.third { control.wake.drain() }
            if ready.second, let tableMonitor {
                // Before the knocks: a knock's grant must land in the table as it will stay.
                service.repairTable(after: try tableMonitor.drain(), now: now())
            }
            if ready.first {
                // A grant's clock starts when its datagram is read, and stops at the kernel's
                // acknowledgement (onFirewallApplied), before logging and events.
                let readAt = now()
                datagramReadAt = readAt
                // Every packet of one read is handled at the read's instant (a read takes well under
                // a millisecond): no clock reads per packet. The packet is a view into the reader's
                // buffer: handled in place, not copied.
                let wallTime = Self.wallTime()
                let delivered = try reader.receiveQueued { packet, hardwareProtocol in
                    service.handle(packet: packet, etherType: hardwareProtocol, now: readAt, wallTime: wallTime)
                }
                datagramReadAt = nil
                pause = pacing.afterReading(delivered, at: readAt, kernelBatches: (batching?.threshold ?? 1) > 1)
                reviewBatching(delivered, at: readAt)
            } else {
                reviewBatching(0, at: now())
            }
            let current = now()
            if deadline.map({ $0 <= current }) ?? false || lastHousekeeping.map({ current - $0 >= housekeepingInterval }) ?? true {
                lastHousekeeping = current
                service.tick(now: current, wallTime: Self.wallTime())
            }
            if service.tableProtection == .watched {
                let current = now()
                if lastTableCheck.map({ current - $0 >= tableCheckInterval }) ?? true {
                    lastTableCheck = current
                    service.verifyTable(now: current)
                }
            }
            if let mailbox {
                mailbox.drain { request in service.control(request, now: now()) }
            }
            service.handleFleetResults(now: now(), wallTime: Self.wallTime())
            if metrics != nil { updateMetrics() }
            if reader.enobufsCount != reportedENOBUFS {
                logger.warning(
                    "NFLOG messages lost: the kernel's socket buffer overflowed",
                    metadata: ["nflog.enobufs": "\(reader.enobufsCount)"])
                reportedENOBUFS = reader.enobufsCount
            }
        }
        service.saveReplayState(wallTime: Self.wallTime())
        let counters = service.counters
        logger.notice(
            "pknockd stopping",
            metadata: [
                "packets": "\(counters.packets)", "packets.malformed": "\(counters.malformedPackets)",
                "knocks.matching": "\(counters.matching)", "knocks.allowed": "\(counters.allowed)",
                "knocks.rejected": "\(counters.rejected)", "knocks.expired": "\(counters.expired)",
                "grants.closed": "\(counters.closed)", "firewall.errors": "\(counters.firewallErrors)",
                "nflog.enobufs": "\(reader.enobufsCount)", "nflog.datagrams": "\(reader.datagramCount)",
                "nflog.queue_threshold": "\(batching?.threshold ?? 1)",
                "nft.protection": "\(service.tableProtection.rawValue)", "nft.repairs": "\(counters.tableRepairs)",
                "grant.count": "\(grantLatency.count)",
                "grant.latency.p50.us": "\(grantLatency.quantile(0.5).map { "\($0.nanosecondsClamped / 1_000)" } ?? "-")",
                "grant.latency.p99.us": "\(grantLatency.quantile(0.99).map { "\($0.nanosecondsClamped / 1_000)" } ?? "-")",
            ])
    }

    private func reviewBatching(_ delivered: Int, at now: Instant) {
        guard let threshold = batching?.afterReading(delivered, at: now) else { return }
        do {
            try reader.setQueueThreshold(threshold)
            logger.debug("NFLOG queue threshold changed", metadata: ["nflog.queue_threshold": "\(threshold)"])
        } catch {
            // Knocks still arrive; only the batching is lost.
            logger.warning("cannot change the NFLOG queue threshold; batching during floods is off", metadata: ["error": "\(error)"])
            batching = nil
        }
    }

    private func updateMetrics() {
        let current = now()
        if let last = lastMetricsUpdate, current - last < .seconds(1) { return }
        lastMetricsUpdate = current
        metrics?.update(snapshot())
    }

    /// The counters as the metrics responder shows them.
    public func snapshot() -> MetricsSnapshot {
        let engine = service.knockEngine
        var snapshot = MetricsSnapshot(
            counters: service.counters,
            peers: service.configuration.rules.compactMap { rule in
                engine.peerCounts(of: rule.name).map { (rule.name.rawValue, $0.matching, $0.allowed) }
            },
            enobufs: reader.enobufsCount, hookFailures: hooks?.failures ?? 0, hooksDropped: hooks?.dropped ?? 0, eventReaders: events?.count ?? 0,
            grantLatency: grantLatency, fleet: service.fleet?.bridge.status)
        snapshot.datagrams = reader.datagramCount
        snapshot.queueThreshold = Int(batching?.threshold ?? 1)
        return snapshot
    }

    /// How long the wait may last: until `deadline` (the engine's next), within ``maximumWait`` and
    /// the batching review.
    private func milliseconds(until deadline: Instant?) -> Int32 {
        let longest = batching?.reviewInterval.map { min($0, maximumWait) } ?? maximumWait
        let ceiling = longest.nanosecondsClamped / 1_000_000
        guard let deadline else { return Int32(ceiling) }
        let remaining = (deadline - now()).nanosecondsClamped
        // Round up so the tick after the wait finds the deadline passed.
        let milliseconds = max(0, (remaining + 999_999) / 1_000_000)
        return Int32(min(milliseconds, ceiling))
    }

    private func reload() {
        let newConfiguration: Configuration
        do {
            newConfiguration = try loadConfiguration()
        } catch {
            logger.error("reload refused: the configuration is invalid; the old rules keep running", metadata: ["error": "\(error)"])
            return
        }
        var adjusted = newConfiguration
        let current = service.configuration.daemon
        if adjusted.daemon.nflogGroup != current.nflogGroup || adjusted.daemon.table != current.table {
            logger.warning(
                "table and nflog_group changes take effect on restart, not on reload",
                metadata: ["nft.table": "\(current.table)", "nflog.group": "\(current.nflogGroup)"])
            adjusted.daemon.nflogGroup = current.nflogGroup
            adjusted.daemon.table = current.table
        }
        for warning in adjusted.warnings {
            logger.warning("configuration warning", metadata: ["config.warning": "\(warning)"])
        }
        do {
            try service.reload(to: adjusted, now: now())
        } catch {
            logger.error("reload refused by the kernel; the old rules keep running", metadata: ["error": "\(error)"])
        }
    }
}
