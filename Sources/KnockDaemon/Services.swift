import Foundation
import KnockPOSIX
import Logging
import Netfilter
import ServiceLifecycle
import UnixSignals

/// The intake loop as a service: ``DaemonLoop`` on a thread of its own, until graceful shutdown.
///
/// The loop blocks in `poll` on netlink sockets, which Swift concurrency's cooperative threads must
/// not do, so it gets one thread; knock handling stays on that one owner. Graceful shutdown asks
/// the loop to stop (it is woken at once) and returns when it has saved its state.
public struct IntakeService: Service, CustomStringConvertible {
    /// The name the service group logs.
    public var description: String { "knock intake" }

    private let loop: DaemonLoop
    private let control: DaemonControl
    private let protection: KnockService.TableProtectionChoice
    private let makeMonitor: @Sendable () throws(NetfilterError) -> NFTablesMonitor?

    /// Makes the service; see ``DaemonLoop/run(protection:makeMonitor:)`` for the arguments.
    public init(
        loop: DaemonLoop, control: DaemonControl, protection: KnockService.TableProtectionChoice = .auto,
        makeMonitor: @escaping @Sendable () throws(NetfilterError) -> NFTablesMonitor? = { nil }
    ) {
        self.loop = loop
        self.control = control
        self.protection = protection
        self.makeMonitor = makeMonitor
    }

    /// Runs the loop until graceful shutdown (or a failure, which it throws).
    public func run() async throws {
        let (loop, protection, makeMonitor) = (self.loop, self.protection, self.makeMonitor)
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let thread = Thread {
                    do {
                        try loop.run(protection: protection, makeMonitor: makeMonitor)
                        continuation.resume()
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.name = "pknockd-intake"
                thread.start()
            }
        } onGracefulShutdown: { [control] in
            control.requestStop()
        }
    }
}

/// SIGHUP reloads the configuration: each signal becomes a reload request to the intake loop.
public struct ReloadSignalService: Service, CustomStringConvertible {
    /// The name the service group logs.
    public var description: String { "SIGHUP reload" }

    private let control: DaemonControl

    /// Makes the service for `control`.
    public init(control: DaemonControl) { self.control = control }

    /// Forwards SIGHUPs until graceful shutdown.
    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            control.requestReload()
        }
    }
}

/// A part that runs on threads of its own (the control socket's and metrics' accept loops, the hook
/// worker) as a service: it runs until graceful shutdown, then `stop` ends it.
///
/// Their work is blocking socket and child-process I/O, which has no place on cooperative threads;
/// the service group decides when they end.
public struct StoppableService: Service, CustomStringConvertible {
    /// The part's name, for the service group's log.
    public let description: String
    private let stop: @Sendable () async -> Void

    /// Makes a service named `name` that calls `stop` at graceful shutdown.
    public init(_ name: String, stop: @escaping @Sendable () async -> Void) {
        self.description = name
        self.stop = stop
    }

    /// Waits for graceful shutdown (or cancellation), then stops the part.
    public func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }
}

/// Drops the pages only start-up touched from the resident set, `delay` after start
/// (``KnockPOSIX/MemoryTuning/releaseStartupPages()``), then waits for shutdown.
public struct StartupPagesRelease: Service, CustomStringConvertible {
    /// For the service group's log.
    public let description = "start-up pages release"
    private let delay: Duration
    private let logger: Logger

    /// Releases `delay` after the group starts.
    public init(after delay: Duration, logger: Logger) {
        self.delay = delay
        self.logger = logger
    }

    /// Sleeps `delay` (unless the group shuts down first), releases, waits for shutdown.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
        } catch {
            return
        }
        let released = MemoryTuning.releaseStartupPages()
        logger.debug("start-up pages released", metadata: ["memory.released.bytes": "\(released)"])
        try? await gracefulShutdown()
    }
}

extension HookRunner {
    /// Waits up to `bound` for the hooks queued or running to finish (at shutdown: a close hook of the
    /// last grant should still run); returns whether they did.
    @discardableResult
    public func finish(within bound: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + bound
        while pending > 0 {
            if clock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
