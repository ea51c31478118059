import Foundation
import KnockCore
import Testing

@testable import KnockFleet

@Suite struct FleetKeysTests {
    let layout = FleetKeyLayout(prefix: "/pknock")
    let ssh = RuleName(rawValue: "SSH")!
    let v4 = PeerAddress("192.0.2.10")!
    let v6 = PeerAddress("2001:db8::5")!

    @Test func grantAndReplayKeysFollowTheContract() {
        #expect(layout.grantKey(rule: ssh, peer: v4) == "/pknock/grants/SSH/192.0.2.10")
        #expect(layout.grantKey(rule: ssh, peer: v6) == "/pknock/grants/SSH/2001:db8::5")
        #expect(layout.replayKey(.spa1(epochMinute: 29_300_000), rule: ssh, peer: v4) == "/pknock/replay/spa1/SSH/192.0.2.10/29300000")
        #expect(layout.replayKey(.spa2(nonce: [0x00, 0xab, 0xff]), rule: ssh, peer: v4) == "/pknock/replay/spa2/SSH/00abff")
        #expect(layout.replayKey(.fwknop(digest: [0x12, 0x3f]), rule: ssh, peer: v6) == "/pknock/replay/fwknop/SSH/123f")
    }

    @Test func grantKeysParseBack() {
        #expect(layout.grant(fromKey: "/pknock/grants/SSH/2001:db8::5").map { "\($0.rule)/\($0.peer)" } == "SSH/2001:db8::5")
        #expect(layout.grant(fromKey: "/pknock/replay/spa1/SSH/192.0.2.10/1") == nil)
        #expect(layout.grant(fromKey: "/other/grants/SSH/192.0.2.10") == nil)
        #expect(layout.grant(fromKey: "/pknock/grants/SSH/not-an-address") == nil)
        #expect(layout.grant(fromKey: "/pknock/grants/bad rule/192.0.2.10") == nil)
    }

    @Test func grantValuesRoundTripAsTheContractsJSON() throws {
        let value = GrantValue(expires: 1_758_000_060, origin: "gw-a", protocol: .spa2)
        #expect(String(decoding: value.json, as: UTF8.self) == #"{"expires":1758000060,"origin":"gw-a","protocol":"spa2"}"#)
        #expect(GrantValue(json: value.json) == value)
        let forever = GrantValue(expires: nil, origin: "gw-\"b", protocol: .admin)
        #expect(String(decoding: forever.json, as: UTF8.self) == #"{"expires":null,"origin":"gw-\"b","protocol":"admin"}"#)
        #expect(GrantValue(json: forever.json) == forever)
        #expect(GrantValue(json: Array(#"{"expires":1}"#.utf8)) == nil)
        #expect(GrantValue(json: Array(#"{"expires":1,"origin":"a","protocol":"telnet"}"#.utf8)) == nil)
    }

    @Test func prefixRangeEndIsThePrefixWithItsLastByteIncremented() {
        #expect(EtcdMessages.prefixRangeEnd("/pknock/") == EtcdMessages.base64("/pknock0"))
        #expect(EtcdMessages.prefixRangeEnd("a\u{7f}") == EtcdMessages.base64([0x61, 0x80]))
    }
}

@Suite struct FleetTransactionTests {
    let layout = FleetKeyLayout(prefix: "/pk")
    let ssh = RuleName(rawValue: "SSH")!
    let peer = PeerAddress("198.51.100.7")!

    func json(_ request: EtcdMessages.TxnRequest) throws -> [String: Any] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try JSONSerialization.jsonObject(with: try encoder.encode(request)) as! [String: Any]
    }

    func decoded(_ base64: Any?) -> String {
        (base64 as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? "?"
    }

    @Test func anSPAGrantComparesTheReplayKeyThenPutsBothKeysOnTheirLeases() throws {
        let grant = FleetGrant(
            rule: ssh, peer: peer, expires: 1_758_000_060, ttlSeconds: 60, replayKey: .spa2(nonce: [1, 2]), replayTTLSeconds: 120,
            grantProtocol: .spa2)
        #expect(FleetTransactions.leaseTTLs(of: grant) == (grant: 65, replay: 125))
        let body = try json(FleetTransactions.grantTransaction(grant, layout: layout, origin: "gw-a", token: 0xbeef, grantLease: 11, replayLease: 22))
        let compare = try #require((body["compare"] as? [[String: Any]])?.first)
        #expect(decoded(compare["key"]) == "/pk/replay/spa2/SSH/0102")
        #expect(compare["target"] as? String == "CREATE" && compare["result"] as? String == "EQUAL")
        #expect(compare["create_revision"] as? String == "0")
        let puts = try #require(body["success"] as? [[String: Any]]).compactMap { $0["request_put"] as? [String: Any] }
        #expect(puts.count == 2)
        #expect(decoded(puts[0]["key"]) == "/pk/replay/spa2/SSH/0102" && decoded(puts[0]["value"]) == "gw-a beef")
        #expect(puts[0]["lease"] as? String == "22")
        #expect(decoded(puts[1]["key"]) == "/pk/grants/SSH/198.51.100.7")
        #expect(decoded(puts[1]["value"]) == #"{"expires":1758000060,"origin":"gw-a","protocol":"spa2"}"#)
        #expect(puts[1]["lease"] as? String == "11")
        // Failing the compare, it reads the replay key back.
        let reads = try #require(body["failure"] as? [[String: Any]]).compactMap { $0["request_range"] as? [String: Any] }
        #expect(reads.count == 1 && decoded(reads.first?["key"]) == "/pk/replay/spa2/SSH/0102")
    }

    /// A transaction's answer as etcd 3.4's gateway writes it: `succeeded` left out when false, the
    /// failure branch's range under `responses`.
    func txnResponse(failedWithReplayValue value: String?) throws -> EtcdMessages.TxnResponse {
        let kvs =
            value.map {
                #","kvs":[{"key":"L3BrL3JlcGxheQ==","create_revision":"7","mod_revision":"7","version":"1","#
                    + #""value":"\#(EtcdMessages.base64($0))","lease":"22"}]"#
            } ?? ""
        let json =
            #"{"header":{"cluster_id":"1","member_id":"2","revision":"9","raft_term":"3"},"#
            + #""responses":[{"response_range":{"header":{"revision":"9"}\#(kvs),"count":"\#(value == nil ? 0 : 1)"}}]}"#
        return try JSONDecoder().decode(EtcdMessages.TxnResponse.self, from: Data(json.utf8))
    }

    @Test func aTransactionThatFindsItsOwnReplayValueCommittedEarlierAndAnyOtherIsAReplay() throws {
        let own = FleetTransactions.replayValue(origin: "gw-a", token: 0xbeef)
        #expect(own == "gw-a beef")
        let succeeded = try JSONDecoder().decode(EtcdMessages.TxnResponse.self, from: Data(#"{"header":{"revision":"9"},"succeeded":true}"#.utf8))
        #expect(FleetTransactions.committed(succeeded, replayValue: own))
        // Sent again after a lost answer: the key holds this commit's own value.
        #expect(FleetTransactions.committed(try txnResponse(failedWithReplayValue: own), replayValue: own))
        // Another commit's value (a replay at this or another gateway), the same node with another token, or no key read back.
        #expect(!FleetTransactions.committed(try txnResponse(failedWithReplayValue: "gw-c beef"), replayValue: own))
        #expect(!FleetTransactions.committed(try txnResponse(failedWithReplayValue: "gw-a beee"), replayValue: own))
        #expect(!FleetTransactions.committed(try txnResponse(failedWithReplayValue: nil), replayValue: own))
        #expect(!FleetTransactions.committed(EtcdMessages.TxnResponse(header: nil, succeeded: nil, responses: nil), replayValue: own))
    }

    @Test func aKnockGrantWithoutAutocloseIsOnePutWithoutCompareOrLease() throws {
        let grant = FleetGrant(rule: ssh, peer: peer, expires: nil, ttlSeconds: nil, replayKey: nil, replayTTLSeconds: 0, grantProtocol: .knock)
        #expect(FleetTransactions.leaseTTLs(of: grant) == (grant: nil, replay: nil))
        let body = try json(FleetTransactions.grantTransaction(grant, layout: layout, origin: "gw-b", token: 1, grantLease: nil, replayLease: nil))
        #expect((body["compare"] as? [Any])?.isEmpty == true)
        let puts = try #require(body["success"] as? [[String: Any]]).compactMap { $0["request_put"] as? [String: Any] }
        #expect(puts.count == 1 && puts[0]["lease"] == nil)
        #expect(decoded(puts[0]["value"]) == #"{"expires":null,"origin":"gw-b","protocol":"knock"}"#)
    }
}
