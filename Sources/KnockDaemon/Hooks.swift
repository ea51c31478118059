import Foundation
import KnockConfig
import KnockControl
import KnockCore
import KnockPOSIX
import Logging
import Synchronization

/// One run of a rule's `on_open` or `on_close` command.
public struct HookJob: Equatable, Sendable {
    /// The command line after `%IP%` substitution, run through `/bin/sh -c`.
    public var command: String
    /// PKNOCK_RULE, PKNOCK_PEER, PKNOCK_PROTO, PKNOCK_PORT, PKNOCK_EVENT (and PATH).
    public var environment: [String: String]
    /// The rule, for logging.
    public var rule: String
    /// "open" or "close", for logging.
    public var hook: String

    /// Makes a job.
    public init(command: String, environment: [String: String], rule: String, hook: String) {
        self.command = command
        self.environment = environment
        self.rule = rule
        self.hook = hook
    }

    /// Whether an event of `kind` can run a hook at all (allowed, closed, autoclosed): the others,
    /// every knock of a flood among them, need no look at the configuration.
    public static func mayRun(for kind: KnockEvent.Kind) -> Bool {
        switch kind {
        case .allowed, .closed, .autoclosed: true
        default: false
        }
    }

    /// The job `event` calls for under `hooks`, or nil: `on_open` runs for allowed, `on_close` for
    /// closed and autoclosed.
    ///
    /// `transport` is the protocol of the knock (or of the rule's first knock
    /// when the event has none).
    ///
    /// `%IP%` in the command becomes the peer's address (knockd's convention). The address is our own
    /// rendering (digits, hex, '.', ':'), so the substitution cannot inject shell syntax.
    public static func job(for event: KnockEvent, hooks: RuleHooks, rule: Rule?) -> HookJob? {
        let command: String
        let hook: String
        switch event.kind {
        case .allowed:
            guard let onOpen = hooks.onOpen else { return nil }
            (command, hook) = (onOpen, "open")
        case .closed, .autoclosed:
            guard let onClose = hooks.onClose else { return nil }
            (command, hook) = (onClose, "close")
        default:
            return nil
        }
        let peer = "\(event.peer)"
        let transport = event.knock?.transport ?? rule?.knockSequence.first?.transport ?? .tcp
        let environment = [
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PKNOCK_RULE": event.rule.rawValue,
            "PKNOCK_PEER": peer,
            "PKNOCK_PROTO": "\(transport)",
            "PKNOCK_PORT": event.knock.map { "\($0.port)" } ?? "",
            "PKNOCK_EVENT": EventKind(event.kind).rawValue,
        ]
        return HookJob(
            command: command.replacingOccurrences(of: "%IP%", with: peer), environment: environment, rule: event.rule.rawValue,
            hook: hook)
    }
}

/// How a hook run ended.
public enum HookOutcome: Equatable, Sendable {
    /// Exit status 0.
    case succeeded
    /// A non-zero exit status.
    case failed(status: Int32)
    /// Killed by a signal it did not get from us.
    case signalled(Int32)
    /// Ran past the timeout; its process group was killed.
    case timedOut
    /// Could not be started.
    case couldNotStart(String)
}

/// The result of one hook run: how it ended and what it printed (stdout and stderr together, capped).
public struct HookResult: Equatable, Sendable {
    /// How it ended.
    public var outcome: HookOutcome
    /// Its output, at most ``HookRunner/outputLimit`` bytes.
    public var output: String
}

/// Runs hook commands off the knock-handling thread: a queue and one worker thread.
///
/// ``enqueue(_:)`` never blocks. Open hooks wait in a bounded queue: when `queueCapacity` of them are
/// waiting a new one is dropped, counted (``dropped``, also in ``failures``) and logged at warning at
/// most once a minute with the count held back. A close hook is never dropped: it is queued whatever
/// the open hooks' count, and one identical to a close hook already waiting for the same peer (with
/// no hook of that peer after it) is coalesced into it, so close hooks are bounded by the peers there
/// are to close.
///
/// Each command is spawned directly (``ChildProcess``) with only stdin (`/dev/null`), stdout and
/// stderr, in its own process group; it is done when `/bin/sh` exits, so `cmd &` and `setsid cmd &`
/// in a hook return at once and leave their background process running. At `timeout` SIGTERM, then
/// SIGKILL after a second, reach its process group. Output is logged line by line at info with
/// control characters escaped; failures at warning; nothing is ever fatal.
public final class HookRunner: Sendable {
    /// The most output bytes kept per run.
    public static let outputLimit = 8192
    /// The shortest time between two "hook dropped" warnings.
    public static let dropWarningInterval: Duration = .seconds(60)

    /// How long a hook may run.
    public let timeout: Duration
    /// Open hooks waiting beyond which new ones are dropped.
    public let queueCapacity: Int
    private let logger: Logger
    private let queue = Mutex<[HookJob]>([])
    private let wakeUp = DispatchSemaphore(value: 0)
    private let failureCount = Atomic<Int>(0)
    private let droppedCount = Atomic<Int>(0)
    private let runCount = Atomic<Int>(0)
    private let pendingCount = Atomic<Int>(0)
    /// When the last drop warning went out, and the drops since then not warned about.
    private let dropWarning = Mutex<(last: ContinuousClock.Instant?, suppressed: Int)>((nil, 0))
    private let onFinish: (@Sendable (HookJob, HookResult) -> Void)?

    /// Makes a runner and starts its worker thread.
    ///
    /// `onFinish` is called on the worker after each run.
    public init(
        timeout: Duration, queueCapacity: Int = 256, logger: Logger, onFinish: (@Sendable (HookJob, HookResult) -> Void)? = nil
    ) {
        self.timeout = timeout
        self.queueCapacity = queueCapacity
        self.logger = logger
        self.onFinish = onFinish
        let thread = Thread { [self] in work() }
        thread.name = "pknockd-hooks"
        thread.start()
    }

    /// Hook runs that failed, timed out, could not start or were dropped for a full queue.
    public var failures: Int { failureCount.load(ordering: .relaxed) }
    /// Open hooks dropped for a full queue.
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }
    /// Hook runs finished (whatever the outcome).
    public var runs: Int { runCount.load(ordering: .relaxed) }
    /// Jobs queued or running.
    public var pending: Int { pendingCount.load(ordering: .relaxed) }

    /// Queues `job`; returns false (and counts and logs) when it is an open hook and the queue is full.
    ///
    /// A close hook is always accepted (possibly coalesced with an identical one already waiting).
    @discardableResult
    public func enqueue(_ job: HookJob) -> Bool {
        enum Admission { case queued, coalesced, dropped }
        let admission: Admission = queue.withLock { jobs in
            if job.hook == "close" {
                let peer = job.environment["PKNOCK_PEER"]
                let last = jobs.lastIndex { $0.rule == job.rule && $0.environment["PKNOCK_PEER"] == peer }
                if let last, jobs[last] == job { return .coalesced }
                jobs.append(job)
                return .queued
            }
            guard jobs.count(where: { $0.hook != "close" }) < queueCapacity else { return .dropped }
            jobs.append(job)
            return .queued
        }
        switch admission {
        case .coalesced:
            return true
        case .dropped:
            failureCount.add(1, ordering: .relaxed)
            droppedCount.add(1, ordering: .relaxed)
            warnDropped(job)
            return false
        case .queued:
            pendingCount.add(1, ordering: .relaxed)
            wakeUp.signal()
            return true
        }
    }

    private func warnDropped(_ job: HookJob) {
        let now = ContinuousClock.now
        let suppressed: Int? = dropWarning.withLock { state in
            if let last = state.last, now - last < Self.dropWarningInterval {
                state.suppressed += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.suppressed
        }
        guard let suppressed else { return }
        logger.warning(
            "hook dropped: too many hooks waiting",
            metadata: [
                "hook.rule": "\(job.rule)", "hook.name": "\(job.hook)", "hook.queue": "\(queueCapacity)",
                "warning.suppressed": "\(suppressed)",
            ])
    }

    /// Queues the hook `event` calls for under `configuration`, if any.
    ///
    /// `configuration` is read only for an event that may run a hook (``HookJob/mayRun(for:)``): the
    /// others, every knock of a flood among them, cost no copy of it.
    public func handle(_ event: KnockEvent, configuration: @autoclosure () -> Configuration) {
        guard HookJob.mayRun(for: event.kind) else { return }
        let configuration = configuration()
        guard let hooks = configuration.hooks[event.rule] else { return }
        let rule = configuration.rules.first { $0.name == event.rule }
        if let job = HookJob.job(for: event, hooks: hooks, rule: rule) { enqueue(job) }
    }

    private func work() {
        while true {
            wakeUp.wait()
            // Taken off the queue as it starts: while it runs, a close hook for its peer is a new one.
            let job = queue.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            guard let job else { continue }
            let result = Self.run(job, timeout: timeout)
            report(job, result)
            runCount.add(1, ordering: .relaxed)
            pendingCount.subtract(1, ordering: .relaxed)
            onFinish?(job, result)
        }
    }

    private func report(_ job: HookJob, _ result: HookResult) {
        let metadata: Logger.Metadata = ["hook.rule": "\(job.rule)", "hook.name": "\(job.hook)"]
        for line in result.output.split(separator: "\n", omittingEmptySubsequences: true) {
            logger.info("hook output", metadata: metadata.merging(["hook.output": "\(Self.escapingControlCharacters(line))"]) { $1 })
        }
        switch result.outcome {
        case .succeeded:
            logger.info("hook finished", metadata: metadata)
        case .failed(let status):
            failureCount.add(1, ordering: .relaxed)
            logger.warning("hook failed", metadata: metadata.merging(["hook.status": "\(status)"]) { $1 })
        case .signalled(let signal):
            failureCount.add(1, ordering: .relaxed)
            logger.warning("hook killed by a signal", metadata: metadata.merging(["hook.signal": "\(signal)"]) { $1 })
        case .timedOut:
            failureCount.add(1, ordering: .relaxed)
            logger.warning("hook timed out and was killed", metadata: metadata.merging(["hook.timeout": "\(timeout)"]) { $1 })
        case .couldNotStart(let reason):
            failureCount.add(1, ordering: .relaxed)
            logger.warning("hook could not start", metadata: metadata.merging(["error": "\(reason)"]) { $1 })
        }
    }

    /// `text` with every control character (C0, DEL, C1) and every bidirectional override written as
    /// an escape (`\x1b`, `\u{202e}`), so hook output cannot forge log lines or repaint a terminal.
    public static func escapingControlCharacters(_ text: some StringProtocol) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x00..<0x20, 0x7F...0x9F:
                let hex = String(scalar.value, radix: 16)
                escaped += "\\x" + (hex.count == 1 ? "0" : "") + hex
            case 0x202A...0x202E, 0x2066...0x2069:
                escaped += "\\u{" + String(scalar.value, radix: 16) + "}"
            default:
                escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Runs `job` to completion or `timeout`, synchronously (``ChildProcess``: `/bin/sh -c`, its own
    /// process group, only descriptors 0, 1 and 2, done when the shell exits).
    public static func run(_ job: HookJob, timeout: Duration) -> HookResult {
        let run: ChildRun
        do {
            run = try ChildProcess.run(
                "/bin/sh", arguments: ["-c", job.command], environment: job.environment, timeout: timeout, outputLimit: outputLimit)
        } catch {
            return HookResult(outcome: .couldNotStart("\(error)"), output: "")
        }
        let text = String(decoding: run.output, as: UTF8.self)
        switch run.termination {
        case .exited(let status): return HookResult(outcome: status == 0 ? .succeeded : .failed(status: status), output: text)
        case .signalled(let signal): return HookResult(outcome: .signalled(signal), output: text)
        case .timedOut, .unreaped: return HookResult(outcome: .timedOut, output: text)
        }
    }
}
