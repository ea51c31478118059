// coldbench: what steps of pknockd's knock and grant paths cost when their code and data have gone
// cold, in this process and without the kernel (Scripts/bench/coldpath.sh; BENCHMARKS.md,
// "Grant path"). Between knocks the daemon sleeps, and on a small guest the idle CPU loses its
// caches: a step that takes a microsecond in a loop can take tens once its code is cold.
//
//   coldbench [GAP_MS]
//
// Each step runs 30 times, each time after GAP_MS (default 100) of spinning on the clock, which
// keeps the CPU awake but lets the rest of the machine evict the step's lines; prints the median,
// least and most in µs. Then the same steps warm, averaged over 20,000 runs.
import Foundation
import KnockConfig
import KnockCore
import KnockDaemon
import KnockTestSupport
import Logging
import Netfilter

/// Encodes each batch as NFTContext does (into one reused buffer) and sends nothing.
final class EncodingExecutor: NFTExecutor {
    private var buffer: [UInt8] = []
    private(set) var bytes = 0
    func run(_ script: NFTScript) throws(NetfilterError) -> String { "" }
    func claimTable(_ name: String, flags: NFTablesNetlink.TableFlags) throws(NetfilterError) {}
    func apply(_ batch: NFTablesNetlink.ElementBatch) throws(NetfilterError) {
        batch.encode(sequence: 1, into: &buffer)
        bytes &+= buffer.count
    }
}

let gap = Duration.milliseconds(CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 100 : 100)
let clock = ContinuousClock()
let origin = clock.now
@MainActor func now() -> Instant { Instant(nanoseconds: (clock.now - origin).nanosecondsClamped) }
let wall = WallTime(secondsSinceEpoch: Int64(time(nil)))
guard let lat = RuleName(rawValue: "LAT"), let first = Port(rawValue: 6001), let second = Port(rawValue: 6002),
    let protected = Port(rawValue: 8080), let server = PeerAddress("2001:db8:1::1")
else { preconditionFailure("the benchmark's constants are valid") }
var configuration = Configuration(rules: [
    Rule(
        name: lat, knockSequence: [ServicePort(first, .tcp), ServicePort(second, .tcp)], maxKnockGap: .seconds(10),
        autoclose: .seconds(60), protectedPorts: [ServicePort(protected, .tcp)])
])
configuration.daemon.table = "pkcold"
// Grants log at notice, as in the daemon; the lines go to stderr (send it to /dev/null).
let service = KnockService(configuration: configuration, executor: EncodingExecutor(), logger: Logger(label: "coldbench"))
let layout = FirewallLayout(configuration: configuration)
var nextSource: UInt64 = 0
/// A first and a completing knock from a source not seen before.
@MainActor func sequence() -> (first: [UInt8], second: [UInt8]) {
    nextSource += 1
    let source = PeerAddress(high: 0x2001_0db8_ff00_0000, low: nextSource)
    return (PacketBuilder.tcpSYN(from: source, to: server, port: 6001), PacketBuilder.tcpSYN(from: source, to: server, port: 6002))
}
let grant = FirewallCommand.allow(rule: lat, peer: server, ttl: .seconds(60))
let batch = layout.commandBatch(grant)
var buffer: [UInt8] = []

/// `prepare` runs outside the timed part.
@MainActor func cold(_ label: String, prepare: () -> Void = {}, _ body: () -> Void) {
    var samples: [Duration] = []
    for _ in 0..<30 {
        prepare()
        let until = clock.now + gap
        while clock.now < until {}
        let start = clock.now
        body()
        samples.append(clock.now - start)
    }
    samples.sort()
    func us(_ duration: Duration) -> String { String(format: "%.1f", Double(duration.nanosecondsClamped) / 1_000) }
    print("\(label.padding(toLength: 44, withPad: " ", startingAt: 0)) cold p50 \(us(samples[15])) µs (\(us(samples[0]))–\(us(samples[29])))")
}

@MainActor func warm(_ label: String, runs: Int = 20_000, prepare: () -> Void = {}, _ body: () -> Void) {
    var total: Duration = .zero
    for _ in 0..<runs {
        prepare()
        let start = clock.now
        body()
        total += clock.now - start
    }
    print(
        "\(label.padding(toLength: 44, withPad: " ", startingAt: 0)) warm \(String(format: "%.2f", Double(total.nanosecondsClamped) / Double(runs) / 1_000)) µs"
    )
}

print("coldbench: gap \(gap) of spinning before each cold run")
var packets = sequence()
/// One step: its name, what to do before it (not timed), the step, and whether to time it warm too.
struct Step {
    var label: String
    var prepare: () -> Void = {}
    var body: () -> Void
    var warm = false
}
let steps: [Step] = [
    Step(label: "parse a knock packet", prepare: { packets = sequence() }) { _ = PacketParser.parse(packets.first[...], family: .ipv6) },
    Step(label: "FirewallLayout.commandBatch (a grant)") { _ = layout.commandBatch(grant) },
    Step(label: "encode the grant's batch (reused buffer)") { batch.encode(sequence: 7, into: &buffer) },
    Step(
        label: "first knock through KnockService", prepare: { packets = sequence() },
        body: { service.handle(packet: packets.first, etherType: 0x86DD, now: now(), wallTime: wall) }, warm: true),
    Step(
        label: "completing knock: the grant, encoded",
        prepare: {
            packets = sequence()
            service.handle(packet: packets.first, etherType: 0x86DD, now: now(), wallTime: wall)
        },
        body: { service.handle(packet: packets.second, etherType: 0x86DD, now: now(), wallTime: wall) }, warm: true),
    Step(label: "KnockService.tick", body: { service.tick(now: now(), wallTime: wall) }, warm: true),
    Step(label: "KnockService.nextDeadline") { _ = service.nextDeadline },
]
for step in steps { cold(step.label, prepare: step.prepare, step.body) }
for step in steps where step.warm { warm(step.label, prepare: step.prepare, step.body) }
