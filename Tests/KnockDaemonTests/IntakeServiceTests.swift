import KnockConfig
import KnockCore
import KnockDaemon
import KnockTestSupport
import Logging
import Netfilter
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// The intake loop as pknockd runs it, on its own thread under swift-service-lifecycle, fed by a
/// fake knock source: knocks, reload and graceful shutdown, awaited as events (no sleeps).
@Suite struct IntakeServiceTests {
    let server = PeerAddress("192.0.2.1")!
    let client = PeerAddress("192.0.2.2")!

    func configuration(knockPort: UInt16) -> Configuration {
        var configuration = Configuration(rules: [
            Rule(
                name: RuleName(rawValue: "SSH")!, knockSequence: [ServicePort(Port(rawValue: knockPort)!, .tcp)],
                maxKnockGap: .seconds(10), autoclose: .seconds(60), protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])
        ])
        configuration.daemon.table = "pk_test"
        return configuration
    }

    @Test func knocksReloadAndGracefulShutdownThroughTheServiceGroup() async throws {
        let executor = RecordingNFTExecutor()
        let log = ReplayStoreLogHandler()
        let logger = Logger(label: "test", factory: { _ in log })
        let service = KnockService(configuration: configuration(knockPort: 2002), executor: executor, logger: logger)
        let source = try FakeKnockSource()
        let control = try DaemonControl()
        let (events, eventSink) = AsyncStream.makeStream(of: KnockEvent.self)
        service.onEvent = { eventSink.yield($0) }
        let (reloads, reloadSink) = AsyncStream.makeStream(of: Void.self)
        let reloaded = configuration(knockPort: 3003)
        let loop = DaemonLoop(
            service: service, reader: source, control: control,
            loadConfiguration: {
                reloadSink.yield()
                return reloaded
            }, logger: logger)
        let mailbox = ControlMailbox(wake: control.wake)
        loop.mailbox = mailbox

        try await testGracefulShutdown { shutdown in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await IntakeService(loop: loop, control: control).run() }
                var eventIterator = events.makeAsyncIterator()

                source.deliver(PacketBuilder.tcpSYN(from: client, to: server, port: 2002), etherType: 0x0800)
                let allowed = await eventIterator.next()
                #expect(allowed?.kind == .allowed(until: allowed.map { $0.time + .seconds(60) } ?? nil))

                // A control request wakes the loop at once (no polling interval) and is answered there.
                let status = mailbox.submit(.status(rule: nil), timeout: .seconds(5))
                #expect(ControlTests.rules(status) != nil, "\(status)")

                control.requestReload()
                var reloadIterator = reloads.makeAsyncIterator()
                _ = await reloadIterator.next()
                // The new rule's port opens after the reload; the old one is no longer a knock port.
                source.deliver(PacketBuilder.tcpSYN(from: PeerAddress("192.0.2.3")!, to: server, port: 3003), etherType: 0x0800)
                let afterReload = await eventIterator.next()
                #expect(afterReload?.peer == PeerAddress("192.0.2.3")!)

                shutdown.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        // The loop has stopped: what it did is safe to read.
        #expect(executor.changes.contains { $0.contains("add element inet pk_test SSH_allowed4 { 192.0.2.2 timeout 60s }") })
        #expect(executor.changes.contains { $0.contains("add element inet pk_test SSH_allowed4 { 192.0.2.3 timeout 60s }") })
        #expect(log.messages.withLock { $0 }.contains("notice: pknockd stopping"))
        #expect(loop.grantLatency.count == 2)  // the daemon's share of each grant was measured
    }

    /// Has a grant applied at once, then takes `answerDelay` to "read the acknowledgement".
    final class SlowAnswerExecutor: NFTExecutor {
        let answerDelay: Duration
        private(set) var lastBatchHandled: ContinuousClock.Instant?
        init(answerDelay: Duration) { self.answerDelay = answerDelay }
        func run(_ script: NFTScript) throws(NetfilterError) -> String { "" }
        func apply(_ batch: NFTablesNetlink.ElementBatch) throws(NetfilterError) {
            lastBatchHandled = .now
            let until = ContinuousClock.now + answerDelay
            while ContinuousClock.now < until {}
        }
    }

    @Test func theGrantShareEndsWhenTheKernelHadTheBatchNotWhenItsAnswerIsRead() async throws {
        // The port is open once the kernel has applied the batch (inside `send`); a late read of the
        // acknowledgement (the loop preempted after the commit) is not pknockd's share of knock → open.
        let executor = SlowAnswerExecutor(answerDelay: .milliseconds(300))
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let service = KnockService(configuration: configuration(knockPort: 2002), executor: executor, logger: logger)
        let source = try FakeKnockSource()
        let control = try DaemonControl()
        let (events, eventSink) = AsyncStream.makeStream(of: KnockEvent.self)
        service.onEvent = { eventSink.yield($0) }
        let loop = DaemonLoop(service: service, reader: source, control: control, loadConfiguration: { throw CancellationError() }, logger: logger)
        try await testGracefulShutdown { shutdown in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await IntakeService(loop: loop, control: control).run() }
                var eventIterator = events.makeAsyncIterator()
                source.deliver(PacketBuilder.tcpSYN(from: client, to: server, port: 2002), etherType: 0x0800)
                _ = await eventIterator.next()
                shutdown.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(loop.grantLatency.count == 1)
        let share = try #require(loop.grantLatency.quantile(1))
        #expect(share < .milliseconds(200), "the acknowledgement's late read was counted: \(share)")
    }

    @Test func aStartThatTheKernelRefusesFailsTheService() async throws {
        let executor = RecordingNFTExecutor()
        executor.claimError = NetfilterError(operation: "NFT_MSG_NEWTABLE", errno: 1)
        let service = KnockService(
            configuration: configuration(knockPort: 2002), executor: executor, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let control = try DaemonControl()
        let loop = DaemonLoop(
            service: service, reader: try FakeKnockSource(), control: control, loadConfiguration: { throw CancellationError() },
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        await #expect(throws: NetfilterError.self) { try await IntakeService(loop: loop, control: control).run() }
    }
}
