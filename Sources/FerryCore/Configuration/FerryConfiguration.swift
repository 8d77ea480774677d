import CFerrySystem
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Everything `ferry serve` needs to run, as plain values.
///
/// Built from defaults, a YAML or JSON file, `FERRY_…` environment variables and
/// flags (in rising precedence) by ``init(reader:)``; every key is defined once as a
/// ``ConfigurationKey`` (name, flag, default, allowed values, help) and listed in
/// ``FerryConfiguration/keys``. The defaults written here are for code that builds a
/// configuration directly; `ConfigurationReferenceTests` fails when one differs from its key's.
public struct FerryConfiguration: Sendable, Equatable {
    /// Addresses logs are received on (`listen`): `udp://` (or bare `HOST:PORT`), `tcp://`, `tls://`.
    public var listeners: [ListenerURL] = [.udp(.init(host: "0.0.0.0", port: 5514))]
    /// Limits of `tcp://` and `tls://` listeners (`tcp.*`).
    public var streamListener = StreamListenerSettings()
    /// Certificates of `tls://` listeners (`tls.*`).
    public var tlsListener = TLSListenerSettings()
    /// Verification of `tls://` upstreams (`upstream-tls.*`).
    public var tlsUpstream = TLSUpstreamSettings()
    /// Keys of `ferry://` frames and acks (`auth.*`).
    public var trust = TrustSettings()
    /// Sources every listener takes traffic from (`allow`); nil: any.
    public var allow: SourceAllowlist?
    /// Listeners with an allowlist of their own (`?allow=CIDR` in the `listen` URL), which replaces `allow` for them.
    public var listenerAllow: [ListenerURL: SourceAllowlist] = [:]
    /// The per-source rate limit of every listener (`rate-limit.*`); nil: none.
    public var rateLimit: RateLimitSettings?

    /// The allowlist `listener` applies: its own, else `allow`, else none.
    public func allowlist(for listener: ListenerURL) -> SourceAllowlist? {
        listenerAllow[listener] ?? allow
    }
    /// HTTP control-plane address (`http.address`).
    public var httpAddress: HostAndPort = .init(host: "127.0.0.1", port: 9514)
    /// Largest `POST /v1/logs` body accepted (`http.max-body-bytes`).
    public var httpMaxBodyBytes: Int = 4 << 20
    /// Time a connection has to send a complete request head (`http.header-timeout`).
    public var httpHeaderTimeout: Duration = .seconds(5)
    /// Time an idle keep-alive connection is kept open (`http.idle-timeout`).
    public var httpIdleTimeout: Duration = .seconds(60)
    /// Concurrent HTTP connections; 0 = derived from the file-descriptor limit (`http.max-connections`).
    public var httpMaxConnections: Int = 0
    /// Upstreams in failover order (`upstreams`).
    public var upstreams: [UpstreamURL] = [FerryConfiguration.embeddedDefaultUpstream]
    /// Routes by name (`routes`), sorted by name; empty: `upstreams` is the one route `default`.
    public var routes: [RouteSettings] = []
    /// Buffer capacity in logs (`queue.capacity-logs`).
    public var queueCapacityLogs: Int = 100_000
    /// Buffer capacity in payload bytes (`queue.capacity-bytes`).
    public var queueCapacityBytes: Int = 32 << 20
    /// Largest datagram accepted; larger ones are dropped as `oversize` (`datagram.max-bytes`).
    public var maxDatagramBytes: Int = 65_507
    /// Receive sockets bound with `SO_REUSEPORT`, one event loop each; 0 = one per core (`receive.sockets`).
    public var receiveSockets: Int = 0
    /// `SO_RCVBUF` asked for on each receive socket (`receive.buffer-bytes`).
    public var receiveBufferBytes: Int = 16 << 20
    /// Datagrams read per `recvmmsg` call (`receive.batch`).
    public var receiveBatch: Int = 64
    /// Pause of a receive thread after a read that found less than half a batch, so the next
    /// read takes more datagrams per system call; zero = never (`receive.coalesce`).
    public var receiveCoalesce: Duration = .microseconds(100)
    /// Lowest level of Ferry's own log lines (`log.level`).
    public var logLevel: Logger.Level = .info
    /// Format of Ferry's own log lines (`log.format`).
    public var logFormat: LogFormat = .json
    /// File for Ferry's own log lines instead of standard error (`log.file`).
    public var logFile: String?
    /// Size at which the log file is rotated (`log.max-bytes`).
    public var logMaxBytes = 10 << 20
    /// Rotated log files kept (`log.keep`).
    public var logKeep = 5
    /// Name of this Ferry in its log lines, so `ferry trace` can tell hops apart
    /// (`instance`; when unset, the host name and the UDP port, `host:5514`).
    public var instance: String = System.hostname
    /// Fraction of received logs that get a `log sampled` line (`trace.sample-rate`, 0 = off).
    public var traceSampleRate = 0.0
    /// One `ferry://` frame per loop and interval is traced at info on every hop
    /// (`trace.frame-sample-interval`, zero = off).
    public var frameSampleInterval: Duration = .seconds(1)
    /// How often upstream host names are resolved again; zero means never (`resolve.interval`).
    public var resolveInterval: Duration = .seconds(30)
    /// How often the kernel's drop counters are checked for the warning (`kernel.check-interval`).
    public var kernelCheckInterval: Duration = .seconds(10)
    /// How long a shutdown may spend forwarding what is buffered (`drain.timeout`).
    public var drainTimeout: Duration = .seconds(5)
    /// The disk spool (`spool.*`); nil when `spool.dir` is unset.
    public var spool: SpoolSettings?
    /// `spool.*` values, kept while `spool.dir` is unset, for `--print-config`.
    public var spoolDefaults = SpoolSettings(directory: "", maxBytes: 1 << 30, segmentBytes: 64 << 20, sync: .interval, syncInterval: .seconds(1))

    // MARK: Resilient forwarding

    /// Largest `ferry://` frame (`forward.frame-max-bytes`). A lane's frames are also cut to
    /// the path MTU of its socket less IP and UDP headers (1,472 bytes over Ethernet, 65,000
    /// here on loopback), so none is fragmented and each carries as many logs as the path takes.
    public var frameMaxBytes = 65_000
    /// How long a frame may wait for its acknowledgement before it counts as failed (`forward.ack-timeout`).
    public var ackTimeout: Duration = .milliseconds(500)
    /// How long a frame stays deliverable; after it, its logs may go to another upstream (`forward.frame-ttl`).
    public var frameTTL: Duration = .seconds(10)
    /// Frames in flight per event loop and upstream (`forward.window-frames`).
    public var windowFrames = 64
    /// Logs in flight per event loop and upstream before its lane takes no new
    /// batch (`forward.window-logs`; a soft cap, passed by at most one batch).
    /// A receiver acknowledges a read burst of frames once all its logs hold a
    /// place, so this bounds how long the last frame's ack can take: with
    /// frames of the path MTU (65,000 bytes on loopback, thousands of short
    /// lines each) 64 frames could be the whole backlog after an outage, and a
    /// slow receiver's acks would then come after `forward.ack-timeout`.
    public var windowLogs = 4_096
    /// How long a lane's last, not yet full frame waits for the next logs
    /// before it leaves (`forward.frame-linger`; zero = never). At 100,000
    /// logs/s a read burst holds some 20 logs, so without it every burst cost a
    /// frame and an ack on both hops; a millisecond fills frames with ~100.
    public var frameLinger: Duration = .milliseconds(1)
    /// Send runs of equal-length datagrams to `udp://` upstreams as one UDP
    /// segmentation offload message where the kernel allows (`forward.udp-segmentation`).
    public var udpSegmentation = true
    /// Backoff of retransmissions (`retry.base`, `retry.cap`, `retry.max-attempts`).
    public var retryPolicy = RetryPolicy()
    /// Retries allowed beyond first attempts (`retry.budget-ratio`, `retry.budget-floor`).
    public var retryBudget = RetryBudget.Configuration()
    /// When an upstream's breaker opens and how it recovers (`breaker.*`).
    public var breaker = CircuitBreaker.Configuration()

    /// Where logs go when no upstream is configured: a file a newcomer can `tail`.
    public static let embeddedDefaultUpstream = UpstreamURL.file(path: "./ferry-data/forwarded.log")

    /// Format of Ferry's own log output.
    public enum LogFormat: String, Sendable, CaseIterable {
        case json
        case text
    }

    public init() {}

    /// The first listener's address (the default instance name and most tests use it).
    public var listen: HostAndPort {
        get { listeners.first?.address ?? .init(host: "0.0.0.0", port: 5514) }
        set { listeners = [.udp(newValue)] }
    }

    /// The number of receive sockets after resolving 0 to the number of cores
    /// this process may run on (its CPU affinity and cgroup quota, so a relay
    /// pinned to one core gets one socket, not one per core of the machine).
    public var effectiveReceiveSockets: Int {
        guard receiveSockets == 0 else { return receiveSockets }
        let allowed = Int(cferry_usable_cpus())
        return max(1, allowed > 0 ? min(allowed, System.coreCount) : System.coreCount)
    }
}

extension System {
    /// This machine's host name (`gethostname`), for log lines.
    static var hostname: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "ferry" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
