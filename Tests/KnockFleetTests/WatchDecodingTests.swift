import Foundation
import KnockCore
import Testing

@testable import KnockFleet

@Suite struct WatchDecodingTests {
    let layout = FleetKeyLayout(prefix: "/pknock")

    func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    @Test func theSplitterFindsObjectsAcrossChunksAndIgnoresBracesInStrings() throws {
        var splitter = JSONObjectSplitter()
        let text = #"{"result":{"a":"}{\"x"}}"# + "\n" + #"{"result":{}}"#
        let bytes = Array(text.utf8)
        var objects: [[UInt8]] = []
        for chunk in stride(from: 0, to: bytes.count, by: 5) {
            objects += try splitter.feed(bytes[chunk..<min(chunk + 5, bytes.count)])
        }
        #expect(objects.map { String(decoding: $0, as: UTF8.self) } == [#"{"result":{"a":"}{\"x"}}"#, #"{"result":{}}"#])
    }

    @Test func anOversizedObjectIsAnError() {
        var splitter = JSONObjectSplitter(maximumObjectSize: 8)
        #expect(throws: FleetError.self) { try splitter.feed(Array(#"{"aaaaaaaaaaaa":1}"#.utf8)) }
    }

    @Test func putsAndDeletesOfGrantsDecodeOtherKeysAreSkipped() throws {
        let value = b64(#"{"expires":1758000060,"origin":"gw-a","protocol":"knock"}"#)
        let message = """
            {"result":{"header":{"revision":"42"},"events":[
            {"kv":{"key":"\(b64("/pknock/grants/SSH/192.0.2.10"))","value":"\(value)","mod_revision":"41"}},
            {"type":"DELETE","kv":{"key":"\(b64("/pknock/grants/SSH/2001:db8::5"))","mod_revision":"42"}},
            {"kv":{"key":"\(b64("/pknock/replay/spa1/SSH/192.0.2.10/5"))","value":"\(b64("gw-a"))"}}]}}
            """
        let ssh = RuleName(rawValue: "SSH")!
        #expect(
            try WatchUpdate.decode(Array(message.utf8), layout: layout)
                == .changes(
                    [
                        .put(
                            rule: ssh, peer: PeerAddress("192.0.2.10")!, value: GrantValue(expires: 1_758_000_060, origin: "gw-a", protocol: .knock),
                            revision: 41),
                        .delete(rule: ssh, peer: PeerAddress("2001:db8::5")!, revision: 42),
                    ], revision: 42))
    }

    @Test func createdProgressCompactionAndCancelAreTold() throws {
        func decode(_ text: String) throws -> WatchUpdate { try WatchUpdate.decode(Array(text.utf8), layout: layout) }
        #expect(try decode(#"{"result":{"header":{"revision":"7"},"created":true}}"#) == .created(revision: 7))
        #expect(try decode(#"{"result":{"header":{"revision":"9"}}}"#) == .progress(revision: 9))
        #expect(try decode(#"{"result":{"header":{"revision":"9"},"compact_revision":"5","canceled":true}}"#) == .compacted(revision: 5))
        #expect(try decode(#"{"result":{"header":{},"canceled":true,"cancel_reason":"no leader"}}"#) == .canceled(reason: "no leader"))
        #expect(throws: FleetError.self) { try decode(#"{"error":{"code":14,"message":"etcdserver: no leader"}}"#) }
        #expect(throws: FleetError.self) { try decode("{not json}") }
    }
}

@Suite struct FleetMirrorTests {
    let ssh = RuleName(rawValue: "SSH")!
    func grant(_ peer: String) -> MirroredGrant { MirroredGrant(rule: ssh, peer: PeerAddress(peer)!) }
    func value(_ expires: Int64?) -> GrantValue { GrantValue(expires: expires, origin: "gw-b", protocol: .knock) }

    @Test func reconcileRemovesWhatEtcdLacksAndAddsWhatItHas() {
        let plan = FleetMirror.reconcile(
            local: [grant("192.0.2.1"): 30, grant("192.0.2.2"): 30, grant("192.0.2.3"): nil, grant("192.0.2.9"): 10],
            remote: [
                grant("192.0.2.2"): value(1_030),  // same time left: kept as is
                grant("192.0.2.3"): value(1_100),  // local has no timeout, etcd has one: refreshed
                grant("192.0.2.4"): value(1_050),  // missing locally: added
                grant("192.0.2.5"): value(999),  // lapsed: ignored
                grant("192.0.2.6"): value(nil),  // no autoclose: added without timeout
            ],
            localOnly: [grant("192.0.2.9")], wallSeconds: 1_000)
        #expect(plan.remove == [grant("192.0.2.1")])
        #expect(plan.add.map(\.grant) == [grant("192.0.2.3"), grant("192.0.2.4"), grant("192.0.2.6")])
        #expect(plan.add.map(\.remaining) == [100, 50, nil])
    }
}
