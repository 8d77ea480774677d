// The keys of resilient forwarding (`forward.*`, `retry.*`, `breaker.*`), defined once; see `ConfigurationKey+Definitions.swift`.

extension ConfigurationKey {
    public static let frameMaxBytes = ConfigurationKey(
        "forward.frame-max-bytes", flag: "frame-max-bytes", .byteSize(64...65_000), default: "65000",
        help: "largest ferry:// frame; frames are also cut to the path MTU",
        details: """
            (`IP_MTU` less IP and UDP headers: 1,472 bytes over a 1,500-byte Ethernet MTU, all 65,000 on loopback), \
            so no frame is fragmented; the receiving Ferry's `datagram.max-bytes` must take them
            """)
    public static let ackTimeout = ConfigurationKey(
        "forward.ack-timeout", flag: "ack-timeout", .duration(.milliseconds(10) ... .seconds(60)), default: "500ms",
        help: "wait for a frame's acknowledgement before it counts as failed")
    public static let frameTTL = ConfigurationKey(
        "forward.frame-ttl", flag: "frame-ttl", .duration(.seconds(1) ... .seconds(3600)), default: "10s",
        help: "how long a frame stays deliverable before its logs may go elsewhere; longer than forward.ack-timeout")
    public static let windowFrames = ConfigurationKey(
        "forward.window-frames", flag: "window-frames", .integer(1...256), default: "64",
        help: "unacknowledged frames per event loop and upstream")
    public static let windowLogs = ConfigurationKey(
        "forward.window-logs", flag: "window-logs", .integer(64...1_000_000), default: "4096",
        help: "unacknowledged logs per event loop and upstream before a lane takes no new batch",
        details: "This bounds how long a receiver works before its acks leave.")
    public static let frameLinger = ConfigurationKey(
        "forward.frame-linger", flag: "frame-linger", .duration(.zero ... .milliseconds(100)), default: "1ms",
        help: "how long a ferry:// lane's last, not yet full frame waits for more logs; 0 = never",
        details: "At 100,000 logs/s a read burst holds ~20 logs; without it each burst cost a frame and an ack on both hops.")
    public static let udpSegmentation = ConfigurationKey(
        "forward.udp-segmentation", flag: "udp-segmentation", .boolean, default: "true",
        help: "send runs of equal-length datagrams to udp:// upstreams as one UDP_SEGMENT (GSO) message; false = one message per datagram")
    public static let retryBase = ConfigurationKey(
        "retry.base", .duration(.milliseconds(1) ... .seconds(60)), default: "100ms", help: "upper bound of the first retry's jittered wait")
    public static let retryCap = ConfigurationKey(
        "retry.cap", .duration(.milliseconds(1) ... .seconds(600)), default: "5s",
        help: "largest upper bound of a retry's jittered wait; at least retry.base")
    public static let retryMaxAttempts = ConfigurationKey(
        "retry.max-attempts", .integer(1...100), default: "6",
        help: "no effect since loss repair: a frame is sent until acknowledged or given up at its TTL (accepted for old configurations)",
        details: "See [forwarding.md](forwarding.md#loss-is-not-failure).")
    public static let retryBudgetRatio = ConfigurationKey(
        "retry.budget-ratio", .decimal(0...10), default: "0.2", help: "retries allowed per first attempt")
    public static let retryBudgetFloor = ConfigurationKey(
        "retry.budget-floor", .decimal(0...10_000), default: "5", help: "retries per second allowed even without traffic")
    public static let breakerFailureRate = ConfigurationKey(
        "breaker.failure-rate", .decimal(0.01...1), default: "0.5", help: "failure rate over the window that opens the breaker")
    public static let breakerWindow = ConfigurationKey(
        "breaker.window", .integer(1...10_000), default: "20", help: "outcomes in the breaker's sliding window")
    public static let breakerMinimumCalls = ConfigurationKey(
        "breaker.minimum-calls", .integer(1...10_000), default: "10", help: "outcomes needed before the failure rate counts")
    public static let breakerConsecutiveFailures = ConfigurationKey(
        "breaker.consecutive-failures", .integer(1...10_000), default: "5", help: "failures in a row that open the breaker")
    public static let breakerOpenDuration = ConfigurationKey(
        "breaker.open-duration", .duration(.milliseconds(10) ... .seconds(3600)), default: "1s",
        help: "first open wait; doubles on each repeated trip")
    public static let breakerOpenMax = ConfigurationKey(
        "breaker.open-max", .duration(.milliseconds(10) ... .seconds(3600)), default: "30s",
        help: "longest open wait; at least breaker.open-duration")
    public static let breakerHalfOpenProbes = ConfigurationKey(
        "breaker.half-open-probes", .integer(1...100), default: "3", help: "probes let through when half-open; that many successes close it")
}
