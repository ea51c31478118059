import Foundation
import KnockCore
import KnockPOSIX

/// Where the loader gets the bytes of secret files, so tests can supply secrets from memory.
public protocol SecretSource {
    /// The raw bytes of the secret file at `path` (already made absolute, or relative to the
    /// working directory); throws when the file must not or cannot be used.
    func contents(ofSecretFile path: String) throws(SecretSourceError) -> [UInt8]

    /// The raw bytes of a public key file (no secret, but nobody else may be able to change it).
    func contents(ofPublicKeyFile path: String) throws(SecretSourceError) -> [UInt8]
}

extension SecretSource {
    /// Reads the public key file from disk with the checks of ``FileSecretSource``, others may read it.
    public func contents(ofPublicKeyFile path: String) throws(SecretSourceError) -> [UInt8] {
        try FileSecretSource().contents(ofPublicKeyFile: path)
    }
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

/// Reads secret files from disk, refusing files that others could read or change, or that sit
/// where others could replace them.
///
/// ``KnockPOSIX/SecureFile`` does the work, as OpenSSH's StrictModes: the file is opened without
/// following a symbolic link as its last component, and the open descriptor must be a regular file
/// owned by root or the effective user with no permission bits for group or others; every directory
/// above it must be owned by root or the effective user and not writable by group or others (a
/// sticky directory such as `/tmp` excepted); a symbolic link among the directories is followed only
/// when root owns it.
public struct FileSecretSource: SecretSource {
    /// Makes the source.
    public init() {}

    /// Checks the file and its directories, then reads it.
    public func contents(ofSecretFile path: String) throws(SecretSourceError) -> [UInt8] {
        do {
            return try SecureFile.read(path, access: .secret)
        } catch {
            throw SecretSourceError(error.description)
        }
    }

    /// Checks a public key file as a secret one, except that others may read it.
    public func contents(ofPublicKeyFile path: String) throws(SecretSourceError) -> [UInt8] {
        do {
            return try SecureFile.read(path, access: .publicKey)
        } catch {
            throw SecretSourceError(error.description)
        }
    }

    /// Why a secret file with permission bits `mode` must be refused, or nil when it may be used.
    static func modeProblem(_ mode: Int) -> String? {
        SecureFile.modeProblem(UInt32(truncatingIfNeeded: mode), access: .secret)
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
