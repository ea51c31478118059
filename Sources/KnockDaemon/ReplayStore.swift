import Foundation
import KnockCore
import Logging

/// Keeps the SPA replay memory (per rule: peer → last opened and last closed epoch minute) in the
/// state directory, so a captured SPA packet cannot open or close again after pknockd restarts.
///
/// The file is text, one entry a line after a version line:
///
///     pknock-spa-replay 2
///     FTP 192.0.2.2 29433140 open
///     FTP 192.0.2.2 29433141 close
///
/// Version 1 files (written before closes were remembered: `RULE ADDRESS MINUTE`, every entry an
/// open) still load.
///
/// ``save(_:)`` replaces it atomically (a temporary file in the same directory, mode 0600, flushed to
/// disk, then renamed over the old one), so a crash leaves either the old or the new file. ``load(logger:)``
/// tolerates a missing file (first start) and a corrupt one: it logs a warning and starts empty. The
/// consequence of starting empty is that a packet captured in the last `clock_skew` + 1 minutes before
/// the restart may open once more for its sender's address (only that address, only until the minute
/// passes). Entries outside the clock window are dropped by the engine
/// (``KnockEngine/restoreSPAReplayState(_:at:)``), never by this type.
public struct ReplayStore: Sendable {
    /// The first line of the file ``render(_:)`` writes.
    public static let header = "pknock-spa-replay 2"
    /// The first line of files from before closes were remembered, which ``parse(_:)`` still reads.
    public static let headerVersion1 = "pknock-spa-replay 1"
    /// The file's name inside the state directory.
    public static let defaultFileName = "spa-replay"
    /// The most bytes ``load(logger:)`` reads; a larger file is treated as corrupt.
    public static let maximumFileBytes = 64 << 20

    /// The state directory (``KnockConfig/DaemonSettings/stateDirectory``).
    public let directory: String
    /// The file's full path.
    public let path: String

    /// Makes a store for `fileName` in `directory`; nothing is touched until ``load(logger:)`` or ``save(_:)``.
    public init(directory: String, fileName: String = ReplayStore.defaultFileName) {
        self.directory = directory
        self.path = directory.hasSuffix("/") ? directory + fileName : directory + "/" + fileName
    }

    /// Why a saved file cannot be used.
    public struct FormatError: Error, Equatable, Sendable, CustomStringConvertible {
        /// The 1-based line that is wrong (nil: the file as a whole).
        public var line: Int?
        /// What is wrong.
        public var message: String

        /// Makes an error.
        public init(line: Int?, _ message: String) {
            self.line = line
            self.message = message
        }

        /// "line N: message", or the message.
        public var description: String { line.map { "line \($0): \(message)" } ?? message }
    }

    /// The file text for `entries`.
    public static func render(_ entries: [SPAReplayEntry]) -> String {
        var text = header + "\n"
        for entry in entries {
            text += "\(entry.rule.rawValue) \(entry.peer) \(entry.epochMinute) \(entry.kind.rawValue)\n"
        }
        return text
    }

    /// The entries in file text; throws on anything but ``render(_:)``'s output (pure, for tests and fuzzing).
    public static func parse(_ text: String) throws(FormatError) -> [SPAReplayEntry] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard let first = lines.first, first == header || first == headerVersion1 else {
            throw FormatError(line: 1, "not a PortKnockO SPA replay file (expected \"\(header)\")")
        }
        let fieldCount = first == header ? 4 : 3
        var entries: [SPAReplayEntry] = []
        entries.reserveCapacity(lines.count - 1)
        for (offset, line) in lines.enumerated().dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == fieldCount else {
                let expected = fieldCount == 4 ? "RULE ADDRESS MINUTE open|close" : "RULE ADDRESS MINUTE"
                throw FormatError(line: offset + 1, "expected \"\(expected)\"")
            }
            var kind = SPAReplayEntry.Kind.open
            if fieldCount == 4 {
                guard let named = SPAReplayEntry.Kind(rawValue: String(fields[3])) else {
                    throw FormatError(line: offset + 1, "expected open or close")
                }
                kind = named
            }
            guard let rule = RuleName(rawValue: String(fields[0])) else {
                throw FormatError(line: offset + 1, "invalid rule name")
            }
            guard let peer = PeerAddress(String(fields[1])) else {
                throw FormatError(line: offset + 1, "invalid address")
            }
            guard let minute = Int64(fields[2]), minute >= 0 else {
                throw FormatError(line: offset + 1, "invalid epoch minute")
            }
            entries.append(SPAReplayEntry(rule: rule, peer: peer, epochMinute: minute, kind: kind))
        }
        return entries
    }

    /// The saved entries; empty, with a warning logged, when the file is unreadable or corrupt, and
    /// empty without a warning when it does not exist.
    public func load(logger: Logger) -> [SPAReplayEntry] {
        let manager = FileManager.default
        guard manager.fileExists(atPath: path) else { return [] }
        let warning: String
        do {
            let attributes = try manager.attributesOfItem(atPath: path)
            if let size = (attributes[.size] as? NSNumber)?.intValue, size > Self.maximumFileBytes {
                warning = "the file is larger than \(Self.maximumFileBytes) bytes"
            } else if let data = manager.contents(atPath: path) {
                guard let text = String(data: data, encoding: .utf8) else {
                    throw FormatError(line: nil, "not UTF-8 text")
                }
                return try Self.parse(text)
            } else {
                warning = "cannot read the file"
            }
        } catch {
            warning = "\(error)"
        }
        logger.warning(
            "SPA replay state unusable; starting with none: a packet captured in the last minutes may open once more",
            metadata: ["state.file": "\(path)", "error": "\(warning)"])
        return []
    }

    /// Replaces the file with `entries`, atomically, mode 0600; creates the directory (mode 0700)
    /// when it is missing.
    public func save(_ entries: [SPAReplayEntry]) throws {
        try Self.writeAtomically(Data(Self.render(entries).utf8), to: path, directory: directory)
    }

    /// A windowed replay memory as saved: its entries and its ``KnockCore/ReplayHorizon``.
    ///
    /// The file is JSON, `{"horizon": {...}, "entries": [...]}`; files written before the horizon was
    /// saved hold only the entries' array and still load (without a horizon).
    public struct SavedMemory<Entry: Codable & Equatable & Sendable>: Codable, Equatable, Sendable {
        /// What the memory may have forgotten (nil: a file from before it was saved).
        public var horizon: ReplayHorizon?
        /// The remembered entries.
        public var entries: [Entry]

        /// Makes a saved memory.
        public init(horizon: ReplayHorizon?, entries: [Entry]) {
            self.horizon = horizon
            self.entries = entries
        }

        /// Reads either layout.
        static func decode(_ data: Data) throws -> SavedMemory {
            let decoder = JSONDecoder()
            if let bare = try? decoder.decode([Entry].self, from: data) { return SavedMemory(horizon: nil, entries: bare) }
            return try decoder.decode(SavedMemory.self, from: data)
        }
    }

    /// Where the SPA v2 nonces are kept, beside the v1 replay file.
    public var noncesPath: String { path + "-v2.json" }

    /// Replaces the SPA v2 nonce file with `nonces` and their horizon (JSON), atomically, mode 0600.
    public func saveNonces(_ nonces: [SPAv2Verifier.SeenNonce], horizon: ReplayHorizon) throws {
        try Self.save(SavedMemory(horizon: horizon, entries: nonces), to: noncesPath, directory: directory)
    }

    /// The saved SPA v2 nonces; empty when there are none, and empty with a warning when the file is
    /// unreadable (a packet captured within the clock window could then open once more).
    public func loadNonces(logger: Logger) -> SavedMemory<SPAv2Verifier.SeenNonce> {
        load(
            from: noncesPath, logger: logger,
            warning: "SPA v2 nonce memory unusable; starting with none: a packet made within the clock window may open once more")
    }

    /// Where the digests of accepted fwknop packets are kept, beside the v1 replay file.
    public var fwknopDigestsPath: String { path + "-fwknop.json" }

    /// Replaces the fwknop digest file with `digests` and their horizon (JSON), atomically, mode 0600.
    public func saveFwknopDigests(_ digests: [FwknopVerifier.SeenDigest], horizon: ReplayHorizon) throws {
        try Self.save(SavedMemory(horizon: horizon, entries: digests), to: fwknopDigestsPath, directory: directory)
    }

    /// The saved fwknop digests; empty, with a warning logged, when the file is unusable.
    public func loadFwknopDigests(logger: Logger) -> SavedMemory<FwknopVerifier.SeenDigest> {
        load(
            from: fwknopDigestsPath, logger: logger,
            warning: "fwknop replay memory unusable; starting with none: a packet made within the clock window may open once more")
    }

    private static func save<Entry>(_ memory: SavedMemory<Entry>, to path: String, directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try writeAtomically(try encoder.encode(memory), to: path, directory: directory)
    }

    private func load<Entry>(from file: String, logger: Logger, warning: Logger.Message) -> SavedMemory<Entry> {
        let empty = SavedMemory<Entry>(horizon: nil, entries: [])
        guard FileManager.default.fileExists(atPath: file) else { return empty }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            guard data.count <= Self.maximumFileBytes else { throw FormatError(line: nil, "the file is too large") }
            return try SavedMemory.decode(data)
        } catch {
            logger.warning(warning, metadata: ["state.file": "\(file)", "error": "\(error)"])
            return empty
        }
    }

    /// Writes `data` to `path` through a temporary file and a rename, mode 0600 from the start;
    /// creates `directory` (mode 0700) when it is missing.
    private static func writeAtomically(_ data: Data, to path: String, directory: String) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = "\(path).tmp-\(getpid())"
        _ = unlink(temporary)
        guard manager.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
        }
        do {
            // Mode first, then contents: the file never holds data with a wider mode.
            guard chmod(temporary, 0o600) == 0 else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary])
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
            guard rename(temporary, path) == 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }
}
