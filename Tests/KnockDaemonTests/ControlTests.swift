import Foundation
import KnockConfig
import KnockControl
import KnockCore
import KnockDaemon
import KnockPOSIX
import KnockTestSupport
import Logging
import Netfilter
import Synchronization
import Testing

/// The control protocol, the service's answers to it, and the socket server with garbage thrown at it.
@Suite struct ControlTests {
    let server = PeerAddress(ipv4: 0xC000_0201)  // 192.0.2.1
    let client = PeerAddress(ipv4: 0xC000_0202)  // 192.0.2.2
    let wall = WallTime(secondsSinceEpoch: 1_758_000_000)
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func rule(_ name: String, _ ports: [UInt16], gap: Duration? = .seconds(10), autoclose: Duration? = .seconds(60)) -> Rule {
        Rule(
            name: RuleName(rawValue: name)!, knockSequence: ports.map { ServicePort(Port(rawValue: $0)!, .tcp) },
            maxKnockGap: gap, autoclose: autoclose, protectedPorts: [ServicePort(Port(rawValue: 22)!, .tcp)])
    }

    func makeService(_ rules: [Rule], executor: RecordingNFTExecutor = RecordingNFTExecutor()) throws -> KnockService {
        var configuration = Configuration(rules: rules)
        configuration.daemon.table = "pk_test"
        let service = KnockService(configuration: configuration, executor: executor, logger: quiet)
        try service.start(now: .zero)
        return service
    }

    func syn(_ port: UInt16, from source: PeerAddress? = nil) -> [UInt8] {
        PacketBuilder.tcpSYN(from: source ?? client, to: server, port: port)
    }

    func parse(_ text: String) -> Result<ControlRequest, ControlProtocolError> {
        do { return .success(try ControlRequest(parsing: Array(text.utf8))) } catch { return .failure(error) }
    }

    /// The rules of a status reply; nil for any other reply.
    static func rules(_ reply: ControlReply) -> [RuleStatusReport]? {
        guard case .status(let rules, _) = reply else { return nil }
        return rules
    }

    // MARK: Protocol

    @Test(arguments: [
        (#"{"command":"status"}"#, ControlRequest.status(rule: nil)),
        (#"{"command":"status","rule":"SSH"}"#, .status(rule: RuleName(rawValue: "SSH"))),
        (#"{"command":"events"}"#, .events),
        (
            #"{"command":"open","rule":"SSH","peer":"2001:db8::7","seconds":90}"#,
            .open(rule: RuleName(rawValue: "SSH")!, peer: PeerAddress("2001:db8::7")!, duration: .seconds(90))
        ),
        (#"{"command":"close","rule":"SSH","peer":"192.0.2.7"}"#, .close(rule: RuleName(rawValue: "SSH")!, peer: PeerAddress("192.0.2.7")!)),
    ])
    func requestsParseAndRoundTrip(line: String, expected: ControlRequest) throws {
        #expect(try ControlRequest(parsing: Array(line.utf8)) == expected)
        #expect(try ControlRequest(parsing: Array(expected.line.utf8)) == expected)
    }

    @Test(arguments: [
        ("not json", "not a JSON request object"),
        ("[1,2]", "not a JSON request object"),
        (#"{"rule":"SSH"}"#, "not a JSON request object"),
        (#"{"command":"reboot"}"#, "unknown command"),
        (#"{"command":"open","rule":"SSH"}"#, "needs \"peer\""),
        (#"{"command":"open","rule":"S S H","peer":"192.0.2.7"}"#, "invalid rule name"),
        (#"{"command":"close","rule":"SSH","peer":"192.0.2.300"}"#, "invalid peer address"),
        (#"{"command":"open","rule":"SSH","peer":"192.0.2.7","seconds":0}"#, "\"seconds\" must be"),
        (#"{"command":"status","rule":7}"#, "not a JSON request object"),
    ])
    func badRequestsAreRefusedWithAReason(line: String, reason: String) {
        guard case .failure(let error) = parse(line) else {
            Issue.record("\(line) was accepted")
            return
        }
        #expect(error.message.contains(reason))
    }

    @Test func anOverlongLineIsRefused() {
        let line = #"{"command":"status","rule":""# + String(repeating: "A", count: ControlFraming.maximumRequestLength) + #""}"#
        guard case .failure(let error) = parse(line) else {
            Issue.record("accepted")
            return
        }
        #expect(error.message.contains("too long"))
    }

    // MARK: status

    @Test func statusListsMatchingAndAllowedPeersInBothFormats() throws {
        let service = try makeService([rule("SSH", [2002, 2001, 2004]), rule("WEB", [3000], gap: nil, autoclose: nil)])
        let other = PeerAddress(ipv4: 0xC633_6407)  // 198.51.100.7
        service.handle(packet: syn(2002), etherType: 0x0800, now: .seconds(1), wallTime: wall)
        service.handle(packet: syn(2001), etherType: 0x0800, now: .seconds(2), wallTime: wall)
        // A peer with only a first knock is a fingerprint, not an address: it is not listed.
        service.handle(packet: syn(2002, from: PeerAddress(ipv4: 0xCB00_7109)), etherType: 0x0800, now: .seconds(2), wallTime: wall)
        service.handle(packet: syn(2002, from: other), etherType: 0x0800, now: .seconds(2), wallTime: wall)
        service.handle(packet: syn(2001, from: other), etherType: 0x0800, now: .seconds(3), wallTime: wall)
        service.handle(packet: syn(2004, from: other), etherType: 0x0800, now: .seconds(4), wallTime: wall)
        service.handle(packet: syn(3000), etherType: 0x0800, now: .seconds(4), wallTime: wall)

        let reply = service.control(.status(rule: nil), now: .seconds(5))
        let rules = try #require(Self.rules(reply))
        #expect(rules.map(\.rule) == ["SSH", "WEB"])
        #expect(
            rules[0].peers == [
                PeerStatusReport(
                    peer: "192.0.2.2", transport: .tcp, status: .matching, knocks: 2, nextPort: "2004:tcp", nextPortIndex: 2,
                    expiresIn: 7),
                PeerStatusReport(peer: "198.51.100.7", transport: .tcp, status: .allowed, knocks: 3, autocloseIn: 59),
            ])
        #expect(
            RuleStatusReport.text(rules) == """
                rule SSH (2 peers)
                src=192.0.2.2 proto=TCP status=MATCHING accepted_knock_count=2 expir_time=7 next_port_id=2 next_port=2004:tcp
                src=198.51.100.7 proto=TCP status=ALLOWED accepted_knock_count=3 autoclose_time=59
                rule WEB (1 peer)
                src=192.0.2.2 proto=TCP status=ALLOWED accepted_knock_count=1

                """)
        #expect(
            reply.line.contains(
                #"{"knocks":2,"next_port":"2004:tcp","next_port_index":2,"expires_in":7,"peer":"192.0.2.2","protocol":"tcp","status":"matching"}"#
            ) == false, "keys are sorted")
        #expect(
            reply.line.contains(
                #"{"expires_in":7,"knocks":2,"next_port":"2004:tcp","next_port_index":2,"peer":"192.0.2.2","protocol":"tcp","status":"matching"}"#
            ))
        #expect(try ControlReply(parsing: Array(reply.line.utf8)) == reply)
    }

    @Test func statusOfOneRuleAndOfAnUnknownRule() throws {
        let service = try makeService([rule("SSH", [2002, 2001]), rule("WEB", [3000])])
        #expect(Self.rules(service.control(.status(rule: RuleName(rawValue: "WEB")), now: .zero))?.map(\.rule) == ["WEB"])
        let unknown = service.control(.status(rule: RuleName(rawValue: "NOPE")), now: .zero)
        #expect(unknown == .failure("no rule named NOPE"))
    }

    // MARK: open / close

    @Test func adminOpenAndCloseChangeTheFirewallAndEmitEvents() throws {
        let executor = RecordingNFTExecutor()
        let service = try makeService([rule("SSH", [2002, 2001])], executor: executor)
        var events: [KnockEvent] = []
        service.onEvent = { events.append($0) }
        let peer = PeerAddress("2001:db8::7")!

        let opened = service.control(.open(rule: RuleName(rawValue: "SSH")!, peer: peer, duration: .seconds(300)), now: .seconds(1))
        #expect(opened == .done("allowed 2001:db8::7 under SSH"))
        #expect(executor.changes.last?.contains("add element inet pk_test SSH_allowed6 { 2001:db8::7 timeout 300s }") == true)
        #expect(events.last?.kind == .allowed(until: .seconds(301)))
        let status = Self.rules(service.control(.status(rule: nil), now: .seconds(1)))?.first?.peers
        #expect(status?.first?.status == .allowed && status?.first?.autocloseIn == 300)

        let closed = service.control(.close(rule: RuleName(rawValue: "SSH")!, peer: peer), now: .seconds(2))
        #expect(closed == .done("revoked 2001:db8::7 under SSH"))
        #expect(executor.changes.last?.contains("delete element inet pk_test SSH_allowed6 { 2001:db8::7 }") == true)
        #expect(events.last?.kind == .closed)
        #expect(Self.rules(service.control(.status(rule: nil), now: .seconds(2)))?.first?.peers.isEmpty == true)

        let unknown = service.control(.open(rule: RuleName(rawValue: "NOPE")!, peer: peer, duration: nil), now: .seconds(3))
        #expect(unknown == .failure("no rule named NOPE"))
    }

    @Test func openIsRefusedWhenTheRuleIsFull() throws {
        var full = rule("SSH", [2002])
        full.maxAllowedPeers = 1
        let service = try makeService([full])
        #expect(service.control(.open(rule: full.name, peer: client, duration: nil), now: .zero) == .done("allowed 192.0.2.2 under SSH"))
        let second = service.control(.open(rule: full.name, peer: server, duration: nil), now: .zero)
        #expect(second == .failure("rule SSH already allows its maximum of peers"))
    }

    // MARK: Mailbox

    @Test func theMailboxHandsRequestsToTheDrainingThreadAndBack() throws {
        let mailbox = ControlMailbox()
        let reply = Mutex<ControlReply?>(nil)
        let done = DispatchSemaphore(value: 0)
        // A socket thread, as in the server (not a task: it blocks).
        Thread {
            let answer = mailbox.submit(.status(rule: nil), timeout: .seconds(5))
            reply.withLock { $0 = answer }
            done.signal()
        }.start()
        var drained = 0
        while drained == 0 {
            mailbox.drain { request in
                drained += 1
                return .done("\(request)")
            }
            usleep(2000)
        }
        #expect(done.wait(timeout: .now() + 5) == .success)
        #expect(reply.withLock { $0 } == .done("status(rule: nil)"))
    }

    @Test func aMailboxNobodyDrainsTimesOut() {
        let reply = ControlMailbox().submit(.status(rule: nil), timeout: .milliseconds(50))
        #expect(reply == .failure("pknockd did not answer in time"))
    }

    // MARK: The socket server

    /// A server on a temporary socket whose mailbox a background task drains against `service`.
    final class Harness: @unchecked Sendable {
        let path: String
        let server: ControlServer
        let hub = EventHub(bufferCapacity: 4)
        let mailbox = ControlMailbox()
        let stopDraining = Mutex(false)

        init(service: KnockService, logger: Logger) throws {
            path = NSTemporaryDirectory() + "pk-control-\(UUID().uuidString.prefix(8))/control.sock"
            server = try ControlServer(path: path, mailbox: mailbox, events: hub, logger: logger)
            // Only the drain thread touches the service, like the daemon's intake loop.
            let box = UncheckedBox(service)
            let thread = Thread { [self] in
                while !stopDraining.withLock({ $0 }) {
                    mailbox.drain { box.value.control($0, now: .seconds(1)) }
                    usleep(2000)
                }
            }
            thread.start()
        }

        func close() {
            stopDraining.withLock { $0 = true }
            server.stop()
            try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
        }

        /// Sends `raw` and reads up to `replies` lines (fewer if the server hangs up).
        func exchange(_ raw: [UInt8], replies: Int) throws -> [String] {
            let socket = try LineSocket.connect(unixPath: path)
            defer { socket.close() }
            socket.setTimeouts(read: .seconds(5), write: .seconds(5))
            _ = socket.write(raw)
            var lines: [String] = []
            while lines.count < replies, case .line(let bytes) = socket.readLine(limit: 1 << 20) {
                lines.append(String(decoding: bytes, as: UTF8.self))
            }
            return lines
        }
    }

    @Test func theSocketIsOwnerOnlyInAnOwnerOnlyDirectory() throws {
        let harness = try Harness(service: try makeService([rule("SSH", [2002])]), logger: quiet)
        defer { harness.close() }
        let socketMode = try FileManager.default.attributesOfItem(atPath: harness.path)[.posixPermissions] as? Int
        let directoryMode =
            try FileManager.default.attributesOfItem(atPath: (harness.path as NSString).deletingLastPathComponent)[
                .posixPermissions] as? Int
        #expect(socketMode == 0o600)
        #expect(directoryMode == 0o700)
    }

    @Test func garbageGetsErrorRepliesAndTheServerKeepsServing() throws {
        let service = try makeService([rule("SSH", [2002])])
        let harness = try Harness(service: service, logger: quiet)
        defer { harness.close() }
        // Several requests on one connection: garbage, binary, an unknown command, then a good one.
        var raw = Array("hello\n".utf8) + [0xFF, 0x00, 0xC3, 0x28, 0x0A] + Array("{\"command\":\"rm -rf\"}\n".utf8)
        raw += Array("\n{\"command\":\"status\"}\n".utf8)
        let replies = try harness.exchange(raw, replies: 4)
        #expect(replies.count == 4)
        #expect(replies.prefix(3).allSatisfy { $0.hasPrefix(#"{"error":"#) && $0.contains(#""ok":false"#) })
        #expect(replies.last?.contains(#""ok":true"#) == true && replies.last?.contains(#""rule":"SSH""#) == true)

        // A huge line: one error reply, then the connection closes.
        let huge = try harness.exchange(Array(repeating: UInt8(ascii: "{"), count: 100_000), replies: 2)
        #expect(huge.count == 1 && huge[0].contains("too long"))

        // A client that connects and vanishes.
        _ = try LineSocket.connect(unixPath: harness.path)

        // Still serving.
        let after = try harness.exchange(Array("{\"command\":\"status\",\"rule\":\"SSH\"}\n".utf8), replies: 1)
        #expect(after.count == 1 && after[0].contains(#""ok":true"#))
    }

    @Test func openAndCloseThroughTheSocket() throws {
        let executor = RecordingNFTExecutor()
        let harness = try Harness(service: try makeService([rule("SSH", [2002])], executor: executor), logger: quiet)
        defer { harness.close() }
        let peer = PeerAddress("192.0.2.77")!
        let opened = try ControlClient.open(rule: RuleName(rawValue: "SSH")!, peer: peer, duration: .seconds(30), socketPath: harness.path)
        #expect(opened == "allowed 192.0.2.77 under SSH")
        #expect(executor.changes.last?.contains("192.0.2.77 timeout 30s") == true)
        let closed = try ControlClient.close(rule: RuleName(rawValue: "SSH")!, peer: peer, socketPath: harness.path)
        #expect(closed == "revoked 192.0.2.77 under SSH")
        #expect(try ControlClient.status(rule: nil, socketPath: harness.path).map(\.rule) == ["SSH"])
        // The daemon's refusal reaches the caller as a failure with the daemon's message.
        #expect(throws: ControlClient.Failure("no rule named NOPE")) {
            try ControlClient.close(rule: RuleName(rawValue: "NOPE")!, peer: peer, socketPath: harness.path)
        }
        #expect(throws: ControlClient.Failure.self) { try ControlClient.status(rule: nil, socketPath: harness.path + ".missing") }
    }
}

/// Hands a non-Sendable value to the one thread that uses it.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
