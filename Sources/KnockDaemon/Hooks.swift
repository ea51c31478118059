import Foundation
import KnockConfig
import KnockCore
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

    /// The job `event` calls for under `hooks`, or nil: `on_open` runs for allowed, `on_close` for
    /// closed and autoclosed. `transport` is the protocol of the knock (or of the rule's first knock
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
            "PKNOCK_EVENT": EventReport.name(of: event.kind),
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

/// Runs hook commands off the knock-handling thread: a bounded queue and one worker thread.
///
/// ``enqueue(_:)`` never blocks (a full queue drops the job, logs it and counts it as a failure).
/// Each command runs in its own process group (Foundation's `Process` makes one) so that on timeout
/// SIGTERM, then SIGKILL after a second, reach everything it started. Output is logged line by line
/// at info; failures at warning; nothing is ever fatal.
public final class HookRunner: Sendable {
    /// The most output bytes kept per run.
    public static let outputLimit = 8192

    /// How long a hook may run.
    public let timeout: Duration
    /// Jobs waiting beyond which new ones are dropped.
    public let queueCapacity: Int
    private let logger: Logger
    private let queue = Mutex<[HookJob]>([])
    private let wakeUp = DispatchSemaphore(value: 0)
    private let failureCount = Atomic<Int>(0)
    private let runCount = Atomic<Int>(0)
    private let pendingCount = Atomic<Int>(0)
    private let onFinish: (@Sendable (HookJob, HookResult) -> Void)?

    /// Makes a runner and starts its worker thread. `onFinish` is called on the worker after each run.
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
    /// Hook runs finished (whatever the outcome).
    public var runs: Int { runCount.load(ordering: .relaxed) }
    /// Jobs queued or running.
    public var pending: Int { pendingCount.load(ordering: .relaxed) }

    /// Queues `job`; returns false (and logs) when the queue is full.
    @discardableResult
    public func enqueue(_ job: HookJob) -> Bool {
        let accepted = queue.withLock { jobs in
            guard jobs.count < queueCapacity else { return false }
            jobs.append(job)
            return true
        }
        guard accepted else {
            failureCount.add(1, ordering: .relaxed)
            logger.warning("hook dropped: too many hooks waiting", metadata: ["hook.rule": "\(job.rule)", "hook.name": "\(job.hook)"])
            return false
        }
        pendingCount.add(1, ordering: .relaxed)
        wakeUp.signal()
        return true
    }

    /// Queues the hook `event` calls for under `configuration`, if any.
    public func handle(_ event: KnockEvent, configuration: Configuration) {
        guard let hooks = configuration.hooks[event.rule] else { return }
        let rule = configuration.rules.first { $0.name == event.rule }
        if let job = HookJob.job(for: event, hooks: hooks, rule: rule) { enqueue(job) }
    }

    private func work() {
        while true {
            wakeUp.wait()
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
            logger.info("hook output", metadata: metadata.merging(["hook.output": "\(line)"]) { $1 })
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

    /// Runs `job` to completion or `timeout`, synchronously.
    ///
    /// Output goes to an unlinked temporary file rather than a pipe, so a hook that leaves a process
    /// running in the background (starting a service is a classic hook) cannot block us on its output.
    public static func run(_ job: HookJob, timeout: Duration) -> HookResult {
        let path = NSTemporaryDirectory() + "pknockd-hook-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
            let log = FileHandle(forUpdatingAtPath: path)
        else {
            return HookResult(outcome: .couldNotStart("cannot create an output file in \(NSTemporaryDirectory())"), output: "")
        }
        unlink(path)
        defer { try? log.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", job.command]
        process.environment = job.environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        do {
            try process.run()
        } catch {
            return HookResult(outcome: .couldNotStart("\(error)"), output: "")
        }
        var timedOut = false
        if finished.wait(timeout: .now() + .nanoseconds(Int(timeout.nanosecondsClamped))) == .timedOut {
            timedOut = true
            // Foundation starts the child as a process-group leader, so -pid reaches its children too.
            let group = process.processIdentifier
            kill(-group, SIGTERM)
            if finished.wait(timeout: .now() + .seconds(1)) == .timedOut {
                kill(-group, SIGKILL)
                finished.wait()
            }
        }
        try? log.seek(toOffset: 0)
        let bytes = (try? log.read(upToCount: outputLimit)) ?? Data()
        let text = String(decoding: bytes, as: UTF8.self)
        if timedOut { return HookResult(outcome: .timedOut, output: text) }
        switch process.terminationReason {
        case .exit:
            let status = process.terminationStatus
            return HookResult(outcome: status == 0 ? .succeeded : .failed(status: status), output: text)
        case .uncaughtSignal:
            return HookResult(outcome: .signalled(process.terminationStatus), output: text)
        @unknown default:
            return HookResult(outcome: .failed(status: process.terminationStatus), output: text)
        }
    }
}
