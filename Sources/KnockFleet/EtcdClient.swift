import AsyncHTTPClient
import Foundation
import KnockCore
import NIOCore
import NIOSSL
import Synchronization

/// Where and how to reach etcd.
public struct EtcdEndpoints: Sendable {
    /// Base URLs ("http://198.51.100.11:2379"), tried in turn.
    public var urls: [String]
    /// PEM file of the CA that signs the servers' certificates (https only).
    public var caFile: String?
    /// PEM client certificate and key (https only).
    public var certFile: String?
    public var keyFile: String?
    /// etcd user name and password (`/v3/auth/authenticate`).
    public var username: String?
    public var password: String?
    /// How long a connection to one endpoint may take before the next endpoint is tried.
    public var connectTimeout: Duration

    /// Makes endpoints.
    public init(
        urls: [String], caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, username: String? = nil,
        password: String? = nil, connectTimeout: Duration = .seconds(2)
    ) {
        self.urls = urls
        self.connectTimeout = connectTimeout
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.username = username
        self.password = password
    }
}

/// A thin etcd v3 client over the JSON gateway (HTTP/1.1).
///
/// Each call is one POST, the watch a streamed response. Fails over between endpoints: a connection
/// that is refused or not made within ``EtcdEndpoints/connectTimeout`` fails at once (the HTTP
/// client's own retries of a connection are off, since they would spend the whole deadline on a dead
/// member) and the call moves on to the next endpoint. Keeps the auth token and re-authenticates
/// when etcd says the token is invalid.
public final class EtcdClient: Sendable {
    private let http: HTTPClient
    private let endpoints: EtcdEndpoints
    private struct State: Sendable {
        var current = 0
        var token: String?
    }
    private let state = Mutex(State())

    /// Makes a client; throws when the TLS files cannot be read.
    public init(endpoints: EtcdEndpoints) throws {
        self.endpoints = endpoints
        var configuration = HTTPClient.Configuration()
        if endpoints.urls.contains(where: { $0.hasPrefix("https://") }) {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caFile = endpoints.caFile { tls.trustRoots = .file(caFile) }
            if let certFile = endpoints.certFile, let keyFile = endpoints.keyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
                tls.privateKey = .file(keyFile)
            }
            configuration.tlsConfiguration = tls
        }
        configuration.timeout = .init(connect: .nanoseconds(endpoints.connectTimeout.nanosecondsClamped))
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections.
    public func shutdown() async {
        try? await http.shutdown()
    }

    // MARK: Calls

    /// Every key from `prefix` on, with the revision of the read.
    public func range(prefix: String, timeout: Duration) async throws -> EtcdMessages.RangeResponse {
        try await call(
            "/v3/kv/range", EtcdMessages.RangeRequest(key: EtcdMessages.base64(prefix), range_end: EtcdMessages.prefixRangeEnd(prefix)),
            timeout: timeout)
    }

    /// Runs a transaction.
    public func txn(_ request: EtcdMessages.TxnRequest, timeout: Duration) async throws -> EtcdMessages.TxnResponse {
        try await call("/v3/kv/txn", request, timeout: timeout)
    }

    /// Deletes one key.
    public func delete(key: String, timeout: Duration) async throws -> EtcdMessages.DeleteRangeResponse {
        try await call("/v3/kv/deleterange", EtcdMessages.DeleteRangeRequest(key: EtcdMessages.base64(key)), timeout: timeout)
    }

    /// A lease of `ttl` seconds; returns its id.
    public func grantLease(ttl: Int64, timeout: Duration) async throws -> Int64 {
        let response: EtcdMessages.LeaseGrantResponse = try await call("/v3/lease/grant", EtcdMessages.LeaseGrantRequest(TTL: "\(ttl)"), timeout: timeout)
        if let error = response.error, !error.isEmpty { throw FleetError("lease refused: \(error)") }
        guard let id = response.ID.flatMap(Int64.init) else { throw FleetError("lease grant without an id") }
        return id
    }

    /// Watches every key from `prefix` on, from `revision`.
    ///
    /// With progress notifications and only while the member has a leader; calls `onObject` with each message until the stream ends
    /// (returns) or fails (throws). `onObject` returning false ends the watch.
    public func watch(prefix: String, fromRevision revision: Int64, onObject: ([UInt8]) async throws -> Bool) async throws {
        let body = EtcdMessages.WatchRequest(
            create_request: .init(
                key: EtcdMessages.base64(prefix), range_end: EtcdMessages.prefixRangeEnd(prefix), start_revision: "\(revision)",
                progress_notify: true))
        let response = try await openStream("/v3/watch", body: try JSONEncoder().encode(body))
        guard response.status == .ok else {
            let bytes = try await response.body.collect(upTo: 1 << 16)
            throw Self.failure(status: response.status.code, body: Array(buffer: bytes))
        }
        var splitter = JSONObjectSplitter()
        for try await chunk in response.body {
            for object in try splitter.feed(chunk.readableBytesView) {
                if try await !onObject(object) { return }
            }
        }
    }

    // MARK: Plumbing

    private func call<Request: Encodable, Response: Decodable>(_ path: String, _ request: Request, timeout: Duration) async throws -> Response {
        let body = try JSONEncoder().encode(request)
        let deadline = NIODeadline.now() + .nanoseconds(timeout.nanosecondsClamped)
        let count = max(1, endpoints.urls.count)
        // Each call walks the endpoints from the last one that answered; a refused or reset
        // connection moves on to the next while time remains (twice round at most), and the next
        // call starts past the endpoint that failed.
        let first = state.withLock { $0.current }
        var lastError: any Error = FleetError("no endpoints")
        var reauthenticated = false
        var attempt = 0
        while attempt < 2 * count {
            let index = (first + attempt) % count
            do {
                let response = try await send(path, body: body, deadline: deadline, endpoint: index)
                let bytes = Array(buffer: try await response.body.collect(upTo: 64 << 20))
                if response.status == .ok {
                    state.withLock { $0.current = index }
                    do {
                        return try JSONDecoder().decode(Response.self, from: Data(bytes))
                    } catch {
                        throw FleetError("unreadable answer to \(path): \(error)")
                    }
                }
                let failure = Self.failure(status: response.status.code, body: bytes)
                if response.status.code == 401, failure.message.contains("invalid auth token"), !reauthenticated {
                    // The simple token expired: authenticate again and retry once.
                    reauthenticated = true
                    state.withLock { $0.token = nil }
                    continue
                }
                if response.status == .serviceUnavailable {
                    // "no leader" and the like: this member cannot serve now, another may.
                    lastError = failure
                    moveOn(from: index)
                    attempt += 1
                    if NIODeadline.now() >= deadline { break }
                    continue
                }
                throw failure
            } catch let error as FleetError {
                throw error
            } catch {
                lastError = error
                moveOn(from: index)
                attempt += 1
                if NIODeadline.now() >= deadline { break }
            }
        }
        throw FleetError("etcd unreachable: \(lastError)")
    }

    /// The next call starts past `index` (unless another call already moved on).
    private func moveOn(from index: Int) {
        let count = max(1, endpoints.urls.count)
        state.withLock { if $0.current == index { $0.current = (index + 1) % count } }
    }

    /// Sends a streamed request to the first endpoint that takes it, from the last one that answered.
    private func openStream(_ path: String, body: Data) async throws -> HTTPClientResponse {
        let count = max(1, endpoints.urls.count)
        let first = state.withLock { $0.current }
        var lastError: any Error = FleetError("no endpoints")
        for attempt in 0..<count {
            let index = (first + attempt) % count
            do {
                let response = try await send(path, body: body, deadline: nil, endpoint: index)
                state.withLock { $0.current = index }
                return response
            } catch let error as FleetError {
                throw error
            } catch {
                lastError = error
                moveOn(from: index)
            }
        }
        throw FleetError("etcd unreachable: \(lastError)")
    }

    private func send(_ path: String, body: Data, deadline: NIODeadline?, endpoint: Int? = nil) async throws -> HTTPClientResponse {
        let index = endpoint ?? state.withLock { $0.current }
        let base = endpoints.urls[index % endpoints.urls.count]
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        // etcd's "require leader": a member cut off from the leader refuses instead of serving stale data.
        request.headers.add(name: "Grpc-Metadata-Hasleader", value: "true")
        if path != "/v3/auth/authenticate", let token = try await token(deadline: deadline, endpoint: index) {
            request.headers.add(name: "Authorization", value: token)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        return try await http.execute(request, deadline: deadline ?? .distantFuture)
    }

    private func token(deadline: NIODeadline?, endpoint: Int) async throws -> String? {
        guard let username = endpoints.username, let password = endpoints.password else { return nil }
        if let token = state.withLock({ $0.token }) { return token }
        let body = try JSONEncoder().encode(EtcdMessages.AuthenticateRequest(name: username, password: password))
        let response = try await send("/v3/auth/authenticate", body: body, deadline: deadline ?? .now() + .seconds(5), endpoint: endpoint)
        let bytes = Array(buffer: try await response.body.collect(upTo: 1 << 16))
        guard response.status == .ok else { throw Self.failure(status: response.status.code, body: bytes) }
        guard let token = try JSONDecoder().decode(EtcdMessages.AuthenticateResponse.self, from: Data(bytes)).token else {
            throw FleetError("authentication answer without a token")
        }
        state.withLock { $0.token = token }
        return token
    }

    static func failure(status: UInt, body: [UInt8]) -> FleetError {
        let decoded = try? JSONDecoder().decode(EtcdMessages.ErrorBody.self, from: Data(body))
        return FleetError("etcd answered \(status): \(decoded?.error ?? decoded?.message ?? String(decoding: body.prefix(200), as: UTF8.self))")
    }
}
