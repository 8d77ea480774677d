import NIOCore
import Synchronization

/// One configured upstream as the whole process sees it: its URL, its place in
/// the failover order, whether any event loop can send to it, and its counters.
///
/// Each event loop drives its own ``UpstreamLane`` for this upstream; lanes
/// publish their availability here so the control plane can read it without
/// touching a loop.
public final class Upstream: Sendable {
    public let url: UpstreamURL
    /// Position in the failover order (0 is tried first).
    public let index: Int
    /// Logs and bytes this upstream accepted (written to the file or the socket).
    let forwarded = AtomicCounter()
    let forwardedBytes = AtomicCounter()
    /// Send or write errors by reason.
    let sendErrors: [AtomicCounter] = SendErrorReason.allCases.map { _ in AtomicCounter() }
    private let laneAvailable: [AtomicFlag]
    private let lastError = Mutex<String?>(nil)
    private let hold = Mutex(Hold())

    /// A pause on sending after the upstream refused traffic, growing while refusals repeat.
    private struct Hold {
        var until: NIODeadline = .uptimeNanoseconds(0)
        var streak = 0
        var lastRefusal: NIODeadline = .uptimeNanoseconds(0)
    }

    init(url: UpstreamURL, index: Int, lanes: Int) {
        self.url = url
        self.index = index
        self.laneAvailable = (0..<lanes).map { _ in AtomicFlag(false) }
    }

    func setAvailable(_ available: Bool, lane: Int) {
        laneAvailable[lane].store(available)
    }

    func setAvailableOnAllLanes(_ available: Bool) {
        for lane in laneAvailable.indices { setAvailable(available, lane: lane) }
    }

    func recordError(_ reason: SendErrorReason, detail: String) {
        sendErrors[reason.rawValue].add(1)
        lastError.withLock { $0 = "\(reason): \(detail)" }
    }

    /// Stops traffic to this upstream for a while after it refused a send: 1 s,
    /// doubling while refusals keep coming (up to 30 s), so Ferry does not keep
    /// sending into a port nobody listens on. Returns how long the hold lasts.
    @discardableResult
    func holdAfterRefusal(now: NIODeadline = .now()) -> TimeAmount {
        hold.withLock { hold in
            if now - hold.lastRefusal > .seconds(60) { hold.streak = 0 }
            hold.streak += 1
            hold.lastRefusal = now
            let pause = TimeAmount.seconds(Int64(min(1 << min(hold.streak - 1, 5), 30)))
            hold.until = now + pause
            return pause
        }
    }

    /// True while a refusal hold is in force.
    func isHeld(now: NIODeadline = .now()) -> Bool {
        hold.withLock { now < $0.until }
    }

    /// True when at least one event loop can send to this upstream now.
    public var isAvailable: Bool {
        !isHeld() && laneAvailable.contains { $0.load }
    }

    /// A point-in-time view for `/v1/status` and `/metrics`.
    public var snapshot: UpstreamSnapshot {
        UpstreamSnapshot(
            url: url.description,
            index: index,
            state: isHeld() ? "held" : (isAvailable ? "available" : "unavailable"),
            forwarded: forwarded.load,
            forwardedBytes: forwardedBytes.load,
            sendErrors: Dictionary(uniqueKeysWithValues: SendErrorReason.allCases.map { ($0.description, sendErrors[$0.rawValue].load) }),
            lastError: lastError.withLock { $0 })
    }
}

/// What `/v1/status` shows of one upstream.
public struct UpstreamSnapshot: Sendable, Codable, Equatable {
    public var url: String
    public var index: Int
    public var state: String
    public var forwarded: Int
    public var forwardedBytes: Int
    public var sendErrors: [String: Int]
    public var lastError: String?
}

/// Why a send to an upstream failed, as counted per upstream.
public enum SendErrorReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    case wouldBlock, noBufferSpace, refused, unreachable, other

    public var description: String {
        switch self {
        case .wouldBlock: return "would_block"
        case .noBufferSpace: return "no_buffer_space"
        case .refused: return "refused"
        case .unreachable: return "unreachable"
        case .other: return "other"
        }
    }
}
