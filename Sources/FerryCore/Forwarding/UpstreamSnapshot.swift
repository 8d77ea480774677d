/// What `/v1/status` shows of one upstream.
public struct UpstreamSnapshot: Sendable, Codable, Equatable {
    public struct Breaker: Sendable, Codable, Equatable {
        public var state: String
        public var failureRate: Double
        public var trips: Int
        public var transitions: [String: Int]
        public var lastTransition: String?
    }

    public struct Budget: Sendable, Codable, Equatable {
        public var tokens: Double
        public var retries: Int
        public var exhausted: Int
        public var firstAttempts: Int
    }

    /// `ferry://`: how its frames fare on the path (loss is repaired, not a failure).
    public struct Frames: Sendable, Codable, Equatable {
        /// Frames sent (first sends).
        public var sent: Int
        /// Frames sent again because the receiver answered later frames but not them (lost on the way, or their ack was).
        public var lossRepairs: Int
        /// Frames renewed at the end of their TTL under the same identity (the receiver answers, their acks were lost).
        public var renewals: Int
        /// Moves to a new source port after the receiver stopped answering.
        public var pathChanges: Int
        /// Smoothed round-trip time of frame and ack; nil before the first.
        public var roundTripMilliseconds: Double?
    }

    public var url: String
    public var index: Int
    public var state: String
    public var breaker: Breaker
    public var retryBudget: Budget
    public var inFlightFrames: Int
    public var retries: Int
    public var frames: Frames?
    public var failovers: Int
    public var forwarded: Int
    public var forwardedBytes: Int
    /// `file:` only: partial last lines found on open and ended with a newline.
    public var fileFragmentsEnded: Int
    /// `tcp://`, `tls://`: logs written again after a connection dropped before the peer acknowledged them.
    public var resent: Int
    /// `tcp://`, `tls://`: logs written and not yet acknowledged by the peer's TCP.
    public var unacknowledged: Int
    /// `tls://`: failed handshakes by reason.
    public var tlsFailures: [String: Int]
    /// `tls://` with `upstream-tls.insecure`: the server's certificate and name are not checked.
    public var tlsInsecure: Bool
    /// `ferry://`: acks ignored as not signed by a key this Ferry holds, by reason.
    public var unauthenticatedAcks: [String: Int]
    public var sendErrors: [String: Int]
    public var lastError: String?
    /// The address traffic goes to now (`udp://`, `ferry://`).
    public var address: String?
    /// Every address the upstream's name resolved to last time.
    public var addresses: [String]
    /// Set while the name does not resolve (the last good address is kept).
    public var resolution: String?
}
