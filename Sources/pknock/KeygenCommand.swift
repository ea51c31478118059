import ArgumentParser
import Crypto
import Foundation
import KnockConfig
import KnockPOSIX

/// `pknock keygen`: makes a key for SPA v2, written with safe permissions.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make an SPA v2 client key: an HMAC key or an Ed25519 key pair.",
        discussion: """
            hmac: FILE gets 32 random bytes, base64; the server needs the same file. ed25519: FILE gets the \
            private key (base64 of its 32-byte seed) and FILE.pub the public key, which is all the server \
            needs. Private files are created mode 0600; an existing file is never replaced without --force.
            """
    )

    /// The kinds of key.
    enum KeyType: String, ExpressibleByArgument, CaseIterable {
        case hmac
        case ed25519
    }

    @Option(name: .long, help: "hmac or ed25519.")
    var type: KeyType = .ed25519

    @Option(name: [.short, .long], help: ArgumentHelp("Where to write the (private) key.", valueName: "file"))
    var out: String

    @Flag(name: .long, help: "Replace existing files.")
    var force = false

    func run() throws {
        let outputs = type == .ed25519 ? [out, out + ".pub"] : [out]
        for path in outputs where FileManager.default.fileExists(atPath: path) && !force {
            FileHandle.standardError.write(Data("pknock: \(path) exists; use --force to replace it\n".utf8))
            throw ExitCode(1)
        }
        switch type {
        case .hmac:
            let key = SymmetricKey(size: .bits256)
            let text = key.withUnsafeBytes { Data($0).base64EncodedString() }
            try write(text, to: out, mode: 0o600)
            print("wrote HMAC key \(out) (mode 0600); copy it to the server's client entry")
            warnIfRefused(out, publicKey: false)
        case .ed25519:
            let key = Curve25519.Signing.PrivateKey()
            try write(key.rawRepresentation.base64EncodedString(), to: out, mode: 0o600)
            let publicText = key.publicKey.rawRepresentation.base64EncodedString()
            try write(publicText, to: out + ".pub", mode: 0o644)
            print("wrote private key \(out) (mode 0600) and public key \(out).pub")
            print("public key: \(publicText)")
            warnIfRefused(out, publicKey: false)
            warnIfRefused(out + ".pub", publicKey: true)
        }
    }

    /// Warns when pknock and pknockd would refuse to read the key where it was written (a directory
    /// others can write to, say), so the user learns it now rather than at the first knock.
    private func warnIfRefused(_ path: String, publicKey: Bool) {
        do {
            _ = publicKey ? try FileSecretSource().contents(ofPublicKeyFile: path) : try FileSecretSource().contents(ofSecretFile: path)
        } catch {
            FileHandle.standardError.write(Data("pknock: warning: this key file will be refused where it is: \(error)\n".utf8))
        }
    }

    private func write(_ text: String, to path: String, mode: mode_t) throws {
        do {
            // Created with the final mode from the start, so the key is never readable by others.
            try KeyFile.write(Array((text + "\n").utf8), to: path, mode: mode)
        } catch {
            FileHandle.standardError.write(Data("pknock: cannot write \(path): \(error.reason)\n".utf8))
            throw ExitCode(1)
        }
    }
}
