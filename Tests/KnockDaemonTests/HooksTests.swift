import Foundation
import InMemoryLogging
import KnockConfig
import KnockCore
import KnockDaemon
import Logging
import Synchronization
import Testing

/// on_open/on_close hooks: which events run them, their environment, timeouts and failures.
@Suite struct HooksTests {
    let ssh = RuleName(rawValue: "SSH")!
    let peer = PeerAddress("2001:db8::7")!
    let hooks = RuleHooks(onOpen: "open %IP%", onClose: "close %IP%")
    let quiet = Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A job running `command` with an empty environment.
    func shell(_ command: String, rule: String = "SSH", hook: String = "open") -> HookJob {
        HookJob(command: command, environment: [:], rule: rule, hook: hook)
    }

    func temporaryPath(_ name: String) -> String { NSTemporaryDirectory() + "pk-hook-\(name)-\(UUID().uuidString)" }

    /// Polls `condition` every 10 ms for at most `seconds`; whether it came true (a bounded wait, not a timing assert).
    func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// Whether `pid` no longer runs (gone, or a zombie waiting for its reaper).
    func processIsGone(_ pid: Int32) -> Bool {
        if kill(pid, 0) == -1 && errno == ESRCH { return true }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    func event(_ kind: KnockEvent.Kind, knock: ServicePort? = ServicePort(Port(rawValue: 4000)!, .udp)) -> KnockEvent {
        KnockEvent(rule: ssh, peer: peer, kind: kind, knock: knock, time: .zero)
    }

    @Test func openAndCloseEventsMakeJobsWithTheEnvironmentAndIPSubstituted() throws {
        let open = try #require(HookJob.job(for: event(.allowed(until: nil)), hooks: hooks, rule: nil))
        #expect(open.command == "open 2001:db8::7")
        #expect(open.hook == "open")
        #expect(open.environment["PKNOCK_RULE"] == "SSH")
        #expect(open.environment["PKNOCK_PEER"] == "2001:db8::7")
        #expect(open.environment["PKNOCK_PROTO"] == "udp")
        #expect(open.environment["PKNOCK_PORT"] == "4000")
        #expect(open.environment["PKNOCK_EVENT"] == "allowed")
        let close = try #require(HookJob.job(for: event(.autoclosed, knock: nil), hooks: hooks, rule: nil))
        #expect(close.command == "close 2001:db8::7" && close.environment["PKNOCK_EVENT"] == "autoclosed")
        #expect(close.environment["PKNOCK_PORT"] == "")
        #expect(HookJob.job(for: event(.closed), hooks: hooks, rule: nil)?.hook == "close")
    }

    @Test(arguments: [
        KnockEvent.Kind.matching(step: 1, of: 2), .timeExceeded, .badMAC, .blocked, .evicted, .refusedFull,
        .didNotMatch(expected: ServicePort(Port(rawValue: 1)!, .tcp), reset: false),
    ])
    func otherEventsRunNoHook(kind: KnockEvent.Kind) {
        #expect(HookJob.job(for: event(kind), hooks: hooks, rule: nil) == nil)
        // The daemon does not even look at the configuration for them (every knock of a flood).
        #expect(!HookJob.mayRun(for: kind))
    }

    @Test(arguments: [KnockEvent.Kind.allowed(until: nil), .closed, .autoclosed])
    func openAndCloseEventsMayRunAHook(kind: KnockEvent.Kind) {
        #expect(HookJob.mayRun(for: kind))
    }

    @Test func aRuleWithoutThatHookRunsNothing() {
        #expect(HookJob.job(for: event(.closed), hooks: RuleHooks(onOpen: "x"), rule: nil) == nil)
    }

    @Test func theCommandSeesItsEnvironment() throws {
        let job = try #require(
            HookJob.job(
                for: event(.allowed(until: nil)), hooks: RuleHooks(onOpen: #"echo "$PKNOCK_RULE $PKNOCK_PEER $PKNOCK_PROTO $PKNOCK_PORT $PKNOCK_EVENT %IP%""#),
                rule: nil))
        let result = HookRunner.run(job, timeout: .seconds(10))
        #expect(result.outcome == .succeeded)
        #expect(result.output == "SSH 2001:db8::7 udp 4000 allowed 2001:db8::7\n")
    }

    @Test func aFailingHookIsReportedWithItsStatusAndOutput() {
        let result = HookRunner.run(shell("echo oops >&2; exit 3"), timeout: .seconds(10))
        #expect(result.outcome == .failed(status: 3))
        #expect(result.output == "oops\n")
    }

    @Test func aHookPastItsTimeoutIsKilledWithItsChildren() throws {
        // The background child prints its pid and ignores SIGTERM: the group's SIGKILL must reach it.
        let job = shell("(trap '' TERM; exec sleep 30) & echo $!; sleep 30")
        let result = HookRunner.run(job, timeout: .milliseconds(300))
        #expect(result.outcome == .timedOut)
        let pid = try #require(Int32(result.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(waitUntil { processIsGone(pid) }, "the hook's background child survived the timeout")
    }

    @Test func aHookThatCannotRunIsAFailureNotACrash() {
        let result = HookRunner.run(shell("/nonexistent/hook"), timeout: .seconds(5))
        #expect(result.outcome == .failed(status: 127))
    }

    @Test func aHookThatStartsABackgroundJobIsDoneWhenTheShellExits() throws {
        // The background sleep keeps stdout open for 30 s; the hook is done when sh exits, not then
        // (waiting for it would end in .timedOut at 20 s).
        let result = HookRunner.run(shell("sleep 30 & echo $!"), timeout: .seconds(20))
        #expect(result.outcome == .succeeded)
        let pid = try #require(Int32(result.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(!processIsGone(pid), "a background job outlives its hook (starting a service is a classic hook)")
        kill(pid, SIGKILL)
    }

    @Test func aDetachedProcessDoesNotStallTheNextHook() throws {
        let results = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let runner = HookRunner(timeout: .seconds(20), logger: quiet) { job, result in
            results.withLock { $0.append("\(job.hook)=\(result.outcome)|\(result.output)") }
            done.signal()
        }
        runner.enqueue(shell("setsid sleep 30 & echo $!", rule: "R", hook: "open"))
        runner.enqueue(shell("echo second", rule: "R", hook: "close"))
        // Both within 15 s: less than the detached sleep (30 s) and than the hook timeout (20 s).
        for _ in 0..<2 { #expect(done.wait(timeout: .now() + 15) == .success) }
        let finished = results.withLock { $0 }
        #expect(finished.count == 2)
        #expect(finished.last == "close=succeeded|second\n")
        let printed = finished.first?.split(separator: "|").last?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let first = finished.first, let pid = printed.flatMap({ Int32($0) }) {
            #expect(first.hasPrefix("open=succeeded|"))
            kill(pid, SIGKILL)
        } else {
            Issue.record("the first hook did not print its detached child's pid: \(finished)")
        }
    }

    @Test func aHookSeesOnlyDescriptorsZeroOneAndTwo() throws {
        // A descriptor the daemon opened without close-on-exec must not reach the hook either.
        let leaky = open("/dev/null", O_RDONLY)
        #expect(leaky > 2)
        defer { close(leaky) }
        let result = HookRunner.run(shell("ls /proc/$$/fd"), timeout: .seconds(10))
        #expect(result.outcome == .succeeded)
        #expect(result.output == "0\n1\n2\n")
        let stdin = HookRunner.run(shell("readlink /proc/$$/fd/0"), timeout: .seconds(10))
        #expect(stdin.output == "/dev/null\n")
    }

    @Test func theHookRunsWithDefaultSignalsInItsOwnProcessGroup() throws {
        // pknockd ignores SIGHUP, SIGTERM and SIGINT (it takes them through signal sources), and
        // ignored signals survive exec: the hook must get them back at their defaults. (Read by a
        // program the shell execs: dash blocks every signal while it waits for a child.)
        let previous = signal(SIGHUP, SIG_IGN)
        defer { signal(SIGHUP, previous) }
        let result = HookRunner.run(
            shell("cut -d' ' -f5 /proc/$$/stat; echo $$; exec grep -E '^Sig(Ign|Blk)' /proc/self/status"),
            timeout: .seconds(10))
        let lines = result.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.count == 4, "\(lines)")
        #expect(lines.count >= 2 && lines[0] == lines[1], "the shell leads its own process group: \(lines)")
        func mask(_ name: String) -> UInt64? {
            let line = lines.first { $0.hasPrefix(name + ":") }
            return line.flatMap { UInt64($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces), radix: 16) }
        }
        #expect(mask("SigBlk") == 0, "no signal blocked: \(lines)")
        // Signals 32 and 33 are glibc's own (SIGCANCEL, SIGSETXID), outside what a program can set.
        let glibcInternal: UInt64 = 0b11 << 31
        #expect(mask("SigIgn").map { $0 & ~glibcInternal } == 0, "no signal ignored (SIGHUP included): \(lines)")
    }

    @Test func controlCharactersInHookOutputAreEscapedBeforeLogging() throws {
        #expect(HookRunner.escapingControlCharacters("a\u{1b}[31mb\rc\td\u{7f}") == #"a\x1b[31mb\x0dc\x09d\x7f"#)
        #expect(HookRunner.escapingControlCharacters("fake\u{202e}txt.exe \u{85}") == #"fake\u{202e}txt.exe \x85"#)
        #expect(HookRunner.escapingControlCharacters("plain text, ünïcode ✓") == "plain text, ünïcode ✓")
        let handler = InMemoryLogHandler()
        let done = DispatchSemaphore(value: 0)
        let runner = HookRunner(timeout: .seconds(10), logger: Logger(label: "t", factory: { _ in handler })) { _, _ in done.signal() }
        runner.enqueue(shell(#"printf 'ok\033[2J\rpknockd: peer allowed\n'"#, rule: "R", hook: "open"))
        #expect(done.wait(timeout: .now() + 10) == .success)
        let outputs = handler.entries.compactMap { $0.metadata["hook.output"] }.map { "\($0)" }
        #expect(outputs == [#"ok\x1b[2J\x0dpknockd: peer allowed"#])
    }

    @Test func theRunnerRunsQueuedJobsInOrderOffTheCallersThreadAndCountsFailures() throws {
        let results = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let go = temporaryPath("go")
        defer { try? FileManager.default.removeItem(atPath: go) }
        let runner = HookRunner(timeout: .seconds(15), logger: quiet) { job, result in
            results.withLock { $0.append("\(job.hook)=\(result.outcome)") }
            done.signal()
        }
        // The first hook succeeds only if GO appears while it runs, and GO is made only after
        // enqueue returned: enqueue must not wait for the hook.
        runner.enqueue(shell("for i in $(seq 200); do [ -e \(go) ] && exit 0; sleep 0.05; done; exit 9", rule: "R", hook: "open"))
        runner.enqueue(shell("false", rule: "R", hook: "close"))
        FileManager.default.createFile(atPath: go, contents: nil)
        for _ in 0..<2 { #expect(done.wait(timeout: .now() + 15) == .success) }
        #expect(results.withLock { $0 } == ["open=succeeded", "close=failed(status: 1)"])
        #expect(runner.failures == 1 && runner.runs == 2)
    }

    @Test func aFullQueueDropsOpenHooksCountsThemAndWarnsOnceButNeverDropsACloseHook() throws {
        let handler = InMemoryLogHandler()
        let results = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let started = temporaryPath("started")
        let go = temporaryPath("go")
        defer { for path in [started, go] { try? FileManager.default.removeItem(atPath: path) } }
        let runner = HookRunner(timeout: .seconds(15), queueCapacity: 1, logger: Logger(label: "t", factory: { _ in handler })) { job, _ in
            results.withLock { $0.append("\(job.hook) \(job.environment["PKNOCK_PEER"] ?? "")") }
            done.signal()
        }
        func job(_ hook: String, _ peer: String, _ command: String = "true") -> HookJob {
            HookJob(command: command, environment: ["PKNOCK_PEER": peer], rule: "R", hook: hook)
        }
        // The first hook holds the worker until GO exists.
        runner.enqueue(job("open", "first", "touch \(started); for i in $(seq 200); do [ -e \(go) ] && exit 0; sleep 0.05; done"))
        #expect(waitUntil { FileManager.default.fileExists(atPath: started) })
        let opens = (1...4).map { runner.enqueue(job("open", "198.51.100.\($0)")) }
        #expect(opens == [true, false, false, false], "one open hook may wait")
        let closes = (1...6).map { runner.enqueue(job("close", "192.0.2.\($0)")) }
        #expect(closes.allSatisfy { $0 }, "close hooks are never dropped")
        #expect(runner.enqueue(job("close", "192.0.2.1")), "an identical close hook for the same peer is coalesced, not dropped")
        #expect(runner.dropped == 3 && runner.failures == 3)
        let warnings = handler.entries.filter { $0.level == .warning && "\($0.message)".hasPrefix("hook dropped") }
        #expect(warnings.count == 1, "drops are warned about at most once a minute")
        FileManager.default.createFile(atPath: go, contents: nil)
        for _ in 0..<8 { #expect(done.wait(timeout: .now() + 15) == .success) }
        #expect(results.withLock { $0 } == ["open first", "open 198.51.100.1"] + (1...6).map { "close 192.0.2.\($0)" })
        #expect(runner.runs == 8)
        #expect(MetricsSnapshot(hooksDropped: runner.dropped).exposition.contains("\npknock_hooks_dropped_total 3\n"))
    }

    @Test func hooksAndTheirTimeoutComeFromTheConfiguration() throws {
        let text = """
            [daemon]
            hook_timeout = "3s"
            metrics_listen = "127.0.0.1:9472"
            [[rule]]
            name = "SSH"
            knock = [2002, 2001]
            protect = [22]
            on_open = "logger opened %IP%"
            on_close = "logger closed %IP%"
            """
        let configuration = try ConfigLoader.parseTOML(text, file: "/etc/pknock/pknock.toml", secrets: InMemorySecretSource())
        #expect(configuration.hooks[ssh] == RuleHooks(onOpen: "logger opened %IP%", onClose: "logger closed %IP%"))
        #expect(configuration.daemon.hookTimeout == .seconds(3))
        #expect(configuration.daemon.metricsListen == MetricsListenAddress(host: "127.0.0.1", port: 9472))
        #expect(throws: ConfigError.self) {
            try ConfigLoader.parseTOML("[daemon]\nmetrics_listen = \"localhost\"\n", file: "x.toml", secrets: InMemorySecretSource())
        }
        #expect(throws: ConfigError.self) {
            try ConfigLoader.parseTOML("[[rule]]\nname = \"A\"\nknock = [1]\non_open = 5\n", file: "x.toml", secrets: InMemorySecretSource())
        }
    }
}
