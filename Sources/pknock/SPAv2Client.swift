import Crypto
import Foundation
import KnockCore

/// The SPA v2 part of a plan (`pknock knock --spa2`), decided before any file is read.
struct SPAv2Plan: Equatable {
    /// The client id the server knows this key by.
    var clientID: String
    /// The file with the client's private key (ed25519) or shared key (hmac), base64 of 32 bytes.
    var keyFile: String
    /// What the key file holds.
    var keyType: KeygenCommand.KeyType
    /// The rule whose ports the packet asks for.
    var rule: RuleName
    /// The address to open instead of the packet's source, or nil for the source.
    var address: PeerAddress?
}

/// Making SPA v2 packets on the client: the key file's text to a key, and the packet bytes.
///
/// Pure: the clock and the nonce are passed in; `KnockCommand` reads the file and sends.
enum SPAv2Client {
    /// Why a key file's contents cannot be used.
    struct KeyProblem: Error, Equatable {
        /// What is wrong, without the file name.
        var message: String
    }

    /// The signing key in a key file written by `pknock keygen`: base64 of 32 bytes, surrounding
    /// white space ignored.
    static func signingKey(fileContents: [UInt8], type: KeygenCommand.KeyType) throws(KeyProblem) -> SPAv2.SigningKey {
        let text = String(Syntax.keyText(fileContents: fileContents))
        guard !text.isEmpty else { throw KeyProblem(message: "is empty") }
        guard let data = Data(base64Encoded: text) else {
            throw KeyProblem(message: "is not base64 (a key file from `pknock keygen` holds one line of base64)")
        }
        guard data.count == 32 else { throw KeyProblem(message: "holds \(data.count) bytes, not 32") }
        switch type {
        case .hmac:
            return .hmac(SymmetricKey(data: data))
        case .ed25519:
            do {
                return .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: data))
            } catch {
                throw KeyProblem(message: "is not an Ed25519 private key")
            }
        }
    }

    /// The message `plan` asks for, made at `timestamp` (Unix seconds) with `nonce`.
    static func message(_ plan: SPAv2Plan, timestamp: Int64, nonce: [UInt8]) -> SPAv2.Message {
        SPAv2.Message(clientID: plan.clientID, timestamp: timestamp, nonce: nonce, rule: plan.rule, address: plan.address)
    }

    /// 16 bytes from the system's cryptographically secure generator.
    static func randomNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<SPAv2.nonceLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The lines printed for `--dry-run` and `--verbose`: what and where; then the packet in hex.
    static func report(_ plan: SPAv2Plan, packet: [UInt8], timestamp: Int64, to server: PeerAddress, port: ServicePort) -> [String] {
        let address = plan.address.map { "address \($0)" } ?? "the source address"
        let kind = plan.keyType == .hmac ? "hmac-sha256" : "ed25519"
        return [
            "SPA v2 knock (\(kind), client \(plan.clientID), rule \(plan.rule.rawValue), \(address)) to \(server) port \(port):"
                + " \(packet.count) bytes, timestamp \(timestamp)",
            "packet: " + packet.map { String(format: "%02x", $0) }.joined(),
        ]
    }
}
