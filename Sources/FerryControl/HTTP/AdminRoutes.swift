import FerryCore
import Hummingbird
import Logging

/// The endpoints that change state, behind `admin.token-file`:
/// `Authorization: Bearer TOKEN`, compared in constant time. Without a token
/// configured they are off (403), so nothing is changed by whoever can reach
/// the port. Read-only endpoints (`/metrics`, `/v1/status`, health) stay open.
///
/// - `POST /v1/reopen`: what SIGHUP does — reopen `log.file` and every `file:`
///   upstream (after logrotate moved them), for hosts where signalling the
///   process is not an option (a sidecar, another user).
/// - `POST /v1/reload`: what SIGHUP does to the configuration — read it again,
///   validate all of it, apply the difference; 200 with what changed, or 422
///   with why it was refused (the configuration in force keeps running).
struct AdminRoutes {
    /// What an admin endpoint may do to the process.
    struct Actions: Sendable {
        /// Reopens the log file and `file:` upstreams; returns what it reopened.
        var reopen: @Sendable () -> [String]
        /// Reloads the configuration; returns what that did.
        var reload: (@Sendable () async -> ReloadStats.Outcome)?
    }

    let token: AdminToken?
    let actions: Actions
    let logger: Logger

    func register(on router: Router<FerryRequestContext>) {
        router.post("v1/reopen") { request, context in
            if let refusal = authorize(request, context: context) { return refusal }
            let files = actions.reopen()
            logger.notice("POST /v1/reopen: files reopened", metadata: ["files": "\(files.joined(separator: ","))"])
            return try JSONResponse.make(ReopenBody(status: "ok", reopened: files))
        }
        router.post("v1/reload") { request, context in
            if let refusal = authorize(request, context: context) { return refusal }
            guard let reload = actions.reload else {
                return try JSONResponse.make(ReasonBody(status: "error", reason: "reload is not available"), status: .serviceUnavailable)
            }
            let outcome = await reload()
            return try JSONResponse.make(outcome, status: outcome.result == "success" ? .ok : .unprocessableContent)
        }
    }

    /// Nil when the request may go on; else the answer that refuses it.
    private func authorize(_ request: Request, context: FerryRequestContext) -> Response? {
        guard let token else {
            return try? JSONResponse.make(
                ReasonBody(status: "error", reason: "admin endpoints are off: set admin.token-file (--admin-token-file)"), status: .forbidden)
        }
        guard token.authorizes(request.headers[.authorization]) else {
            logger.warning(
                "admin request refused", metadata: ["http.path": "\(request.uri.path)", "reason": "missing or wrong bearer token"])
            var response =
                (try? JSONResponse.make(
                    ReasonBody(status: "error", reason: "unauthorized: Authorization: Bearer <admin token> needed"), status: .unauthorized))
                ?? Response(status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer realm=\"ferry\""
            return response
        }
        return nil
    }
}

private struct ReopenBody: Encodable {
    var status: String
    var reopened: [String]
}
