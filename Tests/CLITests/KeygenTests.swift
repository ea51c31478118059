import Crypto
import Foundation
import Testing

/// `pknock keygen`, run as a subprocess: files, modes, and keys that work.
@Suite struct KeygenTests {
    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "pknock-keygen-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    func base64File(_ path: String) throws -> Data {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return try #require(Data(base64Encoded: text))
    }

    @Test func ed25519PairWithPrivateFileOnlyForTheOwner() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try CheckCommandTests.run(["keygen", "--type", "ed25519", "--out", directory + "/laptop"])
        #expect(result.status == 0)
        #expect(try mode(directory + "/laptop") == 0o600)
        let privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: try base64File(directory + "/laptop"))
        #expect(try base64File(directory + "/laptop.pub") == privateKey.publicKey.rawRepresentation)
        #expect(result.stdout.contains(privateKey.publicKey.rawRepresentation.base64EncodedString()))
    }

    @Test func hmacKeyIs32RandomBytes() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try CheckCommandTests.run(["keygen", "--type", "hmac", "--out", directory + "/a"]).status == 0)
        #expect(try CheckCommandTests.run(["keygen", "--type", "hmac", "--out", directory + "/b"]).status == 0)
        let first = try base64File(directory + "/a")
        #expect(first.count == 32)
        #expect(first != (try base64File(directory + "/b")))
        #expect(try mode(directory + "/a") == 0o600)
    }

    @Test func neverReplacesAKeyWithoutForce() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/key"
        #expect(try CheckCommandTests.run(["keygen", "--type", "hmac", "--out", path]).status == 0)
        let original = try base64File(path)
        let again = try CheckCommandTests.run(["keygen", "--type", "hmac", "--out", path])
        #expect(again.status == 1)
        #expect(again.stderr.contains("exists"))
        #expect(try base64File(path) == original)
        #expect(try CheckCommandTests.run(["keygen", "--type", "hmac", "--out", path, "--force"]).status == 0)
        #expect(try base64File(path) != original)
    }

    @Test func forceNeverWritesThroughASymbolicLink() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let victim = directory + "/victim"
        try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: victim))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: victim)
        try FileManager.default.createSymbolicLink(atPath: directory + "/key", withDestinationPath: victim)
        let run = try CheckCommandTests.run(["keygen", "--type", "hmac", "--out", directory + "/key", "--force"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("cannot write \(directory)/key"))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep me\n")
        #expect(try mode(victim) == 0o644)
    }

    @Test func forceMakesAnExistingOpenFileOwnerOnly() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/key"
        try Data("old\n".utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(try CheckCommandTests.run(["keygen", "--type", "hmac", "--out", path, "--force"]).status == 0)
        #expect(try mode(path) == 0o600)
        #expect(try base64File(path).count == 32)
    }

    @Test func warnsWhenTheKeyLandsWhereItWillBeRefused() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let good = try CheckCommandTests.run(["keygen", "--type", "hmac", "--out", directory + "/good"])
        #expect(good.status == 0)
        #expect(!good.stderr.contains("warning"))
        // A group-writable directory: anyone in the group could replace the key.
        #expect(chmod(directory, 0o770) == 0)
        let result = try CheckCommandTests.run(["keygen", "--type", "ed25519", "--out", directory + "/laptop"])
        #expect(result.status == 0)
        #expect(result.stderr.contains("warning: this key file will be refused where it is: \(directory)/laptop is in \(directory), which has mode 0770"))
        #expect(result.stderr.contains("\(directory)/laptop.pub is in \(directory)"))
    }
}
