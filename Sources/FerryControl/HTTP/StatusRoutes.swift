import FerryCore
import Hummingbird

/// `GET /v1/status`: the relay's state and counters as JSON (503 `starting` until it runs).
struct StatusRoutes {
    let handle: RelayHandle

    func register(on router: Router<FerryRequestContext>) {
        router.get("v1/status") { _, _ in
            guard let relay = handle.relay else {
                return try JSONResponse.make(ReasonBody(status: "starting"), status: .serviceUnavailable)
            }
            return try JSONResponse.make(StatusDocument(relay: relay, reloads: handle.reloads))
        }
    }
}
