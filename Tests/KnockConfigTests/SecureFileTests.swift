import Foundation
import KnockConfig
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 11 item 10: secret and key files are read like ssh's StrictModes reads its files, in
/// directories the tests make under /tmp (itself mode 1777: the sticky exception).
@Suite struct SecureFileTests {
    static let isRoot = geteuid() == 0

    func refusal(_ path: String, publicKey: Bool = false) -> String? {
        do {
            _ = publicKey ? try FileSecretSource().contents(ofPublicKeyFile: path) : try FileSecretSource().contents(ofSecretFile: path)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func aGoodFileInPrivateDirectoriesIsRead() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try directory.write("good.secret", "secret-value\n")
        #expect(try FileSecretSource().contents(ofSecretFile: path) == Array("secret-value\n".utf8))
        // Through "." and "..": the directories as written and as resolved are both fine.
        let name = (directory.path as NSString).lastPathComponent
        #expect(try FileSecretSource().contents(ofSecretFile: directory.path + "/./../" + name + "/good.secret").count == 13)
    }

    @Test func aSymlinkAsTheFileIsRefusedEvenToAGoodFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let target = try directory.write("real.secret", "x")
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/link", withDestinationPath: target)
        #expect(refusal(directory.path + "/link")?.contains("is a symbolic link") == true)
        #expect(refusal(directory.path + "/link", publicKey: true)?.contains("is a symbolic link") == true)
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660, 0o620, 0o602])
    func aFileWithGroupOrOtherBitsIsRefused(mode: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try directory.write("open.secret", "x", mode: mode)
        #expect(
            refusal(path)
                == "\(path) has mode 0\(String(mode, radix: 8)), readable or writable by group or others; run chmod 600 on it (like ssh refuses a private key with open permissions)"
        )
    }

    @Test func aPublicKeyMayBeReadableButNotWritableByOthers() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let readable = try directory.write("laptop.pub", "key", mode: 0o644)
        #expect(refusal(readable, publicKey: true) == nil)
        #expect(refusal(readable) != nil, "as a secret it would be refused")
        let writable = try directory.write("phone.pub", "key", mode: 0o664)
        #expect(refusal(writable, publicKey: true) == "\(writable) has mode 0664, writable by group or others; run chmod go-w on it")
    }

    @Test(arguments: [(0o775, "its group"), (0o757, "others"), (0o770, "its group")])
    func aWritableParentDirectoryIsRefused(mode: Int, who: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let inner = directory.path + "/keys"
        try FileManager.default.createDirectory(atPath: inner, withIntermediateDirectories: false)
        let path = inner + "/open.secret"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8), attributes: [.posixPermissions: 0o600]))
        #expect(chmod(inner, mode_t(mode)) == 0)
        #expect(
            refusal(path)
                == "\(path) is in \(inner), which has mode 0\(String(mode, radix: 8)), writable by \(who): someone else could replace the file;"
                + " run chmod go-w on it, or move the file")
        // The same directory two levels up is just as bad.
        #expect(chmod(inner, 0o700) == 0)
        #expect(chmod(directory.path, mode_t(mode)) == 0)
        #expect(refusal(path)?.contains("is in \(directory.path), which has mode") == true)
    }

    @Test func aStickyWorldWritableDirectoryIsAcceptedWhenWhatIsBelowIsOurs() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let shared = directory.path + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        #expect(chmod(shared, 0o1777) == 0)
        let path = shared + "/open.secret"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8), attributes: [.posixPermissions: 0o600]))
        #expect(refusal(path) == nil)
        // Without the sticky bit anyone could rename the file away and put their own in its place.
        #expect(chmod(shared, 0o777) == 0)
        #expect(refusal(path)?.contains("which has mode 0777, writable by others") == true)
    }

    @Test func aSymlinkedDirectoryIsCheckedWhereItLeads() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let real = directory.path + "/real"
        try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: false)
        let path = real + "/open.secret"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8), attributes: [.posixPermissions: 0o600]))
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/via", withDestinationPath: real)
        let linked = directory.path + "/via/open.secret"
        if Self.isRoot {
            // Our own link is root's: followed, and the directory it leads to is checked too.
            #expect(refusal(linked) == nil)
            #expect(chmod(real, 0o777) == 0)
            #expect(refusal(linked)?.contains("is in \(real), which has mode 0777") == true)
        } else {
            #expect(refusal(linked)?.contains("a symbolic link owned by uid \(geteuid())") == true)
        }
    }

    @Test(.enabled(if: isRoot, "needs root to give a link, a directory or a file another owner"))
    func ownersOtherThanRootAndUsAreRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        // A file chown'ed to another uid.
        let file = try directory.write("theirs.secret", "x")
        #expect(chown(file, 4242, 4242) == 0)
        #expect(refusal(file) == "\(file) is owned by uid 4242, not by root or the current user (uid 0); run chown on it")
        // A directory owned by another uid, even with a private mode.
        let inner = directory.path + "/theirs"
        try FileManager.default.createDirectory(atPath: inner, withIntermediateDirectories: false)
        let path = inner + "/open.secret"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8), attributes: [.posixPermissions: 0o600]))
        #expect(chmod(inner, 0o700) == 0)
        #expect(chown(inner, 4242, 4242) == 0)
        #expect(refusal(path)?.hasPrefix("\(path) is in \(inner), owned by uid 4242: every directory above a secret or key file") == true)
        // A link among the directories not owned by root: refused, though it leads somewhere good.
        let good = directory.path + "/good"
        try FileManager.default.createDirectory(atPath: good, withIntermediateDirectories: false)
        _ = try directory.write("good/open.secret", "x")
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/link", withDestinationPath: good)
        #expect(lchown(directory.path + "/link", 4242, 4242) == 0)
        #expect(
            refusal(directory.path + "/link/open.secret")
                == "\(directory.path)/link/open.secret goes through \(directory.path)/link, a symbolic link owned by uid 4242:"
                + " only links owned by root are followed; name the real directory in the configuration")
    }

    @Test func missingAndOddPaths() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        #expect(refusal(directory.path + "/none") == "\(directory.path)/none does not exist")
        #expect(refusal(directory.path + "/no/such") == "\(directory.path)/no/such does not exist (no directory \(directory.path)/no)")
        #expect(refusal("") == "\"\" is not a path")
        #expect(refusal(directory.path + "/")?.contains("does not name a file") == true)
        let fifo = directory.path + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(refusal(fifo) == "\(fifo) is not a regular file", "a FIFO is refused without blocking")
        let big = try directory.write("big.secret", String(repeating: "x", count: 70_000))
        #expect(refusal(big)?.contains("is larger than 65536 bytes") == true)
    }

    /// The loader reads key files through the same checks: a public key file may be world-readable,
    /// but not where others could replace it.
    @Test func theLoaderChecksKeyFilesToo() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        try FileManager.default.createDirectory(atPath: directory.path + "/keys", withIntermediateDirectories: false)
        try directory.write("keys/laptop.pub", "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=\n", mode: 0o644)
        try directory.write("keys/phone.key", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n")
        let config = try directory.write(
            "pknock.toml",
            """
            [[rule]]
            name = "V2"
            spa = "v2"
            knock = ["4500:udp"]
            protect = [22]
            [[client]]
            id = "laptop"
            rules = ["V2"]
            ed25519_public_key_file = "keys/laptop.pub"
            [[client]]
            id = "phone"
            rules = ["V2"]
            hmac_key_file = "keys/phone.key"

            """, mode: 0o644)
        #expect(try ConfigLoader.load(path: config).clients.map(\.id) == ["laptop", "phone"])
        #expect(chmod(directory.path + "/keys", 0o777) == 0)
        do {
            _ = try ConfigLoader.load(path: config)
            Issue.record("key files in a world-writable directory were accepted")
        } catch {
            let text = error.description
            #expect(
                text.contains(
                    "\(config):9: ed25519_public_key_file: client laptop: \(directory.path)/keys/laptop.pub is in \(directory.path)/keys, which has mode 0777"))
            #expect(text.contains("\(config):13: hmac_key_file: client phone: \(directory.path)/keys/phone.key is in \(directory.path)/keys"))
        }
    }
}
