import Foundation
import KnockCore
import KnockDaemon
import Logging
import Synchronization
import Testing

/// Records log messages for one test (never bootstrapped).
final class ReplayStoreLogHandler: LogHandler, Sendable {
    let messages = Mutex<[String]>([])
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }
    func log(event: LogEvent) {
        messages.withLock { $0.append("\(event.level): \(event.message)") }
    }
}

/// The SPA replay memory file in the state directory.
@Suite struct ReplayStoreTests {
    let ftp = RuleName(rawValue: "FTP")!
    let entries = [
        SPAReplayEntry(rule: RuleName(rawValue: "FTP")!, peer: PeerAddress("192.0.2.7")!, epochMinute: 29_400_000),
        SPAReplayEntry(rule: RuleName(rawValue: "VPN-2")!, peer: PeerAddress("2001:db8::9")!, epochMinute: 29_400_001),
        SPAReplayEntry(rule: RuleName(rawValue: "FTP")!, peer: PeerAddress("192.0.2.7")!, epochMinute: 29_400_001, kind: .close),
    ]

    func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pknock-replay-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func mode(_ path: String) throws -> Int {
        try #require((FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue) & 0o777
    }

    func recordingLogger() -> (Logger, ReplayStoreLogHandler) {
        let handler = ReplayStoreLogHandler()
        return (Logger(label: "test", factory: { _ in handler }), handler)
    }

    @Test func renderAndParseRoundTrip() throws {
        let text = ReplayStore.render(entries)
        #expect(text == "pknock-spa-replay 2\nFTP 192.0.2.7 29400000 open\nVPN-2 2001:db8::9 29400001 open\nFTP 192.0.2.7 29400001 close\n")
        #expect(try ReplayStore.parse(text) == entries)
        #expect(try ReplayStore.parse(ReplayStore.render([])) == [])
    }

    @Test func aVersion1FileStillLoadsAsOpens() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ReplayStore(directory: directory)
        let old = "pknock-spa-replay 1\nFTP 192.0.2.7 29400000\nVPN-2 2001:db8::9 29400001\n"
        #expect(FileManager.default.createFile(atPath: store.path, contents: Data(old.utf8)))
        let (logger, handler) = recordingLogger()
        #expect(store.load(logger: logger) == Array(entries.prefix(2)))
        #expect(handler.messages.withLock { $0 }.isEmpty)
    }

    @Test(arguments: [
        ("", 1), ("garbage\n", 1), ("pknock-spa-replay 3\n", 1),
        ("pknock-spa-replay 2\nFTP 192.0.2.7 1\n", 2), ("pknock-spa-replay 2\nFTP 192.0.2.7 1 shut\n", 2),
        ("pknock-spa-replay 1\nFTP 192.0.2.7\n", 2), ("pknock-spa-replay 1\nFTP 192.0.2.7 1 2\n", 2),
        ("pknock-spa-replay 1\nF!P 192.0.2.7 1\n", 2), ("pknock-spa-replay 1\nFTP 192.0.2.300 1\n", 2),
        ("pknock-spa-replay 1\nFTP 192.0.2.7 -5\n", 2), ("pknock-spa-replay 1\nFTP 192.0.2.7 1\nFTP 192.0.2.7 x\n", 3),
        ("pknock-spa-replay 1\n\n", 2),
    ])
    func parseRefusesAnythingElse(text: String, line: Int) {
        #expect(throws: ReplayStore.FormatError.self) { try ReplayStore.parse(text) }
        do {
            _ = try ReplayStore.parse(text)
        } catch {
            #expect(error.line == line)
        }
    }

    @Test func saveThenLoadInAFreshDirectoryWithPrivateModes() throws {
        let base = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let store = ReplayStore(directory: base + "/state")
        try store.save(entries)
        #expect(try mode(store.path) == 0o600)
        #expect(try mode(base + "/state") == 0o700)
        let (logger, handler) = recordingLogger()
        #expect(store.load(logger: logger) == entries)
        #expect(handler.messages.withLock { $0 }.isEmpty)
        // Nothing but the file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/state") == [ReplayStore.defaultFileName])
    }

    @Test func saveReplacesAnOpenFileWithAPrivateOne() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ReplayStore(directory: directory)
        #expect(FileManager.default.createFile(atPath: store.path, contents: Data("old".utf8), attributes: [.posixPermissions: 0o644]))
        try store.save([entries[0]])
        #expect(try mode(store.path) == 0o600)
        #expect(try String(contentsOfFile: store.path, encoding: .utf8) == ReplayStore.render([entries[0]]))
    }

    @Test func aMissingFileIsAFirstStart() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (logger, handler) = recordingLogger()
        #expect(ReplayStore(directory: directory).load(logger: logger) == [])
        #expect(handler.messages.withLock { $0 }.isEmpty)
    }

    @Test(arguments: ["pknock-spa-replay 1\nFTP 192.0.2.7 not-a-minute\n", "\u{0}\u{1}binary", "pknock-spa-replay 1\nFTP"])
    func aCorruptFileIsLoggedAndIgnored(contents: String) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ReplayStore(directory: directory)
        #expect(FileManager.default.createFile(atPath: store.path, contents: Data(contents.utf8)))
        let (logger, handler) = recordingLogger()
        #expect(store.load(logger: logger) == [])
        let messages = handler.messages.withLock { $0 }
        #expect(messages.count == 1)
        #expect(messages.first?.hasPrefix("warning: SPA replay state unusable") == true)
    }

    @Test func invalidUTF8IsCorrupt() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ReplayStore(directory: directory)
        #expect(FileManager.default.createFile(atPath: store.path, contents: Data([0x70, 0xFF, 0xFE, 0x0A])))
        let (logger, handler) = recordingLogger()
        #expect(store.load(logger: logger) == [])
        #expect(handler.messages.withLock { $0 }.count == 1)
    }

    @Test func saveFailsLoudlyWhenTheDirectoryCannotBeMade() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A regular file where the state directory should be.
        #expect(FileManager.default.createFile(atPath: directory + "/blocked", contents: Data()))
        #expect(throws: (any Error).self) { try ReplayStore(directory: directory + "/blocked").save(entries) }
    }

    @Test func theEngineRefusesAReplayAfterARestartThroughTheStore() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rule = Rule(
            name: ftp, knockSequence: [ServicePort(Port(rawValue: 4000)!, .udp)],
            spa: SPASettings(format: .sha256, openSecret: Secret("opensecret"), closeSecret: nil, clockSkewMinutes: 1),
            protectedPorts: [ServicePort(Port(rawValue: 21)!, .tcp)])
        let alice = PeerAddress("192.0.2.7")!
        let wall = WallTime(secondsSinceEpoch: 29_400_000 * 60 + 30)
        let payload = SPAKey(format: .sha256, secret: Secret("opensecret")).payload(source: alice, epochMinute: wall.epochMinute)
        let captured = Knock(source: alice, transport: .udp, port: Port(rawValue: 4000)!, payload: payload[...])

        var before = KnockEngine(rules: [rule])
        #expect(before.handle(captured, at: .zero, wallTime: wall).contains(.firewall(.allow(rule: ftp, peer: alice, ttl: nil))))
        let store = ReplayStore(directory: directory)
        try store.save(before.spaReplayState(at: wall))

        var after = KnockEngine(rules: [rule])
        let (logger, _) = recordingLogger()
        after.restoreSPAReplayState(store.load(logger: logger), at: WallTime(secondsSinceEpoch: wall.secondsSinceEpoch + 45))
        let replay = after.handle(captured, at: .seconds(45), wallTime: WallTime(secondsSinceEpoch: wall.secondsSinceEpoch + 45))
        #expect(replay.allSatisfy { if case .firewall = $0 { false } else { true } })
    }

    @Test func aReplayedCloseAfterARestartClosesNothingThroughTheStore() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rule = Rule(
            name: ftp, knockSequence: [ServicePort(Port(rawValue: 4000)!, .udp)],
            spa: SPASettings(format: .sha256, openSecret: Secret("opensecret"), closeSecret: Secret("closesecret"), clockSkewMinutes: 1),
            protectedPorts: [ServicePort(Port(rawValue: 21)!, .tcp)])
        let alice = PeerAddress("192.0.2.7")!
        let wall = WallTime(secondsSinceEpoch: 29_400_000 * 60 + 10)
        func knock(_ secret: String, minute: Int64) -> Knock {
            let payload = SPAKey(format: .sha256, secret: Secret(secret)).payload(source: alice, epochMinute: minute)
            return Knock(source: alice, transport: .udp, port: Port(rawValue: 4000)!, payload: payload[...])
        }
        var before = KnockEngine(rules: [rule])
        _ = before.handle(knock("opensecret", minute: wall.epochMinute), at: .zero, wallTime: wall)
        let close = knock("closesecret", minute: wall.epochMinute)
        #expect(before.handle(close, at: .seconds(5), wallTime: wall).contains(.firewall(.revoke(rule: ftp, peer: alice))))
        let store = ReplayStore(directory: directory)
        try store.save(before.spaReplayState(at: wall))
        #expect(try String(contentsOfFile: store.path, encoding: .utf8).contains("FTP 192.0.2.7 \(wall.epochMinute) close\n"))

        // Restarted, the peer reopens in the next minute; the captured close packet then closes nothing.
        var after = KnockEngine(rules: [rule])
        let later = WallTime(secondsSinceEpoch: wall.secondsSinceEpoch + 60)
        let (logger, _) = recordingLogger()
        #expect(after.restoreSPAReplayState(store.load(logger: logger), at: later) == 2)
        #expect(
            after.handle(knock("opensecret", minute: later.epochMinute), at: .seconds(60), wallTime: later)
                .contains(.firewall(.allow(rule: ftp, peer: alice, ttl: nil))))
        let replay = after.handle(close, at: .seconds(61), wallTime: later)
        #expect(replay.allSatisfy { if case .firewall = $0 { false } else { true } })
        #expect(after.peerCounts(of: ftp)?.allowed == 1)
    }

    @Test func windowedMemoriesKeepTheirHorizonAndOldFilesStillLoad() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ReplayStore(directory: directory)
        var horizon = ReplayHorizon(windowSeconds: 60)
        horizon.forget(before: 1_764_072_000)
        let nonces = [SPAv2Verifier.SeenNonce(clientID: "laptop", nonce: Array(0..<16), timestamp: 1_764_072_030)]
        try store.saveNonces(nonces, horizon: horizon)
        let digests = [FwknopVerifier.SeenDigest(clientID: "phone", digest: String(repeating: "ab", count: 32), timestamp: 1_764_072_031)]
        try store.saveFwknopDigests(digests, horizon: horizon)
        let (logger, handler) = recordingLogger()
        #expect(store.loadNonces(logger: logger) == ReplayStore.SavedMemory(horizon: horizon, entries: nonces))
        #expect(store.loadFwknopDigests(logger: logger) == ReplayStore.SavedMemory(horizon: horizon, entries: digests))
        // Files from before the horizon was saved: the bare array.
        try Data(#"[{"clientID":"laptop","nonce":[1,2],"timestamp":5}]"#.utf8).write(to: URL(fileURLWithPath: store.noncesPath))
        let old = store.loadNonces(logger: logger)
        #expect(old.horizon == nil)
        #expect(old.entries == [SPAv2Verifier.SeenNonce(clientID: "laptop", nonce: [1, 2], timestamp: 5)])
        #expect(handler.messages.withLock { $0.isEmpty })
        // A corrupt file: nothing, and a warning.
        try Data("{\"horizon\": 3".utf8).write(to: URL(fileURLWithPath: store.fwknopDigestsPath))
        #expect(store.loadFwknopDigests(logger: logger).entries.isEmpty)
        #expect(handler.messages.withLock { $0.contains { $0.hasPrefix("warning: fwknop replay memory unusable") } })
    }
}
