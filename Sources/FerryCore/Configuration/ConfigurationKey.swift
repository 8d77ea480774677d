/// One configuration key with its environment variable, flag, default and meaning.
///
/// The table in ``FerryConfiguration/keys`` is the single list of keys: the CLI
/// builds its flags from it, `--print-config` walks it, and docs/configuration.md copies it.
public struct ConfigurationKey: Sendable {
    /// Dotted key as used in files (`queue.capacity-logs`).
    public let name: String
    /// Long flag without dashes (`queue-capacity-logs`).
    public let flag: String
    /// What the value means and which values are allowed.
    public let help: String

    /// `FERRY_` plus the key in upper case with `.` and `-` as `_`.
    public var environmentVariable: String {
        "FERRY_" + name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }.map(String.init).joined()
    }
}

extension FerryConfiguration {
    /// Every key Ferry reads, in the order `--print-config` shows them.
    public static let keys: [ConfigurationKey] = [
        .init(
            name: "listen", flag: "listen",
            help:
                "addresses to receive logs on: udp://HOST:PORT (or HOST:PORT), tcp://HOST:PORT, tls://HOST:PORT, ?framing=octet|lf (flag repeatable; env comma-separated)"
        ),
        .init(name: "tcp.idle-timeout", flag: "tcp-idle-timeout", help: "a tcp/tls connection that sends nothing this long is closed (1s...1d)"),
        .init(name: "tcp.max-connections", flag: "tcp-max-connections", help: "open connections per tcp/tls listener (1...1000000)"),
        .init(
            name: "tcp.max-connections-per-source", flag: "tcp-max-connections-per-source",
            help: "open connections per tcp/tls listener from one source address (1...1000000)"),
        .init(name: "tls.cert", flag: "tls-cert", help: "PEM certificate chain of tls:// listeners (re-read when it changes)"),
        .init(name: "tls.key", flag: "tls-key", help: "PEM private key of tls:// listeners (re-read when it changes)"),
        .init(name: "tls.ca", flag: "tls-ca", help: "PEM CA bundle client certificates are verified against"),
        .init(name: "tls.client-auth", flag: "tls-client-auth", help: "client certificates on tls:// listeners: none, optional or required"),
        .init(name: "tls.handshake-timeout", flag: "tls-handshake-timeout", help: "time a TLS client has to finish its handshake (100ms...5m)"),
        .init(
            name: "upstream-tls.ca", flag: "upstream-tls-ca",
            help: "PEM CA bundle tls:// upstreams' certificates are verified against (default: the system's trust store)"),
        .init(name: "upstream-tls.cert", flag: "upstream-tls-cert", help: "PEM client certificate for tls:// upstreams (mutual TLS)"),
        .init(name: "upstream-tls.key", flag: "upstream-tls-key", help: "PEM private key of upstream-tls.cert"),
        .init(
            name: "upstream-tls.insecure", flag: "upstream-tls-insecure",
            help: "do not verify tls:// upstreams' certificates or names (true/false; logged loudly, shown in status)"),
        .init(
            name: "auth.key-file", flag: "auth-key-file",
            help: "file of ferry:// keys, one per line, 64+ hex characters, mode 600: the first signs frames and acks, every one verifies"),
        .init(
            name: "auth.key-files", flag: "auth-key-files",
            help: "more key files, verified after auth.key-file's (for a rotation; flag repeatable; env comma-separated)"),
        .init(
            name: "admin.token-file", flag: "admin-token-file",
            help: "file (mode 600) with the bearer token of state-changing HTTP endpoints such as POST /v1/reopen; without it they are off"),
        .init(
            name: "allow", flag: "allow",
            help:
                "source addresses or CIDR blocks every listener takes traffic from; others are refused as denied (flag repeatable; env comma-separated; a listener's ?allow= replaces it)"
        ),
        .init(
            name: "rate-limit.logs-per-second", flag: "rate-limit",
            help: "logs per second one source address may send to a listener; more are refused as rate_limited (0 = off)"),
        .init(
            name: "rate-limit.burst", flag: "rate-limit-burst", help: "logs a source may send at once beyond its rate (default: one second's worth)"),
        .init(
            name: "rate-limit.max-sources", flag: "rate-limit-max-sources",
            help: "sources tracked per listener; the least recently seen is evicted beyond it (16...10000000)"),
        .init(name: "http.address", flag: "http", help: "HTTP control-plane address (HOST:PORT)"),
        .init(name: "http.max-body-bytes", flag: "http-max-body-bytes", help: "largest POST /v1/logs body (bytes, or with KiB/MiB suffix)"),
        .init(name: "http.header-timeout", flag: "http-header-timeout", help: "time a connection has to send a complete request head (100ms...10s)"),
        .init(name: "http.idle-timeout", flag: "http-idle-timeout", help: "time an idle keep-alive connection stays open (1s...1h)"),
        .init(
            name: "http.max-connections", flag: "http-max-connections",
            help: "concurrent HTTP connections (0 = derived from the file-descriptor limit)"),
        .init(
            name: "upstreams", flag: "upstream",
            help: "upstreams in failover order: udp://, ferry://, tcp:// or tls://HOST:PORT, or file:PATH (flag repeatable; env comma-separated)"),
        .init(name: "queue.capacity-logs", flag: "queue-capacity-logs", help: "buffer capacity in logs"),
        .init(
            name: "spool.dir", flag: "spool-dir",
            help: "directory of the disk spool: every accepted log is appended there first (off when unset)"),
        .init(name: "spool.max-bytes", flag: "spool-max-bytes", help: "largest the spool may grow; then new logs are dropped as spool_full"),
        .init(name: "spool.segment-bytes", flag: "spool-segment-bytes", help: "size at which a spool segment file is closed and a new one begun"),
        .init(name: "spool.fsync", flag: "spool-fsync", help: "when spooled logs are synced to disk: interval, always or never"),
        .init(name: "spool.fsync-interval", flag: "spool-fsync-interval", help: "time between syncs under spool.fsync=interval (1ms...1m)"),
        .init(name: "queue.capacity-bytes", flag: "queue-capacity-bytes", help: "buffer capacity in payload bytes"),
        .init(
            name: "datagram.max-bytes", flag: "datagram-max-bytes", help: "largest datagram accepted (1...65507); larger ones are dropped as oversize"
        ),
        .init(
            name: "receive.sockets", flag: "receive-sockets",
            help: "SO_REUSEPORT receive sockets, each with a receive thread and event loop; 0 = one per core this process may use"),
        .init(
            name: "receive.buffer-bytes", flag: "receive-buffer-bytes",
            help: "SO_RCVBUF asked for on each receive socket (kernel caps it at net.core.rmem_max)"),
        .init(name: "receive.batch", flag: "receive-batch", help: "datagrams read per recvmmsg call (1...1024)"),
        .init(
            name: "receive.coalesce", flag: "receive-coalesce",
            help: "pause after a read of less than half a batch, so the next takes more (0...1ms, 0 = off; e.g. 100us)"),
        .init(name: "log.level", flag: "log-level", help: "trace, debug, info, notice, warning, error or critical"),
        .init(name: "log.format", flag: "log-format", help: "json (JSON Lines) or text"),
        .init(name: "log.file", flag: "log-file", help: "write Ferry's own log lines to this file instead of stderr, rotated by size"),
        .init(name: "log.max-bytes", flag: "log-max-bytes", help: "size at which the log file is rotated"),
        .init(name: "log.keep", flag: "log-keep", help: "rotated log files kept (0...100)"),
        .init(name: "instance", flag: "instance", help: "name of this Ferry in its log lines (default: host name and UDP port, host:5514)"),
        .init(
            name: "trace.frame-sample-interval", flag: "trace-frame-sample-interval",
            help: "one ferry:// frame per loop and interval is logged at info on every hop, so ferry trace can follow it (0 = off)"),
        .init(name: "trace.sample-rate", flag: "trace-sample-rate", help: "fraction of received logs that get a 'log sampled' line (0...1; 0 = off)"),
        .init(name: "resolve.interval", flag: "resolve-interval", help: "seconds between re-resolutions of upstream host names (0 = never)"),
        .init(name: "kernel.check-interval", flag: "kernel-check-interval", help: "how often kernel receive drops are checked for the warning"),
        .init(name: "drain.timeout", flag: "drain-timeout", help: "time allowed to forward buffered logs on shutdown (seconds, or with ms/s suffix)"),
        .init(name: "forward.frame-max-bytes", flag: "frame-max-bytes", help: "largest ferry:// frame (64...65000); frames also fit the path MTU"),
        .init(name: "forward.ack-timeout", flag: "ack-timeout", help: "wait for a frame's acknowledgement before it counts as failed"),
        .init(name: "forward.frame-ttl", flag: "frame-ttl", help: "how long a frame stays deliverable before its logs may go elsewhere"),
        .init(name: "forward.window-frames", flag: "window-frames", help: "unacknowledged frames per event loop and upstream (1...256)"),
        .init(
            name: "forward.window-logs", flag: "window-logs",
            help: "unacknowledged logs per event loop and upstream before a lane takes no more (64...1000000)"),
        .init(
            name: "forward.frame-linger", flag: "frame-linger",
            help: "how long a ferry:// lane's last, not yet full frame waits for more logs (0...100ms, 0 = never)"),
        .init(
            name: "forward.udp-segmentation", flag: "udp-segmentation",
            help: "send runs of equal-length datagrams to udp:// upstreams as one UDP_SEGMENT (GSO) message (true/false)"),
        .init(name: "retry.base", flag: "retry-base", help: "upper bound of the first retry's jittered wait"),
        .init(name: "retry.cap", flag: "retry-cap", help: "largest upper bound of a retry's jittered wait"),
        .init(
            name: "retry.max-attempts", flag: "retry-max-attempts",
            help: "no effect since loss repair: a frame is sent until acknowledged or given up at its TTL (accepted for old configurations, 1...100)"),
        .init(name: "retry.budget-ratio", flag: "retry-budget-ratio", help: "retries allowed per first attempt (0...10)"),
        .init(name: "retry.budget-floor", flag: "retry-budget-floor", help: "retries per second allowed even without traffic (0...10000)"),
        .init(name: "breaker.failure-rate", flag: "breaker-failure-rate", help: "failure rate that opens the breaker (0.01...1)"),
        .init(name: "breaker.window", flag: "breaker-window", help: "outcomes in the sliding window (1...10000)"),
        .init(name: "breaker.minimum-calls", flag: "breaker-minimum-calls", help: "outcomes needed before the failure rate counts (1...10000)"),
        .init(
            name: "breaker.consecutive-failures", flag: "breaker-consecutive-failures", help: "failures in a row that open the breaker (1...10000)"),
        .init(name: "breaker.open-duration", flag: "breaker-open-duration", help: "first open wait; doubles on repeated trips"),
        .init(name: "breaker.open-max", flag: "breaker-open-max", help: "longest open wait"),
        .init(
            name: "breaker.half-open-probes", flag: "breaker-half-open-probes",
            help: "probes let through when half-open; that many successes close it (1...100)"),
    ]
}
