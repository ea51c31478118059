import Foundation
import KnockConfig
import KnockCore

/// A knock port as written, before a default protocol is applied: `2002`, `2002:tcp`, `7000:udp`.
struct KnockPortSpec: Equatable {
    /// The port.
    var port: KnockCore.Port
    /// The protocol given with it, or nil for the default (`--udp` / `udp = true`, else TCP).
    var transport: TransportProtocol?

    /// Parses `PORT`, `PORT:tcp` or `PORT:udp` (the knock-port syntax of pknock.toml); a message otherwise.
    static func parse(_ text: String) -> Result<KnockPortSpec, ClientUsageError> {
        Syntax.knockPort(text).map { KnockPortSpec(port: $0.port, transport: $0.transport) }.mapError { ClientUsageError($0.message) }
    }

    /// The port with `defaultTransport` where none was written.
    func resolved(defaultTransport: TransportProtocol) -> ServicePort {
        ServicePort(port, transport ?? defaultTransport)
    }
}

/// `--wait PORT[:SECONDS]`: the TCP port to probe after knocking, and for how long.
struct WaitSpec: Equatable {
    /// The default number of seconds to wait.
    static let defaultSeconds = 5
    /// The longest wait accepted.
    static let maximumSeconds = 3600

    /// The protected TCP port to probe.
    var port: KnockCore.Port
    /// How long to keep trying, in seconds.
    var seconds: Int

    /// Parses `PORT` or `PORT:SECONDS` (1 to 3600 seconds).
    static func parse(_ text: String) -> Result<WaitSpec, ClientUsageError> {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else {
            return .failure(ClientUsageError("wait: '\(text)' is not PORT or PORT:SECONDS"))
        }
        let port: KnockCore.Port
        switch Syntax.port(parts[0]) {
        case .success(let parsed): port = parsed
        case .failure(let problem): return .failure(ClientUsageError("wait: \(problem.message)"))
        }
        guard parts.count == 2 else { return .success(WaitSpec(port: port, seconds: defaultSeconds)) }
        guard let seconds = Int(parts[1]), (1...maximumSeconds).contains(seconds) else {
            return .failure(ClientUsageError("wait: '\(parts[1])' is not a number of seconds from 1 to \(maximumSeconds)"))
        }
        return .success(WaitSpec(port: port, seconds: seconds))
    }
}

/// Which address family to knock over.
enum AddressFamilyChoice: String, Equatable, CaseIterable {
    /// Whatever the name resolves to first.
    case any
    /// IPv4 only (`-4`, `family = "ipv4"`).
    case ipv4
    /// IPv6 only (`-6`, `family = "ipv6"`).
    case ipv6
}

/// A usage problem: a bad port, option or combination.
///
/// Becomes exit status 64.
struct ClientUsageError: Error, Equatable, CustomStringConvertible {
    /// What is wrong.
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// A problem in the profile file, naming file and line.
///
/// Becomes exit status 1.
struct ClientProfileError: Error, Equatable, CustomStringConvertible {
    /// The profile file.
    var file: String
    /// The 1-based line, or nil for the whole file.
    var line: Int?
    /// What is wrong.
    var message: String

    init(file: String, line: Int?, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `file:12: message`.
    var description: String { line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)" }
}

/// One `[profile.NAME]` of `client.toml`: a server and how to knock on it.
///
/// Every field but `host` and `knock` is optional; the command line overrides what a profile sets.
struct ClientProfile: Equatable {
    /// The keys a profile may have.
    static let keys = [
        "host", "knock", "udp", "delay", "family", "spa", "format", "open_secret_file", "close_secret_file",
        "source_ip", "wait", "client_id", "key_file", "key_type", "rule", "address", "access", "user",
    ]

    /// The profile's name (`work-ssh` in `[profile.work-ssh]`).
    var name: String
    /// The server: an address or a host name.
    var host: String
    /// The knock ports, as written.
    var knock: [KnockPortSpec]
    /// Knock with UDP where a port gives no protocol.
    var udp: Bool?
    /// Milliseconds between knocks.
    var delay: Int?
    /// The address family.
    var family: AddressFamilyChoice?
    /// Whether to send SPA (implied by a secret file).
    var spa: Bool?
    /// The SPA format.
    var format: SPAFormat?
    /// The open secret's file, absolute (relative paths are taken from the profile file's directory).
    var openSecretFile: String?
    /// The close secret's file, absolute.
    var closeSecretFile: String?
    /// The address to put into the MAC.
    var sourceIP: PeerAddress?
    /// The port to probe after knocking.
    var wait: WaitSpec?
    /// Whether to send SPA v2 (`spa = "v2"`, or implied by `key_file`).
    var spa2: Bool?
    /// The SPA v2 client id.
    var clientID: String?
    /// The SPA v2 key file, absolute.
    var keyFile: String?
    /// The SPA v2 key type.
    var keyType: KeygenCommand.KeyType?
    /// The rule an SPA v2 packet asks for.
    var rule: String?
    /// The address an SPA v2 or fwknop packet asks to open (behind NAT).
    var address: String?
    /// Whether to send an fwknop packet (`spa = "fwknop"`; `key_file` then holds fwknop keys).
    var fwknop: Bool?
    /// The ports an fwknop packet asks for (`"tcp/22"`, `"tcp/22,udp/53"`).
    var access: String?
    /// The user name an fwknop packet carries.
    var user: String?
}

/// Finds and reads `client.toml`.
///
/// Format (pknock(1)):
///
///     [profile.work-ssh]
///     host = "server.example"
///     knock = [2002, 2001, "2004:udp"]
///     wait = "22:10"
///
///     [profile.ftp]
///     host = "203.0.113.5"
///     knock = ["4000:udp"]
///     open_secret_file = "ftp.open"     # relative to this file's directory; implies spa = true
///     close_secret_file = "ftp.close"
enum ClientProfiles {
    /// The profile file: `--profiles FILE`, else `$XDG_CONFIG_HOME/pknock/client.toml`, else
    /// `$HOME/.config/pknock/client.toml`; nil when there is no home to look in.
    static func path(explicit: String?, environment: [String: String]) -> String? {
        if let explicit { return explicit }
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg + "/pknock/client.toml" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.config/pknock/client.toml" }
        return nil
    }

    /// Reads every profile of the file at `path`.
    ///
    /// With `mustExist` false a missing file has no profiles.
    static func load(path: String, mustExist: Bool, environment: [String: String]) throws(ClientProfileError) -> [ClientProfile] {
        guard FileManager.default.fileExists(atPath: path) else {
            if mustExist { throw ClientProfileError(file: path, line: nil, "no such file") }
            return []
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ClientProfileError(file: path, line: nil, "cannot read the file")
        }
        // Not `String(data:encoding:)`: it drops a byte order mark, which would hide a second one.
        // (Decoding replaces invalid UTF-8, so valid text is exactly the bytes read.)
        let text = String(decoding: data, as: UTF8.self)
        guard text.utf8.elementsEqual(data) else {
            throw ClientProfileError(file: path, line: nil, "not UTF-8 text")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(text, file: path, directory: directory, home: environment["HOME"])
    }

    /// Reads profiles from `text`; relative secret paths are taken from `directory`, `~/` from `home`.
    static func parse(_ text: String, file: String, directory: String, home: String?) throws(ClientProfileError) -> [ClientProfile] {
        let root: TOMLTable
        do {
            root = try TOMLParser.parse(text, file: file)
        } catch {
            throw ClientProfileError(file: file, line: error.line, error.message)
        }
        var profiles: [ClientProfile] = []
        for entry in root.entries {
            switch (entry.key, entry.value.kind) {
            case ("profile", .table): break
            case ("profile", .tableArray):
                throw ClientProfileError(file: file, line: entry.line, "write each profile as [profile.NAME], not [[profile]]")
            case (_, .table), (_, .tableArray):
                throw ClientProfileError(file: file, line: entry.line, "unknown table [\(entry.key)]; profiles are [profile.NAME]")
            default:
                throw ClientProfileError(file: file, line: entry.line, "\"\(entry.key)\" must be inside a [profile.NAME] table")
            }
            guard case .table(let table) = entry.value.kind else { continue }
            for section in table.entries {
                guard case .table(let body) = section.value.kind else {
                    throw ClientProfileError(file: file, line: section.line, "profile.\(section.key): expected a [profile.NAME] table")
                }
                profiles.append(try profile(name: section.key, body, file: file, directory: directory, home: home))
            }
        }
        return profiles
    }

    private static func profile(name: String, _ section: TOMLTable, file: String, directory: String, home: String?) throws(ClientProfileError)
        -> ClientProfile
    {
        func fail(_ line: Int, _ key: String, _ message: String) -> ClientProfileError {
            ClientProfileError(file: file, line: line, "profile \(name): \(key): \(message)")
        }
        var host: String?
        var knock: [KnockPortSpec] = []
        var result = ClientProfile(name: name, host: "", knock: [])
        for entry in section.entries {
            let (key, value, line) = (entry.key, entry.value.kind, entry.line)
            func string() throws(ClientProfileError) -> String {
                guard case .string(let text) = value else { throw fail(line, key, "expected a string, found \(entry.value.typeName)") }
                return text
            }
            func boolean() throws(ClientProfileError) -> Bool {
                guard case .boolean(let flag) = value else { throw fail(line, key, "expected true or false, found \(entry.value.typeName)") }
                return flag
            }
            func path() throws(ClientProfileError) -> String {
                let text = try string()
                guard !text.isEmpty else { throw fail(line, key, "the path is empty") }
                if text.hasPrefix("~/"), let home { return home + text.dropFirst() }
                return text.hasPrefix("/") ? text : directory + "/" + text
            }
            switch key {
            case "host":
                let text = try string()
                guard !text.isEmpty else { throw fail(line, key, "the host is empty") }
                host = text
            case "knock":
                guard case .array(let items) = value, !items.isEmpty else {
                    throw fail(line, key, "expected a non-empty array of ports such as [2002, 2001, \"2004:udp\"]")
                }
                for item in items {
                    let text: String
                    switch item.kind {
                    case .integer(let number): text = String(number)
                    case .string(let written): text = written
                    default: throw fail(line, key, "expected ports (numbers or strings such as \"7000:udp\"), found \(item.typeName)")
                    }
                    switch KnockPortSpec.parse(text) {
                    case .success(let spec): knock.append(spec)
                    case .failure(let problem): throw fail(line, key, problem.message)
                    }
                }
            case "udp":
                result.udp = try boolean()
            case "delay":
                guard case .integer(let milliseconds) = value, (0...60_000).contains(milliseconds) else {
                    throw fail(line, key, "expected milliseconds from 0 to 60000")
                }
                result.delay = Int(milliseconds)
            case "family":
                let text = try string()
                guard let family = AddressFamilyChoice(rawValue: text) else {
                    throw fail(line, key, "expected \"ipv4\", \"ipv6\" or \"any\", found \"\(text)\"")
                }
                result.family = family
            case "spa":
                // true/false, or a format name as in pknock.toml (`spa = "md5"`).
                if case .string("v2") = value {
                    result.spa2 = true
                } else if case .string("fwknop") = value {
                    result.fwknop = true
                } else if case .string(let text) = value {
                    guard let format = SPAFormat(rawValue: text) else {
                        throw fail(line, key, "expected true, false, \"sha256\", \"md5\", \"v2\" or \"fwknop\"")
                    }
                    result.spa = true
                    if let earlier = result.format, earlier != format { throw fail(line, key, "contradicts format = \"\(earlier)\"") }
                    result.format = format
                } else {
                    result.spa = try boolean()
                }
            case "format":
                let text = try string()
                guard let format = SPAFormat(rawValue: text) else {
                    throw fail(line, key, "expected \"sha256\" or \"md5\", found \"\(text)\"")
                }
                if let earlier = result.format, earlier != format { throw fail(line, key, "contradicts spa = \"\(earlier)\"") }
                result.format = format
            case "open_secret_file":
                result.openSecretFile = try path()
            case "close_secret_file":
                result.closeSecretFile = try path()
            case "client_id":
                result.clientID = try string()
            case "key_file":
                result.keyFile = try path()
            case "key_type":
                let text = try string()
                guard let type = KeygenCommand.KeyType(rawValue: text) else {
                    throw fail(line, key, "expected \"ed25519\" or \"hmac\", found \"\(text)\"")
                }
                result.keyType = type
            case "rule":
                result.rule = try string()
            case "address":
                result.address = try string()
            case "access":
                result.access = try string()
            case "user":
                result.user = try string()
            case "source_ip":
                let text = try string()
                guard let address = PeerAddress(text) else { throw fail(line, key, "'\(text)' is not an IP address") }
                result.sourceIP = address
            case "wait":
                let text: String
                switch value {
                case .integer(let number): text = String(number)
                case .string(let written): text = written
                default: throw fail(line, key, "expected a port or \"PORT:SECONDS\", found \(entry.value.typeName)")
                }
                switch WaitSpec.parse(text) {
                case .success(let spec): result.wait = spec
                case .failure(let problem): throw fail(line, key, problem.message)
                }
            default:
                let hint = ValueSyntax.suggestion(for: key, among: ClientProfile.keys).map { " (did you mean \($0)?)" } ?? ""
                throw fail(line, key, "unknown key\(hint); known keys: \(ClientProfile.keys.joined(separator: ", "))")
            }
        }
        guard let host else { throw ClientProfileError(file: file, line: section.line, "profile \(name): host is missing") }
        guard !knock.isEmpty else { throw ClientProfileError(file: file, line: section.line, "profile \(name): knock is missing") }
        result.host = host
        result.knock = knock
        if result.spa == nil && (result.openSecretFile != nil || result.closeSecretFile != nil || result.format != nil) {
            result.spa = true
        }
        if result.fwknop == true {
            if result.spa == true || result.spa2 == true || result.clientID != nil {
                throw ClientProfileError(
                    file: file, line: section.line, "profile \(name): spa = \"fwknop\" excludes SPA v1 secrets and SPA v2 client_id")
            }
        } else if result.spa2 == nil && (result.keyFile != nil || result.clientID != nil) {
            result.spa2 = true
        }
        if result.fwknop != true && (result.access != nil || result.user != nil) {
            throw ClientProfileError(file: file, line: section.line, "profile \(name): access and user apply to spa = \"fwknop\" only")
        }
        if result.spa2 == true && result.spa == true {
            throw ClientProfileError(file: file, line: section.line, "profile \(name): SPA v2 (key_file) and SPA v1 (secrets, format) exclude each other")
        }
        if result.spa == true || result.spa2 == true || result.fwknop == true {
            if knock.count != 1 {
                throw ClientProfileError(
                    file: file, line: section.line, "profile \(name): SPA sends one packet: knock must hold exactly one port")
            }
            if knock[0].transport == .tcp {
                throw ClientProfileError(file: file, line: section.line, "profile \(name): SPA knocks are UDP only")
            }
        }
        return result
    }
}
