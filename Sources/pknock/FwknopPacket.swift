import Foundation
import KnockCore

/// The fwknop part of a plan (`pknock knock --fwknop`), decided before any file is read.
struct FwknopPlan: Equatable {
    /// The key file: `KEY_BASE64:` and `HMAC_KEY_BASE64:` lines, as `fwknop --key-gen` prints them.
    var keyFile: String
    /// The ports to ask for.
    var access: [ServicePort]
    /// The address to ask for; nil: the local address toward the server (as fwknop's `-a`);
    /// 0.0.0.0: whatever source the server sees (fwknop's `-s`).
    var address: PeerAddress?
    /// The user name the packet carries.
    var user: String
    /// The timeout to ask for, in seconds (fwknop's `--fw-timeout`); nil: the server's.
    var timeout: Int?
}

/// Making fwknop packets on the client.
///
/// Pure: the clock, the salt and the random value are passed in.
enum FwknopPacket {
    /// The message `plan` asks for, `address` being the one decided (nil: 0.0.0.0).
    static func message(_ plan: FwknopPlan, address: PeerAddress?, timestamp: Int64, random: String) -> Fwknop.Message {
        Fwknop.Message(
            random: random, user: plan.user, timestamp: timestamp, type: plan.timeout == nil ? .access : .clientTimeoutAccess,
            address: address == PeerAddress(ipv4: 0) ? nil : address, access: plan.access, clientTimeout: plan.timeout)
    }

    /// 8 bytes of salt from the system's cryptographically secure generator.
    static func randomSalt() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<8).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The lines printed for `--dry-run` and `--verbose`: what and where; then the packet text.
    static func report(_ message: Fwknop.Message, packet: [UInt8], to server: PeerAddress, port: ServicePort) -> [String] {
        let access = message.access.map { "\($0.transport)/\($0.port)" }.joined(separator: ",")
        return [
            "fwknop SPA knock (user \(message.user), access \(message.address?.description ?? "0.0.0.0"),\(access)"
                + "\(message.clientTimeout.map { ", timeout \($0) s" } ?? "")) to \(server) port \(port): \(packet.count) bytes,"
                + " timestamp \(message.timestamp)",
            "packet: " + String(decoding: packet, as: UTF8.self),
        ]
    }
}
