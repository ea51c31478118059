#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads files that hold secrets or keys the way OpenSSH's StrictModes reads `authorized_keys`:
/// only when nobody but root and the user running us could have written (or, for secrets, read) them.
///
/// The checks, each with an error that names the path, the problem and the fix:
/// - The path is made absolute (relative to the working directory), and every directory on it, from
///   `/` down, is checked twice: as written (`lstat`, so a symbolic link is seen as one) and as
///   resolved (`realpath`), so a link cannot lead the read through a directory that was not checked.
/// - A directory must be owned by root or the effective uid and not writable by group or others.
///   Exception: a sticky directory writable by others, such as `/tmp` (mode 1777), is accepted,
///   because there only an entry's owner may remove or rename it; the entry below it must then be
///   owned by root or the effective uid, which the checks of the next directory, link or file demand anyway.
/// - A symbolic link among the directories is followed only when root owns it (as `/lib` → `usr/lib`);
///   any other link there is refused.
/// - The file itself is opened with `O_NOFOLLOW | O_CLOEXEC` (a link as the last component is
///   refused) and `O_NONBLOCK` (a FIFO cannot stall us), and the open descriptor is checked with
///   `fstat`: a regular file, owned by root or the effective uid, with no permission bits for group
///   or others (for a public key: none that let them write).
///
/// Not Linux-only: the same calls exist on macOS.
public enum SecureFile {
    /// What may be in a file besides its owner's access.
    public enum Access: Sendable, Equatable {
        /// A secret (an HMAC key, an SPA secret, a private key): no group or other bits at all.
        case secret
        /// A public key: others may read it, but nobody but its owner may change it.
        case publicKey
    }

    /// The largest file ``read(_:access:maximumBytes:)`` reads by default; keys and secrets are tiny.
    public static let defaultMaximumBytes = 64 << 10

    /// The contents of the file at `path`, after the checks described on ``SecureFile``.
    ///
    /// The corresponding C functions are `lstat`, `realpath`, `open`, `fstat` and `read`.
    public static func read(
        _ path: String, access: Access = .secret, maximumBytes: Int = defaultMaximumBytes
    ) throws(SecureFileError) -> [UInt8] {
        let euid = geteuid()
        guard !path.isEmpty else { throw SecureFileError(path: "\"\"", "is not a path") }
        let absolute = try absolutePath(path)
        let (parent, name) = split(absolute)
        guard !name.isEmpty, name != ".", name != ".." else {
            throw SecureFileError(path: path, "does not name a file")
        }
        // As written: every directory, links seen as links.
        try checkDirectories(of: absolute, euid: euid, original: path)
        // As resolved: the directories the open will really go through.
        let resolvedParent = try realPath(parent, original: path)
        try checkDirectories(of: resolvedParent == "/" ? "/" + name : resolvedParent + "/" + name, euid: euid, original: path)
        let target = resolvedParent == "/" ? "/" + name : resolvedParent + "/" + name
        return try readChecked(target, original: path, access: access, euid: euid, maximumBytes: maximumBytes)
    }

    /// Why a file with permission bits `mode` must be refused for `access`, or nil when it may be used.
    public static func modeProblem(_ mode: UInt32, access: Access = .secret) -> String? {
        let forbidden: UInt32 = access == .secret ? 0o077 : 0o022
        guard mode & forbidden != 0 else { return nil }
        let shown = octal(mode & 0o7777)
        switch access {
        case .secret:
            return "has mode \(shown), readable or writable by group or others; run chmod 600 on it"
                + " (like ssh refuses a private key with open permissions)"
        case .publicKey:
            return "has mode \(shown), writable by group or others; run chmod go-w on it"
        }
    }

    // MARK: - Steps

    private static func absolutePath(_ path: String) throws(SecureFileError) -> String {
        if path.hasPrefix("/") { return path }
        guard let directory = unsafe getcwd(nil, 0) else {
            throw SecureFileError(path: path, "cannot be made absolute: getcwd failed", errno: lastErrno())
        }
        defer { unsafe free(directory) }
        let base = unsafe String(cString: directory)
        return base.hasSuffix("/") ? base + path : base + "/" + path
    }

    /// The directory part and the last component of an absolute path (trailing slashes kept in the name).
    private static func split(_ absolute: String) -> (parent: String, name: String) {
        guard let slash = absolute.lastIndex(of: "/") else { return ("/", absolute) }
        let parent = String(absolute[..<slash])
        return (parent.isEmpty ? "/" : parent, String(absolute[absolute.index(after: slash)...]))
    }

    private static func realPath(_ directory: String, original: String) throws(SecureFileError) -> String {
        guard let resolved = unsafe realpath(directory, nil) else {
            let code = lastErrno()
            if code == ENOENT { throw SecureFileError(path: original, "does not exist (no directory \(directory))") }
            throw SecureFileError(path: original, "cannot resolve \(directory)", errno: code)
        }
        defer { unsafe free(resolved) }
        return unsafe String(cString: resolved)
    }

    /// Checks `/` and every directory above the last component of `absolute`, with `lstat`.
    private static func checkDirectories(of absolute: String, euid: uid_t, original: String) throws(SecureFileError) {
        let components = absolute.split(separator: "/", omittingEmptySubsequences: true).dropLast()
        var prefixes = ["/"]
        var current = ""
        for component in components {
            current += "/" + component
            prefixes.append(current)
        }
        for directory in prefixes {
            var info = stat()
            guard unsafe lstat(directory, &info) == 0 else {
                let code = lastErrno()
                if code == ENOENT { throw SecureFileError(path: original, "does not exist (no directory \(directory))") }
                throw SecureFileError(path: original, "cannot check the directory \(directory)", errno: code)
            }
            let mode = UInt32(info.st_mode)
            let owner = info.st_uid
            if mode & UInt32(S_IFMT) == UInt32(S_IFLNK) {
                guard owner == 0 else {
                    throw SecureFileError(
                        path: original,
                        "goes through \(directory), a symbolic link owned by uid \(owner): only links owned by root are followed;"
                            + " name the real directory in the configuration")
                }
                continue
            }
            guard mode & UInt32(S_IFMT) == UInt32(S_IFDIR) else {
                throw SecureFileError(path: original, "goes through \(directory), which is not a directory")
            }
            guard owner == 0 || owner == euid else {
                throw SecureFileError(
                    path: original,
                    "is in \(directory), owned by uid \(owner): every directory above a secret or key file must be owned by root"
                        + " or uid \(euid) (as ssh's StrictModes demands); run chown root on it, or move the file")
            }
            let sticky = mode & UInt32(S_ISVTX) != 0
            if mode & 0o022 != 0 && !sticky {
                let who = mode & 0o002 != 0 ? "others" : "its group"
                throw SecureFileError(
                    path: original,
                    "is in \(directory), which has mode \(octal(mode & 0o7777)), writable by \(who): someone else could replace the file;"
                        + " run chmod go-w on it, or move the file")
            }
        }
    }

    private static func readChecked(
        _ target: String, original: String, access: Access, euid: uid_t, maximumBytes: Int
    ) throws(SecureFileError) -> [UInt8] {
        let descriptor: Int32
        do {
            descriptor = try retryingOnInterrupt("open", subject: target) {
                unsafe open(target, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
            }
        } catch {
            switch error.errno {
            case ENOENT: throw SecureFileError(path: original, "does not exist")
            case ELOOP:
                throw SecureFileError(
                    path: original,
                    "is a symbolic link: secret and key files are opened without following links;"
                        + " name the file itself in the configuration")
            case EACCES: throw SecureFileError(path: original, "cannot be read: permission denied")
            default: throw SecureFileError(path: original, "cannot be opened", errno: error.errno)
            }
        }
        defer { _ = close(descriptor) }
        var info = stat()
        guard unsafe fstat(descriptor, &info) == 0 else {
            throw SecureFileError(path: original, "cannot be checked (fstat)", errno: lastErrno())
        }
        let mode = UInt32(info.st_mode)
        guard mode & UInt32(S_IFMT) == UInt32(S_IFREG) else {
            throw SecureFileError(path: original, "is not a regular file")
        }
        guard info.st_uid == 0 || info.st_uid == euid else {
            throw SecureFileError(
                path: original,
                "is owned by uid \(info.st_uid), not by root or the current user (uid \(euid)); run chown on it")
        }
        if let problem = modeProblem(mode, access: access) {
            throw SecureFileError(path: original, problem)
        }
        guard Int(info.st_size) <= maximumBytes else {
            throw SecureFileError(path: original, "is larger than \(maximumBytes) bytes; a key or secret file is a few bytes")
        }
        return try readAll(descriptor, original: original, maximumBytes: maximumBytes)
    }

    private static func readAll(_ descriptor: Int32, original: String, maximumBytes: Int) throws(SecureFileError) -> [UInt8] {
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = unsafe chunk.withUnsafeMutableBytes { buffer in
                unsafe Glibc_read(descriptor, buffer.baseAddress, buffer.count)
            }
            if count < 0 {
                let code = lastErrno()
                if code == EINTR { continue }
                throw SecureFileError(path: original, "cannot be read", errno: code)
            }
            if count == 0 { return contents }
            contents += chunk[..<count]
            guard contents.count <= maximumBytes else {
                throw SecureFileError(path: original, "is larger than \(maximumBytes) bytes; a key or secret file is a few bytes")
            }
        }
    }

    private static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// The C `read`, named so it is not mistaken for ``SecureFile/read(_:access:maximumBytes:)``.
@inline(__always)
private func Glibc_read(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
        unsafe Glibc.read(descriptor, buffer, count)
    #else
        unsafe Darwin.read(descriptor, buffer, count)
    #endif
}

/// Why a secret or key file was refused: the path as configured, what is wrong, and how to fix it.
public struct SecureFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path as the caller gave it.
    public var path: String
    /// What is wrong, with the fix (no file contents ever).
    public var problem: String
    /// The errno of a failed call, when there was one.
    public var errno: Int32?

    /// Makes an error.
    public init(path: String, _ problem: String, errno: Int32? = nil) {
        self.path = path
        self.problem = problem
        self.errno = errno
    }

    /// `/etc/pknock/key has mode 0644, …` (with the system's text for an errno).
    public var description: String {
        var text = path + " " + problem
        if let errno { text += " (" + (unsafe String(cString: strerror(errno))) + ")" }
        return text
    }
}
