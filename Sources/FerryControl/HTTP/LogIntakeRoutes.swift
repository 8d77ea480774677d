import FerryCore
import Hummingbird

/// `POST /v1/logs`: newline-delimited log lines, each handled exactly like a
/// received datagram. All lines of a request are taken or none are.
///
/// 202 with the accepted count; 413 over `http.max-body-bytes`; 403 for a
/// client `allow` does not cover; 429 when the buffer cannot hold the request
/// or the client has not the rate limit's tokens for all its lines; 503 while
/// starting or draining.
struct LogIntakeRoutes {
    let handle: RelayHandle
    let limit: Int

    struct Accepted: Encodable {
        var accepted: Int
    }

    func register(on router: Router<FerryRequestContext>) {
        let limit = self.limit
        let handle = self.handle
        router.post("v1/logs") { request, context in
            // Refused from the head alone, before any of the body is read (the
            // connection is then closed, see GuardedHTTP1Channel).
            if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
                return try JSONResponse.make(
                    ReasonBody(status: "error", reason: "body larger than http.max-body-bytes (\(limit) bytes)"),
                    status: .contentTooLarge)
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: limit)
            } catch let error as HTTPError where error.status == .contentTooLarge {
                return try JSONResponse.make(
                    ReasonBody(status: "error", reason: "body larger than http.max-body-bytes (\(limit) bytes)"),
                    status: .contentTooLarge)
            }
            guard let relay = handle.relay else {
                return try JSONResponse.make(ReasonBody(status: "error", reason: "starting"), status: .serviceUnavailable)
            }
            let lines = LineSplitter.lines(of: body)
            switch await relay.ingest(lines, from: context.remoteAddress) {
            case .accepted(let count):
                return try JSONResponse.make(Accepted(accepted: count), status: .accepted)
            case .bufferFull:
                return try JSONResponse.make(
                    ReasonBody(status: "error", reason: "buffer full (queue_full); retry later"), status: .tooManyRequests)
            case .spoolFull:
                return try JSONResponse.make(
                    ReasonBody(status: "error", reason: "spool full (spool_full or spool_write_failed); retry later"),
                    status: .init(code: 507, reasonPhrase: "Insufficient Storage"))
            case .denied:
                return try JSONResponse.make(ReasonBody(status: "error", reason: "client not allowed (denied)"), status: .forbidden)
            case .rateLimited:
                return try JSONResponse.make(
                    ReasonBody(
                        status: "error",
                        reason:
                            "client over its rate limit for this request's lines (rate_limited); retry later, or send at most rate-limit.burst lines per request"
                    ),
                    status: .tooManyRequests)
            case .draining:
                return try JSONResponse.make(ReasonBody(status: "error", reason: "draining"), status: .serviceUnavailable)
            }
        }
    }
}
