import Foundation

/// The JSON bodies of etcd v3's gRPC gateway (`/v3/...`): keys and values in base64, 64-bit
/// integers as strings, fields left out when zero (proto3 JSON).
public enum EtcdMessages {
    /// A response header.
    public struct Header: Codable, Equatable, Sendable {
        public var revision: String?
        public var cluster_id: String?
        public var member_id: String?
        /// The revision, 0 when absent.
        public var revisionNumber: Int64 { revision.flatMap(Int64.init) ?? 0 }
    }

    /// A key-value pair as etcd reports it.
    public struct KeyValue: Codable, Equatable, Sendable {
        public var key: String?
        public var value: String?
        public var create_revision: String?
        public var mod_revision: String?
        public var lease: String?

        /// The key's text.
        public var keyText: String { key.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? "" }
        /// The value's bytes.
        public var valueBytes: [UInt8] { value.flatMap { Data(base64Encoded: $0) }.map { Array($0) } ?? [] }
        /// The modification revision, 0 when absent.
        public var modRevision: Int64 { mod_revision.flatMap(Int64.init) ?? 0 }
    }

    /// `/v3/kv/range` request.
    public struct RangeRequest: Codable, Equatable, Sendable {
        public var key: String
        public var range_end: String?
        public var revision: String?
    }

    /// `/v3/kv/range` response.
    public struct RangeResponse: Codable, Equatable, Sendable {
        public var header: Header?
        public var kvs: [KeyValue]?
        public var more: Bool?
        public var count: String?
    }

    /// A comparison of a transaction.
    public struct Compare: Codable, Equatable, Sendable {
        public var key: String
        public var target: String
        public var result: String
        public var create_revision: String?
    }

    /// A put.
    public struct PutRequest: Codable, Equatable, Sendable {
        public var key: String
        public var value: String
        public var lease: String?
    }

    /// A delete.
    public struct DeleteRangeRequest: Codable, Equatable, Sendable {
        public var key: String
        public var range_end: String?
    }

    /// One operation of a transaction branch.
    public struct RequestOp: Codable, Equatable, Sendable {
        public var request_put: PutRequest?
        public var request_delete_range: DeleteRangeRequest?
        public var request_range: RangeRequest?
    }

    /// The result of one operation of the branch a transaction ran (only ranges are read).
    public struct ResponseOp: Codable, Equatable, Sendable {
        public var response_range: RangeResponse?
    }

    /// `/v3/kv/txn` request.
    public struct TxnRequest: Codable, Equatable, Sendable {
        public var compare: [Compare]
        public var success: [RequestOp]
        public var failure: [RequestOp]
    }

    /// `/v3/kv/txn` response (`succeeded` is absent when false).
    public struct TxnResponse: Codable, Equatable, Sendable {
        public var header: Header?
        public var succeeded: Bool?
        public var responses: [ResponseOp]?
    }

    /// `/v3/kv/deleterange` response.
    public struct DeleteRangeResponse: Codable, Equatable, Sendable {
        public var header: Header?
        public var deleted: String?
    }

    /// `/v3/lease/grant` request.
    public struct LeaseGrantRequest: Codable, Equatable, Sendable {
        public var TTL: String
    }

    /// `/v3/lease/grant` response.
    public struct LeaseGrantResponse: Codable, Equatable, Sendable {
        public var header: Header?
        public var ID: String?
        public var TTL: String?
        public var error: String?
    }

    /// `/v3/auth/authenticate` request and response.
    public struct AuthenticateRequest: Codable, Equatable, Sendable {
        public var name: String
        public var password: String
    }
    public struct AuthenticateResponse: Codable, Equatable, Sendable {
        public var header: Header?
        public var token: String?
    }

    /// `/v3/watch` request: one create request.
    public struct WatchRequest: Codable, Equatable, Sendable {
        public struct Create: Codable, Equatable, Sendable {
            public var key: String
            public var range_end: String?
            public var start_revision: String?
            public var progress_notify: Bool?
        }
        public var create_request: Create
    }

    /// One message of the watch stream.
    public struct WatchMessage: Codable, Equatable, Sendable {
        public struct Event: Codable, Equatable, Sendable {
            /// "PUT" is the zero value and so usually absent; "DELETE" otherwise.
            public var type: String?
            public var kv: KeyValue?
        }
        public struct Result: Codable, Equatable, Sendable {
            public var header: Header?
            public var watch_id: String?
            public var created: Bool?
            public var canceled: Bool?
            public var compact_revision: String?
            public var cancel_reason: String?
            public var events: [Event]?
        }
        public struct Failure: Codable, Equatable, Sendable {
            public var code: Int?
            public var message: String?
        }
        public var result: Result?
        public var error: Failure?
    }

    /// etcd's error body (`{"error": "...", "code": N}`).
    public struct ErrorBody: Codable, Equatable, Sendable {
        public var error: String?
        public var message: String?
        public var code: Int?
    }

    /// Base64 of a key's text.
    public static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
    /// Base64 of bytes.
    public static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The end of the range of every key starting with `prefix` (the prefix with its last byte + 1).
    public static func prefixRangeEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return base64(bytes)
            }
            bytes.removeLast()
        }
        return base64([0])
    }
}
