import Foundation
import KnockConfig
import KnockControl
import KnockCore
import KnockDaemon
import KnockPOSIX
import KnockTestSupport
import Logging
import Netfilter
import Testing

/// The event stream: one report per transition, fan-out to many readers, laggards dropped and told.
@Suite struct EventsTests {
    let ssh = RuleName(rawValue: "SSH")!
    let peer = PeerAddress("192.0.2.7")!
    let wall = WallTime(secondsSinceEpoch: 1_758_000_000)  // 2025-09-16T05:20:00Z
    let knock = ServicePort(Port(rawValue: 2001)!, .tcp)

    func event(_ kind: KnockEvent.Kind, knock: ServicePort? = nil) -> KnockEvent {
        KnockEvent(rule: ssh, peer: peer, kind: kind, knock: knock, time: .seconds(100))
    }

    @Test(arguments: [
        (
            KnockEvent.Kind.matching(step: 1, of: 3), true,
            "2025-09-16T05:20:00Z SSH src=192.0.2.7 proto=TCP port=2001 event=MATCHING step=1/3"
        ),
        (.allowed(until: .seconds(160)), true, "2025-09-16T05:20:00Z SSH src=192.0.2.7 proto=TCP port=2001 event=ALLOWED autoclose_time=60"),
        (.allowed(until: nil), false, "2025-09-16T05:20:00Z SSH src=192.0.2.7 event=ALLOWED"),
        (
            .didNotMatch(expected: ServicePort(Port(rawValue: 2004)!, .tcp), reset: true), true,
            "2025-09-16T05:20:00Z SSH src=192.0.2.7 proto=TCP port=2001 event=DIDNT_MATCH expected=2004:tcp reset"
        ),
        (.timeExceeded, false, "2025-09-16T05:20:00Z SSH src=192.0.2.7 event=TIME_EXCEEDED"),
        (.blocked, true, "2025-09-16T05:20:00Z SSH src=192.0.2.7 proto=TCP port=2001 event=BLOCKED"),
        (.badMAC, true, "2025-09-16T05:20:00Z SSH src=192.0.2.7 proto=TCP port=2001 event=BAD_MAC"),
        (.closed, true, "2025-09-16T05:20:00Z SSH src=192.0.2.7 proto=TCP port=2001 event=CLOSED"),
        (.autoclosed, false, "2025-09-16T05:20:00Z SSH src=192.0.2.7 event=AUTOCLOSED"),
        (.evicted, false, "2025-09-16T05:20:00Z SSH src=192.0.2.7 event=EVICTED"),
        (.refusedFull, true, "2025-09-16T05:20:00Z SSH src=192.0.2.7 proto=TCP port=2001 event=REFUSED_FULL"),
    ])
    func everyTransitionHasAReportAndALine(kind: KnockEvent.Kind, withKnock: Bool, text: String) throws {
        let report = EventReport(event(kind, knock: withKnock ? knock : nil), wallTime: wall)
        #expect(report.text == text)
        #expect(report.time == "2025-09-16T05:20:00Z")
        let decoded = try EventReport(parsing: Array(report.line.utf8))
        #expect(decoded == report)
        #expect(report.line.hasPrefix("{\"") && !report.line.contains("\n"))
    }

    @Test func spaV2EventsNameTheClient() throws {
        var allowed = event(.allowed(until: nil), knock: knock)
        allowed.client = "laptop"
        let report = EventReport(allowed, wallTime: wall)
        #expect(report.client == "laptop")
        #expect(report.text.hasSuffix(" event=ALLOWED client=laptop"))
        #expect(try EventReport(parsing: Array(report.line.utf8)).client == "laptop")
    }

    @Test(arguments: [(Int64(0), "1970-01-01T00:00:00Z"), (951_782_400, "2000-02-29T00:00:00Z"), (1_758_000_000, "2025-09-16T05:20:00Z")])
    func wallTimesRenderAsUTC(seconds: Int64, text: String) {
        #expect(EventReport.iso8601(WallTime(secondsSinceEpoch: seconds)) == text)
    }

    @Test func everyReaderGetsEveryEvent() throws {
        let hub = EventHub(bufferCapacity: 16)
        let readers = (0..<5).map { _ in hub.subscribe() }
        #expect(hub.count == 5)
        hub.publish(event(.matching(step: 1, of: 2), knock: knock), wallTime: wall)
        hub.publish(event(.allowed(until: nil), knock: knock), wallTime: wall)
        for reader in readers {
            let taken = try #require(reader.next(timeout: .seconds(1)))
            #expect(taken.dropped == 0)
            #expect(taken.lines.map { try? EventReport(parsing: Array($0.utf8)).event } == [.matching, .allowed])
        }
        readers[0].cancel()
        #expect(hub.count == 4)
        #expect(readers[0].next(timeout: .milliseconds(10)) == nil)
    }

    /// Publishing never waits for the slow reader: it and the reads run on this one thread, so a
    /// publish that waited would hang here (the time limit turns that into a failure); a zero
    /// timeout takes only what publish already delivered.
    @Test(.timeLimit(.minutes(1))) func aSlowReaderLosesEventsAndIsToldHowManyWhileOthersGetAll() throws {
        let hub = EventHub(bufferCapacity: 3)
        let slow = hub.subscribe()
        let fast = hub.subscribe()
        var fastSeen = 0
        for step in 1...10 {
            hub.publish(event(.matching(step: step, of: 10), knock: knock), wallTime: wall)
            let taken = try #require(fast.next(timeout: .zero))
            #expect(taken.dropped == 0)
            fastSeen += taken.lines.count
        }
        #expect(fastSeen == 10)
        let taken = try #require(slow.next(timeout: .seconds(1)))
        #expect(taken.lines.count == 3)
        #expect(taken.dropped == 7)
        #expect(taken.lines.first?.contains(#""step":1"#) == true, "the oldest events are kept, the overflow dropped")
    }

    @Test func nobodyListeningCostsNothingAndLosesNothing() {
        let hub = EventHub()
        hub.publish(event(.closed), wallTime: wall)
        let late = hub.subscribe()
        #expect(late.next(timeout: .milliseconds(10))?.lines.isEmpty == true)
    }

    @Test func theServiceFeedsTheStreamThroughOnEvent() throws {
        let executor = RecordingNFTExecutor()
        var configuration = Configuration(rules: [
            Rule(
                name: ssh, knockSequence: [ServicePort(Port(rawValue: 2002)!, .tcp), knock], maxKnockGap: .seconds(5), strict: true,
                autoclose: .seconds(30), protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])
        ])
        configuration.daemon.table = "pk_test"
        let service = KnockService(configuration: configuration, executor: executor, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        try service.start(now: .zero)
        let hub = EventHub()
        let reader = hub.subscribe()
        service.onEvent = { hub.publish($0, wallTime: wall) }
        let server = PeerAddress("192.0.2.1")!
        func syn(_ port: UInt16, _ at: Int64) {
            service.handle(packet: PacketBuilder.tcpSYN(from: peer, to: server, port: port), etherType: 0x0800, now: .seconds(at), wallTime: wall)
        }
        syn(2002, 1)  // matching
        syn(3000, 2)  // didn't match (strict: reset)
        syn(2002, 3)  // matching
        service.tick(now: .seconds(9), wallTime: wall)  // time exceeded
        syn(2002, 10)
        syn(2001, 11)  // allowed
        _ = service.control(.close(rule: ssh, peer: peer), now: .seconds(12))  // closed
        _ = service.control(.open(rule: ssh, peer: peer, duration: .seconds(1)), now: .seconds(13))  // allowed
        service.tick(now: .seconds(15), wallTime: wall)  // autoclosed
        let names = try #require(reader.next(timeout: .seconds(1))).lines.compactMap { try? EventReport(parsing: Array($0.utf8)).event }
        #expect(names.map(\.rawValue) == ["matching", "didnt_match", "matching", "time_exceeded", "matching", "allowed", "closed", "allowed", "autoclosed"])
    }

    @Test func manyReadersThroughTheSocket() throws {
        let path = NSTemporaryDirectory() + "pk-events-\(UUID().uuidString.prefix(8))/c.sock"
        let hub = EventHub()
        let server = try ControlServer(
            path: path, mailbox: ControlMailbox(), events: hub, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer {
            server.stop()
            try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
        }
        let sockets = try (0..<3).map { _ in try LineSocket.connect(unixPath: path) }
        for socket in sockets {
            socket.setTimeouts(read: .seconds(5), write: .seconds(5))
            socket.writeLine(ControlRequest.events.line)
            guard case .line(let bytes) = socket.readLine(limit: 4096) else {
                Issue.record("no reply")
                return
            }
            #expect(try ControlReply(parsing: bytes) == .following)
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while hub.count < 3 && ContinuousClock.now < deadline { usleep(1000) }
        hub.publish(event(.allowed(until: .seconds(160)), knock: knock), wallTime: wall)
        for socket in sockets {
            guard case .line(let bytes) = socket.readLine(limit: 4096) else {
                Issue.record("no event")
                return
            }
            #expect(try EventReport(parsing: bytes).event == .allowed)
            socket.close()
        }
        // Readers that hang up are noticed and removed.
        let gone = ContinuousClock.now + .seconds(5)
        while hub.count > 0 && ContinuousClock.now < gone { usleep(10_000) }
        #expect(hub.count == 0)
    }
}
