import Foundation
import KnockCore

extension Translation {
    /// Whether `text` looks like fwknopd's access.conf: a `SOURCE` line and a key line.
    static func looksLikeFwknopAccess(_ text: String) -> Bool {
        let keys = text.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#") else { return nil }
            return trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).first.map(String.init)
        }
        return keys.contains("SOURCE") && keys.contains { ["KEY", "KEY_BASE64", "HMAC_KEY_BASE64", "GPG_DECRYPT_ID"].contains($0) }
    }

    /// `KEY value` lines of fwknop's config files (`KEY: value` too), with their line numbers.
    static func fwknopLines(_ text: String) -> [(key: String, value: String, line: Int)] {
        var result: [(String, String, Int)] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let separator = line.firstIndex(where: { $0 == " " || $0 == "\t" || $0 == ":" }) else {
                result.append((line, "", index + 1))
                continue
            }
            var value = line[line.index(after: separator)...].trimmingCharacters(in: .whitespaces)
            if value.hasSuffix(";") { value.removeLast() }
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            result.append((String(line[..<separator]), value, index + 1))
        }
        return result
    }

    /// Translates fwknopd's access.conf (and, when given, fwknopd.conf's SPA port and packet age):
    /// each SOURCE stanza becomes a `spa = "fwknop"` rule and a `[[client]]` whose key file holds
    /// the stanza's keys; what does not map is a comment and a warning.
    ///
    /// OPEN_PORTS → protect, FW_ACCESS_TIMEOUT → autoclose (fwknopd's default 30 s when absent; a
    /// client's own timeout is capped by it), REQUIRE_SOURCE_ADDRESS → require_source_address,
    /// KEY_BASE64/HMAC_KEY_BASE64 (or KEY/HMAC_KEY passphrases, whose bytes are the keys) → the
    /// client's key file. PCAP_FILTER's `udp port N` or UDPSERV_PORT → knock; MAX_SPA_PACKET_AGE →
    /// fwknop_clock_window.
    static func fwknop(access text: String, file: String, serverConfig: (text: String, file: String)?) -> Translation {
        var warnings: [String] = []
        var port = Fwknop.defaultPort
        var daemonLines: [String] = []
        var serverNotes: [String] = []
        if let (serverText, serverFile) = serverConfig {
            for (key, value, line) in fwknopLines(serverText) {
                switch key {
                case "PCAP_FILTER":
                    let words = value.split(separator: " ")
                    if let index = words.firstIndex(of: "port"), words.indices.contains(index + 1), let found = Port(words[index + 1]),
                        words.contains("udp")
                    {
                        port = found
                    } else {
                        warnings.append("\(serverFile):\(line): PCAP_FILTER \"\(value)\": only \"udp port N\" maps (to knock); left out")
                    }
                case "UDPSERV_PORT":
                    if let found = Port(value) { port = found } else { warnings.append("\(serverFile):\(line): UDPSERV_PORT \"\(value)\" is no port") }
                case "ENABLE_UDP_SERVER", "PCAP_INTF", "ENABLE_PCAP_PROMISC", "FIREWALL_EXE", "ENABLE_SPA_PACKET_AGING", "ENABLE_DIGEST_PERSISTENCE",
                    "DIGEST_FILE", "DIGEST_DB_FILE", "FWKNOP_RUN_DIR", "FWKNOP_PID_FILE", "SYSLOG_IDENTITY", "SYSLOG_FACILITY", "LOCALE":
                    // pknockd does these its own way: it sees knocks through NFLOG on every interface,
                    // keeps its replay memory in state_directory, and logs to standard error.
                    break
                case "MAX_SPA_PACKET_AGE":
                    if let seconds = Int(value), (5...3600).contains(seconds) {
                        daemonLines.append("fwknop_clock_window = \(seconds)")
                    } else {
                        warnings.append("\(serverFile):\(line): MAX_SPA_PACKET_AGE \(value): pknock takes 5 to 3600 seconds; left out")
                    }
                default:
                    warnings.append("\(serverFile):\(line): \(key) has no pknock equivalent; left out")
                    serverNotes.append("\(serverFile):\(line): \(key) \(value) has no pknock equivalent")
                }
            }
        }

        let also = serverConfig.map { " and \($0.file)" } ?? ""
        var out = "# Translated by `pknock translate` from \(file) (fwknopd access.conf\(also)).\n"
        for note in serverNotes { out += "# NOTE: \(note)\n" }
        if !daemonLines.isEmpty { out += "\n[daemon]\n" + daemonLines.joined(separator: "\n") + "\n" }

        // Stanzas: each begins at a SOURCE line.
        var stanzas: [[(key: String, value: String, line: Int)]] = []
        for entry in fwknopLines(text) {
            if entry.key == "%include" || entry.key == "%include_folder" {
                warnings.append("\(file):\(entry.line): \(entry.key) is not followed; translate the included files too")
                continue
            }
            if entry.key == "SOURCE" {
                stanzas.append([entry])
            } else if stanzas.isEmpty {
                warnings.append("\(file):\(entry.line): \(entry.key) before any SOURCE line; left out")
            } else {
                stanzas[stanzas.count - 1].append(entry)
            }
        }
        var clients = ""
        for (number, stanza) in stanzas.enumerated() {
            let name = stanzas.count == 1 ? "FWKNOP" : "FWKNOP\(number + 1)"
            let label = "stanza \(number + 1) (line \(stanza[0].line))"
            var notes: [String] = []
            func warn(_ line: Int, _ message: String) {
                warnings.append("\(file):\(line): \(label): \(message)")
                notes.append(message)
            }
            var protect: [ServicePort] = []
            var autoclose: Duration = .seconds(30)
            var requireSource = false
            var key: [UInt8]?
            var hmacKey: [UInt8]?
            for (field, value, line) in stanza {
                switch field {
                case "SOURCE":
                    if value.uppercased() != "ANY" {
                        warn(line, "SOURCE \(value): pknock rules take packets from any address; restrict sources in your own firewall")
                    }
                case "OPEN_PORTS":
                    for item in value.split(separator: ",") {
                        let pieces = item.trimmingCharacters(in: .whitespaces).split(separator: "/")
                        if pieces.count == 2, let transport = TransportProtocol(name: pieces[0]), let found = Port(pieces[1]) {
                            protect.append(ServicePort(found, transport))
                        } else {
                            warn(line, "OPEN_PORTS item \"\(item)\" is not PROTO/PORT; left out")
                        }
                    }
                case "FW_ACCESS_TIMEOUT":
                    if let seconds = Int64(value), seconds > 0 { autoclose = .seconds(seconds) } else { warn(line, "FW_ACCESS_TIMEOUT \"\(value)\" left out") }
                case "MAX_FW_TIMEOUT":
                    warn(line, "MAX_FW_TIMEOUT \(value): pknockd caps a client's own timeout by autoclose instead")
                case "REQUIRE_SOURCE_ADDRESS":
                    requireSource = value.uppercased() == "Y"
                case "KEY_BASE64":
                    key = Data(base64Encoded: value).map(Array.init)
                    if key == nil { warn(line, "KEY_BASE64 is not base64") }
                case "KEY":
                    key = Array(value.utf8)
                case "HMAC_KEY_BASE64":
                    hmacKey = Data(base64Encoded: value).map(Array.init)
                    if hmacKey == nil { warn(line, "HMAC_KEY_BASE64 is not base64") }
                case "HMAC_KEY":
                    hmacKey = Array(value.utf8)
                case "HMAC_DIGEST_TYPE":
                    if value.uppercased() != "SHA256" {
                        warn(line, "HMAC_DIGEST_TYPE \(value): pknockd checks HMAC-SHA256 only; clients must use --hmac-digest-type sha256")
                    }
                case "ENCRYPTION_MODE":
                    if value.uppercased() != "CBC" { warn(line, "ENCRYPTION_MODE \(value): pknockd decrypts CBC only (fwknop's default)") }
                case "GPG_DECRYPT_ID", "GPG_DECRYPT_PW", "GPG_REMOTE_ID", "GPG_HOME_DIR", "GPG_EXE", "GPG_ALLOW_NO_PW", "GPG_REQUIRE_SIG",
                    "GPG_IGNORE_SIG_VERIFY_ERROR", "GPG_FINGERPRINT_ID":
                    warn(line, "\(field): GnuPG packets are not supported")
                case "ENABLE_CMD_EXEC", "ENABLE_CMD_SUDO_EXEC", "CMD_EXEC_USER", "CMD_EXEC_GROUP", "CMD_SUDO_EXEC_USER", "CMD_SUDO_EXEC_GROUP",
                    "CMD_CYCLE_OPEN", "CMD_CYCLE_CLOSE", "CMD_CYCLE_TIMER":
                    warn(line, "\(field): pknockd runs no commands sent in packets; use on_open/on_close hooks")
                case "REQUIRE_USERNAME":
                    warn(line, "REQUIRE_USERNAME \(value): pknockd identifies clients by their keys, not the user name")
                default:
                    warn(line, "\(field) has no pknock equivalent; left out")
                }
            }
            guard let key else {
                warnings.append("\(file):\(stanza[0].line): \(label) has no KEY_BASE64 or KEY (GnuPG only?); skipped")
                continue
            }
            if hmacKey == nil {
                warn(stanza[0].line, "no HMAC key: pknockd refuses fwknop packets without HMAC; make keys with fwknop --key-gen and send with --use-hmac")
            }
            if protect.isEmpty {
                warn(stanza[0].line, "no OPEN_PORTS: fwknopd opens what the client asks for, pknockd only the rule's ports; set protect")
            }
            guard let ruleName = RuleName(rawValue: name) else { continue }
            let rule = Rule(
                name: ruleName, knockSequence: [ServicePort(port, .udp)], autoclose: autoclose, fwknop: FwknopRuleSettings(requireSourceAddress: requireSource),
                protectedPorts: protect)
            var table = render(rule, hooks: nil, notes: notes)
            table += "spa = \"fwknop\"\n"
            if requireSource { table += "require_source_address = true\n" }
            out += "\n" + table
            let keyFile = "keys/\(name.lowercased()).fwknop"
            clients += "\n# Write these lines to \(keyFile) (beside pknock.toml, owner root, mode 0600), then delete them here:\n"
            clients += "#   KEY_BASE64: \(Data(key).base64EncodedString())\n"
            if let hmacKey { clients += "#   HMAC_KEY_BASE64: \(Data(hmacKey).base64EncodedString())\n" }
            clients += "[[client]]\nid = \(quoted(name.lowercased()))\nfwknop_key_file = \(quoted(keyFile))\nrules = [\(quoted(name))]\n"
        }
        if !clients.isEmpty {
            warnings.append("the keys are written as comments; move them into the key files named there and delete the comments")
        }
        return Translation(toml: out + clients, warnings: warnings)
    }
}
