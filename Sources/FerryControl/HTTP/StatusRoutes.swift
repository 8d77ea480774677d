import FerryCore
import Hummingbird

/// `GET /v1/status`: the relay's state and counters as JSON.
struct StatusRoutes {
    let relay: Relay

    func register(on router: Router<BasicRequestContext>) {
        router.get("v1/status") { _, _ in
            try JSONResponse.make(StatusDocument(relay: relay))
        }
    }
}
