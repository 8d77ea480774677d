import Logging

// Every configuration key, defined once. The flag is the key with `-` for `.` unless given.
// After changing one: `swift run ferry config-reference --update docs/configuration.md` (a test fails until then).

extension FerryConfiguration {
    /// Every key Ferry reads, in the order `check-config` prints them and the reference lists them.
    public static let keys: [ConfigurationKey] = [
        .listen, .tcpIdleTimeout, .tcpMaxConnections, .tcpMaxConnectionsPerSource,
        .tlsCert, .tlsKey, .tlsCA, .tlsClientAuth, .tlsHandshakeTimeout,
        .upstreamTLSCA, .upstreamTLSCert, .upstreamTLSKey, .upstreamTLSInsecure,
        .authKeyFile, .authKeyFiles, .adminTokenFile, .allow, .rateLimit, .rateLimitBurst, .rateLimitMaxSources,
        .httpAddress, .httpMaxBodyBytes, .httpHeaderTimeout, .httpIdleTimeout, .httpMaxConnections,
        .upstreams, .queueCapacityLogs, .queueCapacityBytes,
        .spoolDir, .spoolMaxBytes, .spoolSegmentBytes, .spoolFsync, .spoolFsyncInterval,
        .datagramMaxBytes, .receiveSockets, .receiveBufferBytes, .receiveBatch, .receiveCoalesce,
        .logLevel, .logFormat, .logFile, .logMaxBytes, .logKeep, .instance,
        .traceFrameSampleInterval, .traceSampleRate, .resolveInterval, .kernelCheckInterval, .drainTimeout,
        .frameMaxBytes, .ackTimeout, .frameTTL, .windowFrames, .windowLogs, .frameLinger, .udpSegmentation,
        .retryBase, .retryCap, .retryMaxAttempts, .retryBudgetRatio, .retryBudgetFloor,
        .breakerFailureRate, .breakerWindow, .breakerMinimumCalls, .breakerConsecutiveFailures,
        .breakerOpenDuration, .breakerOpenMax, .breakerHalfOpenProbes,
    ]
}

// MARK: Intake

extension ConfigurationKey {
    public static let listen = ConfigurationKey(
        "listen", .list(ListenerURL.allowedForms + " (port 0...65535)"), default: "udp://0.0.0.0:5514",
        help: "addresses to receive logs on",
        details: """
            Without `?framing` each connection's first byte decides; IPv6 as `[::]:514` (dual stack); port 0 = any free port. \
            See [Syslog over TCP and TLS](tcp-tls.md#syslog-over-tcp-and-tls)
            """)
    public static let tcpIdleTimeout = ConfigurationKey(
        "tcp.idle-timeout", .duration(.seconds(1) ... .seconds(86_400)), default: "600s",
        help: "a tcp/tls connection that sends nothing this long is closed", details: "(not while Ferry itself paused reading it)")
    public static let tcpMaxConnections = ConfigurationKey(
        "tcp.max-connections", .integer(1...1_000_000), default: "1024",
        help: "open connections per tcp/tls listener; more are closed at accept", details: "(`refused{reason=\"listener_limit\"}`)")
    public static let tcpMaxConnectionsPerSource = ConfigurationKey(
        "tcp.max-connections-per-source", .integer(1...1_000_000), default: "64",
        help: "open connections per tcp/tls listener from one source address", details: "(`refused{reason=\"source_limit\"}`)")
    public static let tlsCert = ConfigurationKey(
        "tls.cert", .text("a PEM file path"), help: "PEM certificate chain of tls:// listeners, re-read within 2 s when the file changes")
    public static let tlsKey = ConfigurationKey(
        "tls.key", .text("a PEM file path"), help: "PEM private key of tls:// listeners, re-read with the certificate (never logged)")
    public static let tlsCA = ConfigurationKey("tls.ca", .text("a PEM file path"), help: "PEM CA bundle client certificates are verified against")
    public static let tlsClientAuth = ConfigurationKey(
        "tls.client-auth", .choice(TLSClientAuth.allCases.map(\.rawValue)), default: "none",
        help: "client certificates on tls:// listeners: optional ones are verified if presented; required needs tls.ca")
    public static let tlsHandshakeTimeout = ConfigurationKey(
        "tls.handshake-timeout", .duration(.milliseconds(100) ... .seconds(300)), default: "10s",
        help: "time a TLS client has to finish its handshake")
    public static let datagramMaxBytes = ConfigurationKey(
        "datagram.max-bytes", .byteSize(1...65_507), default: "65507", help: "largest datagram accepted; larger ones are dropped as oversize")
    public static let receiveSockets = ConfigurationKey(
        "receive.sockets", .integer(0...256), default: "0", defaultNote: "one per core this process may use",
        help: "SO_REUSEPORT receive sockets, each with a receive thread and event loop; 0 counts the cores this process may use",
        details: "(CPU affinity, cgroup quota)")
    public static let receiveBufferBytes = ConfigurationKey(
        "receive.buffer-bytes", .byteSize(4096...(1 << 30)), default: "16MiB",
        help: "SO_RCVBUF asked for on each receive socket; the kernel caps it at net.core.rmem_max",
        details: "The granted size is logged and shown in `/v1/status`.")
    public static let receiveBatch = ConfigurationKey(
        "receive.batch", .integer(1...1024), default: "64", help: "datagrams read per recvmmsg call")
    public static let receiveCoalesce = ConfigurationKey(
        "receive.coalesce", .duration(.zero ... .milliseconds(1)), default: "100us",
        help: "pause after a read of less than half a batch, so the next read moves more datagrams per system call; 0 = off",
        details: "(lowest latency); see [Benchmarks](../Benchmarks/README.md#coalescing-short-reads-receivecoalesce)")
}

// MARK: Trust and limits

extension ConfigurationKey {
    public static let upstreamTLSCA = ConfigurationKey(
        "upstream-tls.ca", .text("a PEM file path"), defaultNote: "system trust store",
        help: "PEM CA bundle tls:// upstreams' certificates are verified against; the name checked is the URL's host")
    public static let upstreamTLSCert = ConfigurationKey(
        "upstream-tls.cert", .text("a PEM file path"), help: "PEM client certificate for mutual TLS with tls:// upstreams")
    public static let upstreamTLSKey = ConfigurationKey("upstream-tls.key", .text("a PEM file path"), help: "PEM private key of upstream-tls.cert")
    public static let upstreamTLSInsecure = ConfigurationKey(
        "upstream-tls.insecure", .boolean, default: "false", help: "do not verify tls:// upstreams' certificates or names",
        details: "(logged at error level at start; `tls_insecure` in status, `ferry_upstream_tls_insecure` gauge)")
    public static let authKeyFile = ConfigurationKey(
        "auth.key-file", .text("a file path"), defaultNote: "none: ferry:// frames are not keyed",
        help: "file of ferry:// keys, one per line, 64+ hex characters, mode 600: the first signs frames and acks, every one verifies",
        details: "(`openssl rand -hex 32`; a file group or others can read is refused; [Trust](trust.md#trust-keys-allowlists-rate-limits))")
    public static let authKeyFiles = ConfigurationKey(
        "auth.key-files", .list("file paths"), help: "more key files whose keys verify, after auth.key-file's (a rotation's old key)")
    public static let adminTokenFile = ConfigurationKey(
        "admin.token-file", .text("a file path"), defaultNote: "none: admin endpoints are off",
        help: "file (mode 600) with the bearer token of state-changing HTTP endpoints such as POST /v1/reopen",
        details: "One line of 32+ printable characters (`openssl rand -hex 32`); compared in constant time, never logged.")
    public static let allow = ConfigurationKey(
        "allow", .list(SourceAllowlist.allowedForms), defaultNote: "any source",
        help: "source addresses or CIDR blocks every listener takes traffic from; others are refused as denied",
        details: """
            Refused before they are read. A listener's own `?allow=CIDR` (repeatable: \
            `tcp://0.0.0.0:6514?allow=10.0.0.0/8&allow=::1`) replaces it for that listener.
            """)
    public static let rateLimit = ConfigurationKey(
        "rate-limit.logs-per-second", flag: "rate-limit", .decimal(0...10_000_000), default: "0", defaultNote: "off",
        help: "logs per second one source address may send to a listener; more are refused as rate_limited",
        details: "(token bucket; [Trust](trust.md#trust-keys-allowlists-rate-limits))")
    public static let rateLimitBurst = ConfigurationKey(
        "rate-limit.burst", .integer(1...100_000_000), defaultNote: "one second's worth", help: "logs a source may send at once beyond its rate")
    public static let rateLimitMaxSources = ConfigurationKey(
        "rate-limit.max-sources", .integer(16...10_000_000), default: "65536",
        help: "sources tracked per listener; the least recently seen is evicted beyond it", details: "(counted in status)")
}

// MARK: HTTP, upstreams, buffer, spool

extension ConfigurationKey {
    public static let httpAddress = ConfigurationKey(
        "http.address", flag: "http", .text("HOST:PORT, port 0...65535"), default: "127.0.0.1:9514", help: "HTTP control-plane address")
    public static let httpMaxBodyBytes = ConfigurationKey(
        "http.max-body-bytes", .byteSize(1...(1 << 30)), default: "4MiB", help: "largest POST /v1/logs body")
    public static let httpHeaderTimeout = ConfigurationKey(
        "http.header-timeout", .duration(.milliseconds(100) ... .seconds(10)), default: "5s",
        help: "time a connection has to send a complete request head")
    public static let httpIdleTimeout = ConfigurationKey(
        "http.idle-timeout", .duration(.seconds(1) ... .seconds(3600)), default: "60s", help: "time an idle keep-alive connection stays open")
    public static let httpMaxConnections = ConfigurationKey(
        "http.max-connections", .integer(0...1_000_000), default: "0", defaultNote: "from the file-descriptor limit",
        help: "concurrent HTTP connections", details: "See [HTTP endpoints](observability.md#http-endpoints).")
    public static let upstreams = ConfigurationKey(
        "upstreams", flag: "upstream", .list(UpstreamURL.allowedForms + " (port 1...65535)"),
        default: FerryConfiguration.embeddedDefaultUpstream.description,
        help: "where logs go, in failover order",
        details: "(`tcp://` and `tls://` octet-counted, `?framing=lf` for receivers that want lines; an empty item is an error)")
    public static let queueCapacityLogs = ConfigurationKey(
        "queue.capacity-logs", .integer(1...BufferCapacity.maxLogs), default: "100000", help: "buffer capacity in logs")
    public static let queueCapacityBytes = ConfigurationKey(
        "queue.capacity-bytes", .byteSize(1...BufferCapacity.maxBytes), default: "32MiB",
        help: "buffer capacity in payload bytes; at least datagram.max-bytes")
    public static let spoolDir = ConfigurationKey(
        "spool.dir", .text("a directory path"), defaultNote: "none: memory buffer only",
        help: "directory of the disk spool: every accepted log is appended there before it counts as accepted",
        details: "See [Durable spool](spool.md#durable-spool).")
    public static let spoolMaxBytes = ConfigurationKey(
        "spool.max-bytes", .byteSize((1 << 20)...(1 << 44)), default: "1GiB",
        help: "largest the spool's files may grow; then new logs are dropped as spool_full")
    public static let spoolSegmentBytes = ConfigurationKey(
        "spool.segment-bytes", .byteSize((64 << 10)...(1 << 30)), default: "64MiB",
        help: "size at which a spool segment file is closed and a new one begun; at most spool.max-bytes")
    public static let spoolFsync = ConfigurationKey(
        "spool.fsync", .choice(SpoolSyncPolicy.allCases.map(\.rawValue)), default: "interval",
        help: "when spooled logs are synced to disk; always syncs before every acknowledgement, once per burst")
    public static let spoolFsyncInterval = ConfigurationKey(
        "spool.fsync-interval", .duration(.milliseconds(1) ... .seconds(60)), default: "1s",
        help: "time between syncs under spool.fsync=interval")
}

// MARK: Ferry's own logs and tracing

extension ConfigurationKey {
    public static let logLevel = ConfigurationKey(
        "log.level", .choice(Logger.Level.allCases.map(\.rawValue)), default: "info", help: "lowest level of Ferry's own log lines")
    public static let logFormat = ConfigurationKey(
        "log.format", .choice(FerryConfiguration.LogFormat.allCases.map(\.rawValue)), default: "json",
        help: "format of Ferry's own log lines: json (JSON Lines) or text")
    public static let logFile = ConfigurationKey(
        "log.file", .text("a file path"), defaultNote: "stderr",
        help: "write Ferry's own log lines to this file instead of stderr, rotated by size",
        details: "(missing directories are created; `SIGHUP` reopens it)")
    public static let logMaxBytes = ConfigurationKey(
        "log.max-bytes", .byteSize(4096...(1 << 40)), default: "10MiB", help: "size at which the log file is rotated")
    public static let logKeep = ConfigurationKey("log.keep", .integer(0...100), default: "5", help: "rotated log files kept (PATH.1 newest)")
    public static let instance = ConfigurationKey(
        "instance", .text("a name of 1 to 128 characters without spaces"), defaultNote: "host name and UDP port, host:5514; host-PID on port 0",
        help: "name of this Ferry in its log lines (ferry trace shows it), so two Ferrys on one host are told apart")
    public static let traceFrameSampleInterval = ConfigurationKey(
        "trace.frame-sample-interval", .duration(.zero ... .seconds(3600)), default: "1s",
        help: "one ferry:// frame per loop and interval is logged at info on every hop, so ferry trace can follow it; 0 = off",
        details: "(`frame sent`, `frame received`, `frame forwarded`, `frame acknowledged`)")
    public static let traceSampleRate = ConfigurationKey(
        "trace.sample-rate", .decimal(0...1), default: "0", help: "fraction of received logs that get a 'log sampled' line; 0 = off")
    public static let resolveInterval = ConfigurationKey(
        "resolve.interval", .duration(.zero ... .seconds(86_400)), default: "30s",
        help: "time between re-resolutions of upstream host names; 0 = never")
    public static let kernelCheckInterval = ConfigurationKey(
        "kernel.check-interval", .duration(.milliseconds(100) ... .seconds(3600)), default: "10s",
        help: "how often kernel receive drops are checked for the warning")
    public static let drainTimeout = ConfigurationKey(
        "drain.timeout", .duration(.zero ... .seconds(3600)), default: "5s", help: "time allowed to forward buffered logs on shutdown")
}
