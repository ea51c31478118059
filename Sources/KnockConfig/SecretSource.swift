import Foundation
import KnockCore

/// Where the loader gets the bytes of secret files, so tests can supply secrets from memory.
public protocol SecretSource {
    /// The raw bytes of the secret file at `path` (already made absolute, or relative to the
    /// working directory); throws when the file must not or cannot be used.
    func contents(ofSecretFile path: String) throws(SecretSourceError) -> [UInt8]
}

/// Why a secret file cannot be used.
///
/// The message names the path, never the file's contents.
public struct SecretSourceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong, naming the path.
    public var message: String

    /// Makes an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// Reads secret files from disk, refusing files that others could read or change.
///
/// Like ssh with a private key: the file must be a regular file (symbolic links are followed),
/// owned by root or the current user, with no permission bits for group or others.
public struct FileSecretSource: SecretSource {
    /// Makes the source.
    public init() {}

    /// Checks the file's type, owner and mode, then reads it.
    public func contents(ofSecretFile path: String) throws(SecretSourceError) -> [UInt8] {
        let manager = FileManager.default
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard manager.fileExists(atPath: resolved) else {
            throw SecretSourceError("\(path) does not exist")
        }
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try manager.attributesOfItem(atPath: resolved)
        } catch {
            throw SecretSourceError("cannot read \(path): \(error.localizedDescription)")
        }
        if let type = attributes[.type] as? FileAttributeType, type != .typeRegular {
            throw SecretSourceError("\(path) is not a regular file")
        }
        if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, let problem = Self.modeProblem(mode) {
            throw SecretSourceError("\(path) \(problem)")
        }
        if let owner = (attributes[.ownerAccountID] as? NSNumber)?.uint32Value, owner != 0, owner != getuid() {
            throw SecretSourceError("\(path) is owned by uid \(owner), not by root or the current user (uid \(getuid()))")
        }
        guard manager.isReadableFile(atPath: resolved), let data = manager.contents(atPath: resolved) else {
            throw SecretSourceError("cannot read \(path): permission denied")
        }
        return Array(data)
    }

    /// Why a secret file with permission bits `mode` must be refused, or nil when it may be used.
    static func modeProblem(_ mode: Int) -> String? {
        guard mode & 0o077 != 0 else { return nil }
        let octal = String(mode & 0o7777, radix: 8)
        return "has mode \(String(repeating: "0", count: max(0, 4 - octal.count)) + octal), readable or writable by group or others;"
            + " run chmod 600 on it (like ssh refuses a private key with open permissions)"
    }
}

/// Secrets held in memory, keyed by path: for tests and for callers that fetch secrets elsewhere.
public struct InMemorySecretSource: SecretSource, Sendable {
    /// File contents by path, as the loader will ask for them.
    public var files: [String: [UInt8]]

    /// Makes a source from file contents by path.
    public init(_ files: [String: [UInt8]] = [:]) { self.files = files }

    /// Makes a source from text file contents by path.
    public init(texts: [String: String]) { self.files = texts.mapValues { Array($0.utf8) } }

    /// The stored contents, or an error as for a missing file.
    public func contents(ofSecretFile path: String) throws(SecretSourceError) -> [UInt8] {
        guard let bytes = files[path] else { throw SecretSourceError("\(path) does not exist") }
        return bytes
    }
}
