import Foundation
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
    }

    @Test func aRuleWithoutThatHookRunsNothing() {
        #expect(HookJob.job(for: event(.closed), hooks: RuleHooks(onOpen: "x"), rule: nil) == nil)
    }

    @Test func theCommandSeesItsEnvironment() throws {
        let job = try #require(HookJob.job(for: event(.allowed(until: nil)), hooks: RuleHooks(onOpen: #"echo "$PKNOCK_RULE $PKNOCK_PEER $PKNOCK_PROTO $PKNOCK_PORT $PKNOCK_EVENT %IP%""#), rule: nil))
        let result = HookRunner.run(job, timeout: .seconds(10))
        #expect(result.outcome == .succeeded)
        #expect(result.output == "SSH 2001:db8::7 udp 4000 allowed 2001:db8::7\n")
    }

    @Test func aFailingHookIsReportedWithItsStatusAndOutput() {
        let result = HookRunner.run(HookJob(command: "echo oops >&2; exit 3", environment: [:], rule: "SSH", hook: "open"), timeout: .seconds(10))
        #expect(result.outcome == .failed(status: 3))
        #expect(result.output == "oops\n")
    }

    @Test func aHookPastItsTimeoutIsKilledWithItsChildren() throws {
        let marker = NSTemporaryDirectory() + "pk-hook-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        // The grandchild would create the marker after 2 s if killing the group missed it.
        let job = HookJob(command: "(sleep 2; touch \(marker)) & sleep 30", environment: [:], rule: "SSH", hook: "open")
        let start = ContinuousClock.now
        let result = HookRunner.run(job, timeout: .milliseconds(300))
        #expect(result.outcome == .timedOut)
        #expect(ContinuousClock.now - start < .seconds(3))
        Thread.sleep(forTimeInterval: 2.5)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func aHookThatCannotRunIsAFailureNotACrash() {
        let result = HookRunner.run(HookJob(command: "/nonexistent/hook", environment: [:], rule: "SSH", hook: "open"), timeout: .seconds(5))
        #expect(result.outcome == .failed(status: 127))
    }

    @Test func theRunnerRunsQueuedJobsInOrderOffTheCallersThreadAndCountsFailures() throws {
        let results = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let runner = HookRunner(timeout: .seconds(5), logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })) { job, result in
            results.withLock { $0.append("\(job.command)=\(result.outcome)") }
            done.signal()
        }
        let start = ContinuousClock.now
        runner.enqueue(HookJob(command: "sleep 0.3; true", environment: [:], rule: "R", hook: "open"))
        runner.enqueue(HookJob(command: "false", environment: [:], rule: "R", hook: "close"))
        #expect(ContinuousClock.now - start < .milliseconds(200), "enqueue does not wait for the hook")
        for _ in 0..<2 { #expect(done.wait(timeout: .now() + 10) == .success) }
        #expect(results.withLock { $0 } == ["sleep 0.3; true=succeeded", "false=failed(status: 1)"])
        #expect(runner.failures == 1 && runner.runs == 2)
    }

    @Test func aFullQueueDropsAndCounts() {
        let runner = HookRunner(timeout: .seconds(5), queueCapacity: 1, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        var accepted = 0
        for _ in 0..<5 where runner.enqueue(HookJob(command: "sleep 0.2", environment: [:], rule: "R", hook: "open")) { accepted += 1 }
        #expect(accepted < 5)
        #expect(runner.failures == 5 - accepted)
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
