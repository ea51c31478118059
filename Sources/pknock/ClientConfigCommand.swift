import ArgumentParser
import CQREncode
import Foundation
import KnockConfig
import KnockCore

/// `pknock client-config`: what a client needs to open a rule, in the formats clients read.
struct ClientConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client-config",
        abstract: "Print what a client needs to open a rule: .fwknoprc, QR code, Knock on Ports JSON, client.toml.",
        discussion: """
            Reads the server's configuration (--config, default /etc/pknock/pknock.toml) and prints, for RULE:
            fwknop rules (spa = "fwknop"): for each client (or --client ID) a ~/.fwknoprc stanza (then \\
            `fwknop -n RULE` opens it) and fwknop's QR code text "KEY_BASE64:… HMAC_KEY_BASE64:…", \\
            which Fwknop2 and fwknop-gui scan; --qr draws that QR code in the terminal. These contain the \\
            client's keys: show them only to that client.
            Sequence rules: a Knock on Ports (Android) JSON import, a knockd.conf door and `knock` line \\
            for knockd's clients, and a pknock client.toml profile. SPA rules (open_secret, spa = "v2"): a \\
            client.toml profile naming the key file the client keeps.
            --server names the host clients send to (default: this host's name).
            """
    )

    @Argument(help: "The rule to export.")
    var rule: String

    @Option(name: .long, help: ArgumentHelp("The server's configuration.", valueName: "file"))
    var config = "/etc/pknock/pknock.toml"

    @Option(name: .long, help: ArgumentHelp("Only this client (fwknop and SPA v2 rules).", valueName: "id"))
    var client: String?

    @Option(name: .long, help: ArgumentHelp("The address or name clients send to.", valueName: "host"))
    var server: String?

    @Flag(name: .long, help: "fwknop rules: draw the QR code of the keys in the terminal.")
    var qr = false

    @Option(help: .hidden)
    var qrImage: String?

    func run() throws {
        let configuration: Configuration
        do {
            configuration = try ConfigLoader.load(path: config)
        } catch {
            for diagnostic in error.diagnostics { FileHandle.standardError.write(Data("\(diagnostic)\n".utf8)) }
            throw ExitCode(2)
        }
        guard let name = RuleName(rawValue: rule), let found = configuration.rules.first(where: { $0.name == name }) else {
            throw ValidationError("no rule \(rule) in \(config) (rules: \(configuration.rules.map(\.name.rawValue).joined(separator: ", ")))")
        }
        let host = server ?? ProcessInfo.processInfo.hostName
        let export: ClientExport
        do {
            export = try ClientExport.make(found, configuration: configuration, client: client, host: host)
        } catch {
            throw ValidationError(error.message)
        }
        print(export.text, terminator: "")
        if qr || qrImage != nil {
            guard !export.qrTexts.isEmpty else { throw ValidationError("--qr applies to fwknop rules (spa = \"fwknop\")") }
            for (id, text) in export.qrTexts {
                let code = try QRCode(text)
                if qr {
                    print("\n# QR code of client \(id)'s keys:")
                    print(code.terminalText, terminator: "")
                }
                if let qrImage {
                    let path = export.qrTexts.count == 1 ? qrImage : qrImage + "." + id
                    guard FileManager.default.createFile(atPath: path, contents: Data(code.pgm(scale: 4)), attributes: [.posixPermissions: 0o600])
                    else { throw CLIFailure("cannot write \(path)") }
                }
            }
        }
    }
}

/// What `pknock client-config` prints for one rule.
///
/// Pure, for tests.
struct ClientExport: Equatable {
    /// The text to print.
    var text: String
    /// fwknop QR code texts by client id.
    var qrTexts: [(String, String)]

    static func == (lhs: ClientExport, rhs: ClientExport) -> Bool {
        lhs.text == rhs.text && lhs.qrTexts.map(\.0) == rhs.qrTexts.map(\.0) && lhs.qrTexts.map(\.1) == rhs.qrTexts.map(\.1)
    }

    /// fwknop's QR text for `keys` (what fwknop-gui and Fwknop2 scan).
    static func qrText(_ keys: Fwknop.Keys) -> String {
        "KEY_BASE64:\(Data(keys.encryptionKey.bytes).base64EncodedString()) HMAC_KEY_BASE64:\(Data(keys.hmacKey.bytes).base64EncodedString())"
    }

    static func make(_ rule: Rule, configuration: Configuration, client: String?, host: String) throws(ClientUsageError) -> ClientExport {
        let name = rule.name.rawValue
        let knock = rule.knockSequence
        if let settings = rule.fwknop {
            let clients = configuration.fwknopClients.filter { $0.rules.contains(rule.name) && (client == nil || $0.id == client) }
            guard !clients.isEmpty else {
                throw ClientUsageError(client.map { "client \($0) may not open \(name)" } ?? "no [[client]] may open \(name)")
            }
            let access = rule.protectedPorts.map { "\($0.transport)/\($0.port)" }.joined(separator: ",")
            var text = ""
            var qrTexts: [(String, String)] = []
            for entry in clients {
                text += "# ~/.fwknoprc stanza for client \(entry.id) (then: fwknop -n \(name)); it holds the client's keys.\n"
                text += "[\(name)]\n"
                text += "SPA_SERVER          \(host)\n"
                text += "SPA_SERVER_PORT     \(knock.first?.port.description ?? Fwknop.defaultPort.description)\n"
                text += "SPA_SERVER_PROTO    udp\n"
                text += "ACCESS              \(access)\n"
                // With require_source_address the packet must name the address: have fwknop find the public one.
                text += "ALLOW_IP            \(settings.requireSourceAddress ? "resolve" : "source")\n"
                text += "KEY_BASE64          \(Data(entry.keys.encryptionKey.bytes).base64EncodedString())\n"
                text += "HMAC_KEY_BASE64     \(Data(entry.keys.hmacKey.bytes).base64EncodedString())\n"
                text += "USE_HMAC            Y\n"
                text += "HMAC_DIGEST_TYPE    sha256\n\n"
                let qr = qrText(entry.keys)
                text += "# fwknop QR code text for client \(entry.id) (Fwknop2, fwknop-gui; --qr draws it):\n\(qr)\n\n"
                qrTexts.append((entry.id, qr))
            }
            return ClientExport(text: text, qrTexts: qrTexts)
        }
        if rule.spa2 != nil {
            let clients = configuration.clients.filter { $0.rules.contains(rule.name) && (client == nil || $0.id == client) }
            guard !clients.isEmpty else {
                throw ClientUsageError(client.map { "client \($0) may not open \(name)" } ?? "no [[client]] may open \(name)")
            }
            var text = ""
            for entry in clients {
                text += "# ~/.config/pknock/client.toml profile for client \(entry.id) (then: pknock knock \(name)); the key file is the\n"
                text += "# client's own (`pknock keygen`), never the server's copy.\n"
                text += "[profile.\(name)]\nhost = \(Translation.quoted(host))\nknock = \(Translation.ports(knock))\nspa = \"v2\"\n"
                text += "client_id = \(Translation.quoted(entry.id))\nkey_file = \(Translation.quoted("~/.config/pknock/\(entry.id)"))\n"
                if entry.key.kind == .hmacSHA256 { text += "key_type = \"hmac\"\n" }
                text += "rule = \(Translation.quoted(name))\n\n"
            }
            return ClientExport(text: text, qrTexts: [])
        }
        if let spa = rule.spa {
            var text = "# ~/.config/pknock/client.toml profile (then: pknock knock \(name)); put the open secret in the file named.\n"
            text += "[profile.\(name)]\nhost = \(Translation.quoted(host))\nknock = \(Translation.ports(knock))\n"
            text += "spa = \(Translation.quoted(spa.format.rawValue))\nopen_secret_file = \(Translation.quoted("\(name.lowercased()).open"))\n"
            if spa.closeSecret != nil { text += "close_secret_file = \(Translation.quoted("\(name.lowercased()).close"))\n" }
            return ClientExport(text: text + "\n", qrTexts: [])
        }
        // A sequence rule.
        let delay = 200
        var json = "[\n  {\n    \"id\": 0,\n    \"label\": \(Translation.quoted(name)),\n    \"hostname\": \(Translation.quoted(host)),\n"
        json += "    \"delay\": \(delay),\n    \"launchIntentPackage\": null,\n    \"ports\": [\n"
        json += knock.enumerated().map { index, port in
            "      {\"hostId\": 0, \"index\": \(index), \"port\": \(port.port), \"protocol\": \"\(port.transport.description.uppercased())\"}"
        }.joined(separator: ",\n")
        json += "\n    ]\n  }\n]\n"
        var text = "# Knock on Ports (Android) import file: save as \(name).json and import it in the app.\n" + json + "\n"
        text += "# knockd.conf door, for clients that read knockd's configuration:\n[\(name)]\n"
        text += "    sequence    = \(knock.map { "\($0.port):\($0.transport)" }.joined(separator: ","))\n"
        if let gap = rule.maxKnockGap { text += "    seq_timeout = \(max(1, gap.wholeSeconds * Int64(max(1, knock.count - 1))))\n" }
        text += "    tcpflags    = syn\n\n"
        text += "# knockd's client:\nknock -d \(delay) \(host) \(knock.map { "\($0.port):\($0.transport)" }.joined(separator: " "))\n\n"
        text += "# ~/.config/pknock/client.toml profile (then: pknock knock \(name)):\n"
        text += "[profile.\(name)]\nhost = \(Translation.quoted(host))\nknock = \(Translation.ports(knock))\n"
        return ClientExport(text: text + "\n", qrTexts: [])
    }
}

/// A QR code from libqrencode (byte mode, error correction M): modules, a terminal drawing, an image.
struct QRCode {
    /// Modules per side.
    let width: Int
    /// Row-major, true for dark.
    let modules: [Bool]

    struct EncodingError: Error, CustomStringConvertible {
        var description: String { "the text does not fit a QR code" }
    }

    init(_ text: String) throws {
        guard let code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M) else { throw EncodingError() }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        self.width = width
        self.modules = (0..<width * width).map { code.pointee.data[$0] & 1 == 1 }
    }

    private func dark(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < width && modules[y * width + x] }

    /// Two rows per line with half blocks, dark on light, with the 4-module quiet zone.
    var terminalText: String {
        var out = ""
        var y = -4
        while y < width + 4 {
            for x in -4..<(width + 4) {
                switch (dark(x, y), dark(x, y + 1)) {
                case (false, false): out += "\u{2588}"
                case (true, false): out += "\u{2584}"
                case (false, true): out += "\u{2580}"
                case (true, true): out += " "
                }
            }
            out += "\n"
            y += 2
        }
        return out
    }

    /// A binary PGM image (white quiet zone of 4 modules, `scale` pixels a module), for decoders.
    func pgm(scale: Int) -> [UInt8] {
        let side = (width + 8) * scale
        var bytes = Array("P5\n\(side) \(side)\n255\n".utf8)
        bytes.reserveCapacity(bytes.count + side * side)
        for row in 0..<side {
            for column in 0..<side {
                bytes.append(dark(column / scale - 4, row / scale - 4) ? 0 : 255)
            }
        }
        return bytes
    }
}
