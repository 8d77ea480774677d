import ArgumentParser
import FerryCore
import Foundation

/// The flags every command that reads configuration shares. Each one maps to a
/// configuration key (see `FerryConfiguration.keys`) and wins over the file and
/// the environment.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (.yaml, .yml or .json).")
    var config: String?

    @Option(
        name: .long,
        help: "Address to receive logs on, repeatable: udp://HOST:PORT (or HOST:PORT), tcp://HOST:PORT, tls://HOST:PORT (key listen).")
    var listen: [String] = []

    @Option(name: .customLong("tcp-idle-timeout"), help: "Idle time after which a tcp/tls connection is closed (key tcp.idle-timeout).")
    var tcpIdleTimeout: String?
    @Option(name: .customLong("tcp-max-connections"), help: "Open connections per tcp/tls listener (key tcp.max-connections).")
    var tcpMaxConnections: String?
    @Option(
        name: .customLong("tcp-max-connections-per-source"),
        help: "Open connections per tcp/tls listener and source address (key tcp.max-connections-per-source).")
    var tcpMaxConnectionsPerSource: String?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain of tls:// listeners (key tls.cert).")
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key of tls:// listeners (key tls.key).")
    var tlsKey: String?
    @Option(name: .customLong("tls-ca"), help: "PEM CA bundle for client certificates (key tls.ca).")
    var tlsCA: String?
    @Option(name: .customLong("tls-client-auth"), help: "none, optional or required (key tls.client-auth).")
    var tlsClientAuth: String?
    @Option(name: .customLong("tls-handshake-timeout"), help: "Time a TLS handshake may take (key tls.handshake-timeout).")
    var tlsHandshakeTimeout: String?
    @Option(name: .customLong("upstream-tls-ca"), help: "PEM CA bundle for tls:// upstreams (key upstream-tls.ca).")
    var upstreamTLSCA: String?
    @Option(name: .customLong("upstream-tls-cert"), help: "PEM client certificate for tls:// upstreams (key upstream-tls.cert).")
    var upstreamTLSCert: String?
    @Option(name: .customLong("upstream-tls-key"), help: "PEM private key for tls:// upstreams (key upstream-tls.key).")
    var upstreamTLSKey: String?
    @Option(
        name: .customLong("upstream-tls-insecure"), help: "Skip verifying tls:// upstreams, true or false: loud (key upstream-tls.insecure).")
    var upstreamTLSInsecure: String?

    @Option(
        name: .customLong("auth-key-file"),
        help: "File of ferry:// keys (mode 600): its first key signs, every key verifies (key auth.key-file).")
    var authKeyFile: String?
    @Option(
        name: .customLong("auth-key-files"), help: "More key files verified during a rotation, repeatable (key auth.key-files).")
    var authKeyFiles: [String] = []

    @Option(
        name: .customLong("admin-token-file"),
        help: "File (mode 600) with the bearer token of POST /v1/reopen and other admin endpoints (key admin.token-file).")
    var adminTokenFile: String?
    @Option(name: .customLong("allow"), help: "Source address or CIDR block listeners take traffic from, repeatable (key allow).")
    var allow: [String] = []
    @Option(name: .customLong("rate-limit"), help: "Logs per second per source address, 0 = off (key rate-limit.logs-per-second).")
    var rateLimit: String?
    @Option(name: .customLong("rate-limit-burst"), help: "Logs a source may send at once beyond its rate (key rate-limit.burst).")
    var rateLimitBurst: String?
    @Option(name: .customLong("rate-limit-max-sources"), help: "Sources tracked per listener (key rate-limit.max-sources).")
    var rateLimitMaxSources: String?

    @Option(name: .customLong("http"), help: "HTTP control-plane address (key http.address).")
    var http: String?

    @Option(name: .customLong("http-max-body-bytes"), help: "Largest POST /v1/logs body (key http.max-body-bytes).")
    var httpMaxBodyBytes: String?

    @Option(name: .customLong("http-header-timeout"), help: "Time to send a complete request head (key http.header-timeout).")
    var httpHeaderTimeout: String?

    @Option(name: .customLong("http-idle-timeout"), help: "Time an idle keep-alive connection stays open (key http.idle-timeout).")
    var httpIdleTimeout: String?

    @Option(name: .customLong("http-max-connections"), help: "Concurrent HTTP connections, 0 = from the fd limit (key http.max-connections).")
    var httpMaxConnections: String?

    @Option(
        name: .customLong("upstream"),
        help: "Upstream in failover order, repeatable: udp://HOST:PORT, ferry://HOST:PORT or file:PATH (key upstreams).")
    var upstreams: [String] = []

    @Option(name: .customLong("queue-capacity-logs"), help: "Buffer capacity in logs (key queue.capacity-logs).")
    var queueCapacityLogs: String?

    @Option(name: .customLong("queue-capacity-bytes"), help: "Buffer capacity in bytes (key queue.capacity-bytes).")
    var queueCapacityBytes: String?

    @Option(name: .customLong("datagram-max-bytes"), help: "Largest datagram accepted (key datagram.max-bytes).")
    var datagramMaxBytes: String?

    @Option(name: .customLong("receive-sockets"), help: "Receive sockets, one event loop each; 0 = one per core (key receive.sockets).")
    var receiveSockets: String?

    @Option(name: .customLong("receive-buffer-bytes"), help: "SO_RCVBUF per receive socket (key receive.buffer-bytes).")
    var receiveBufferBytes: String?

    @Option(name: .customLong("receive-batch"), help: "Datagrams per recvmmsg (key receive.batch).")
    var receiveBatch: String?

    @Option(name: .customLong("receive-coalesce"), help: "Pause after a short read, e.g. 100us; 0 = off (key receive.coalesce).")
    var receiveCoalesce: String?

    @Option(name: .customLong("log-level"), help: "Log level (key log.level).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "json or text (key log.format).")
    var logFormat: String?

    @Option(name: .customLong("spool-dir"), help: "Directory of the disk spool; off when unset (key spool.dir).")
    var spoolDir: String?
    @Option(name: .customLong("spool-max-bytes"), help: "Largest size of the spool (key spool.max-bytes).")
    var spoolMaxBytes: String?
    @Option(name: .customLong("spool-segment-bytes"), help: "Size of one spool segment file (key spool.segment-bytes).")
    var spoolSegmentBytes: String?
    @Option(name: .customLong("spool-fsync"), help: "interval, always or never (key spool.fsync).")
    var spoolFsync: String?
    @Option(name: .customLong("spool-fsync-interval"), help: "Time between syncs (key spool.fsync-interval).")
    var spoolFsyncInterval: String?
    @Option(name: .customLong("drain-timeout"), help: "Drain time on shutdown (key drain.timeout).")
    var drainTimeout: String?

    @Option(name: .customLong("log-file"), help: "Log to this file, rotated by size, instead of stderr (key log.file).")
    var logFile: String?

    @Option(name: .customLong("log-max-bytes"), help: "Size at which the log file rotates (key log.max-bytes).")
    var logMaxBytes: String?

    @Option(name: .customLong("log-keep"), help: "Rotated log files kept (key log.keep).")
    var logKeep: String?

    @Option(name: .customLong("resolve-interval"), help: "Seconds between re-resolutions of upstream names; 0 = never (key resolve.interval).")
    var resolveInterval: String?

    @Option(name: .customLong("kernel-check-interval"), help: "How often kernel receive drops are checked (key kernel.check-interval).")
    var kernelCheckInterval: String?

    @Option(name: .customLong("instance"), help: "Name of this Ferry in its log lines (key instance).")
    var instance: String?

    @Option(name: .customLong("trace-sample-rate"), help: "Fraction of received logs logged as 'log sampled' (key trace.sample-rate).")
    var traceSampleRate: String?

    @Option(
        name: .customLong("trace-frame-sample-interval"),
        help: "One ferry:// frame per loop and interval traced at info on every hop, 0 = off (key trace.frame-sample-interval).")
    var traceFrameSampleInterval: String?

    @Option(name: .customLong("frame-max-bytes"), help: "Largest ferry:// frame (key forward.frame-max-bytes).")
    var frameMaxBytes: String?

    @Option(name: .customLong("ack-timeout"), help: "Acknowledgement wait per frame (key forward.ack-timeout).")
    var ackTimeout: String?

    @Option(name: .customLong("frame-ttl"), help: "How long a frame stays deliverable (key forward.frame-ttl).")
    var frameTTL: String?

    @Option(name: .customLong("window-frames"), help: "Unacknowledged frames per loop and upstream (key forward.window-frames).")
    var windowFrames: String?
    @Option(name: .customLong("window-logs"), help: "Unacknowledged logs per loop and upstream (key forward.window-logs).")
    var windowLogs: String?
    @Option(
        name: .customLong("frame-linger"),
        help: "How long a ferry:// frame that is not full waits for more logs, e.g. 1ms; 0 = never (key forward.frame-linger).")
    var frameLinger: String?

    @Option(
        name: .customLong("udp-segmentation"),
        help: "Send runs of equal-length datagrams to udp:// upstreams as one GSO message: true or false (key forward.udp-segmentation).")
    var udpSegmentation: String?

    @Option(name: .customLong("retry-base"), help: "First retry's jitter ceiling (key retry.base).")
    var retryBase: String?

    @Option(name: .customLong("retry-cap"), help: "Largest retry jitter ceiling (key retry.cap).")
    var retryCap: String?

    @Option(name: .customLong("retry-max-attempts"), help: "Sends of one frame, the first included (key retry.max-attempts).")
    var retryMaxAttempts: String?

    @Option(name: .customLong("retry-budget-ratio"), help: "Retries allowed per first attempt (key retry.budget-ratio).")
    var retryBudgetRatio: String?

    @Option(name: .customLong("retry-budget-floor"), help: "Retries per second allowed regardless (key retry.budget-floor).")
    var retryBudgetFloor: String?

    @Option(name: .customLong("breaker-failure-rate"), help: "Failure rate that opens a breaker (key breaker.failure-rate).")
    var breakerFailureRate: String?

    @Option(name: .customLong("breaker-window"), help: "Outcomes in the breaker's sliding window (key breaker.window).")
    var breakerWindow: String?

    @Option(name: .customLong("breaker-minimum-calls"), help: "Outcomes before the failure rate counts (key breaker.minimum-calls).")
    var breakerMinimumCalls: String?

    @Option(name: .customLong("breaker-consecutive-failures"), help: "Failures in a row that open a breaker (key breaker.consecutive-failures).")
    var breakerConsecutiveFailures: String?

    @Option(name: .customLong("breaker-open-duration"), help: "First open wait (key breaker.open-duration).")
    var breakerOpenDuration: String?

    @Option(name: .customLong("breaker-open-max"), help: "Longest open wait (key breaker.open-max).")
    var breakerOpenMax: String?

    @Option(name: .customLong("breaker-half-open-probes"), help: "Probes when half-open (key breaker.half-open-probes).")
    var breakerHalfOpenProbes: String?

    /// Flag values by configuration key.
    var flagValues: [String: String] {
        let pairs: [(String, String?)] = [
            ("tcp.idle-timeout", tcpIdleTimeout),
            ("tcp.max-connections", tcpMaxConnections),
            ("tcp.max-connections-per-source", tcpMaxConnectionsPerSource),
            ("tls.cert", tlsCert),
            ("tls.key", tlsKey),
            ("tls.ca", tlsCA),
            ("tls.client-auth", tlsClientAuth),
            ("tls.handshake-timeout", tlsHandshakeTimeout),
            ("upstream-tls.ca", upstreamTLSCA),
            ("upstream-tls.cert", upstreamTLSCert),
            ("upstream-tls.key", upstreamTLSKey),
            ("upstream-tls.insecure", upstreamTLSInsecure),
            ("auth.key-file", authKeyFile),
            ("admin.token-file", adminTokenFile),
            ("rate-limit.logs-per-second", rateLimit),
            ("rate-limit.burst", rateLimitBurst),
            ("rate-limit.max-sources", rateLimitMaxSources),
            ("http.address", http),
            ("http.max-body-bytes", httpMaxBodyBytes),
            ("http.header-timeout", httpHeaderTimeout),
            ("http.idle-timeout", httpIdleTimeout),
            ("http.max-connections", httpMaxConnections),
            ("queue.capacity-logs", queueCapacityLogs),
            ("queue.capacity-bytes", queueCapacityBytes),
            ("datagram.max-bytes", datagramMaxBytes),
            ("receive.sockets", receiveSockets),
            ("receive.buffer-bytes", receiveBufferBytes),
            ("receive.batch", receiveBatch),
            ("receive.coalesce", receiveCoalesce),
            ("log.level", logLevel),
            ("log.format", logFormat),
            ("drain.timeout", drainTimeout),
            ("spool.dir", spoolDir),
            ("spool.max-bytes", spoolMaxBytes),
            ("spool.segment-bytes", spoolSegmentBytes),
            ("spool.fsync", spoolFsync),
            ("spool.fsync-interval", spoolFsyncInterval),
            ("log.file", logFile),
            ("log.max-bytes", logMaxBytes),
            ("log.keep", logKeep),
            ("instance", instance),
            ("kernel.check-interval", kernelCheckInterval),
            ("resolve.interval", resolveInterval),
            ("trace.sample-rate", traceSampleRate),
            ("trace.frame-sample-interval", traceFrameSampleInterval),
            ("forward.frame-max-bytes", frameMaxBytes),
            ("forward.ack-timeout", ackTimeout),
            ("forward.frame-ttl", frameTTL),
            ("forward.window-frames", windowFrames),
            ("forward.window-logs", windowLogs),
            ("forward.frame-linger", frameLinger),
            ("forward.udp-segmentation", udpSegmentation),
            ("retry.base", retryBase),
            ("retry.cap", retryCap),
            ("retry.max-attempts", retryMaxAttempts),
            ("retry.budget-ratio", retryBudgetRatio),
            ("retry.budget-floor", retryBudgetFloor),
            ("breaker.failure-rate", breakerFailureRate),
            ("breaker.window", breakerWindow),
            ("breaker.minimum-calls", breakerMinimumCalls),
            ("breaker.consecutive-failures", breakerConsecutiveFailures),
            ("breaker.open-duration", breakerOpenDuration),
            ("breaker.open-max", breakerOpenMax),
            ("breaker.half-open-probes", breakerHalfOpenProbes),
        ]
        return Dictionary(uniqueKeysWithValues: pairs.compactMap { key, value in value.map { (key, $0) } })
    }

    /// Reads defaults < file < environment < flags into a validated configuration.
    func load() async throws -> FerryConfiguration {
        try await loader.load()
    }

    var loader: ConfigurationLoader {
        var loader = ConfigurationLoader(
            flags: flagValues, upstreamFlags: upstreams,
            environment: ProcessInfo.processInfo.environment, filePath: config)
        loader.listFlags = ["listen": listen, "auth.key-files": authKeyFiles, "allow": allow]
        return loader
    }

    /// Warnings for `FERRY_…` variables that name no key.
    var environmentWarnings: [String] {
        loader.unknownEnvironmentVariables.map {
            "warning: environment variable \($0) names no configuration key and is ignored (see 'ferry check-config' for the keys)"
        }
    }
}
