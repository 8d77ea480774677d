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
        help: .key("Address to receive logs on, repeatable: udp://HOST:PORT (or HOST:PORT), tcp://HOST:PORT, tls://HOST:PORT", "listen"))
    var listen: [String] = []

    @Option(name: .customLong("tcp-idle-timeout"), help: .key("Idle time after which a tcp/tls connection is closed", "tcp.idle-timeout"))
    var tcpIdleTimeout: String?
    @Option(name: .customLong("tcp-max-connections"), help: .key("Open connections per tcp/tls listener", "tcp.max-connections"))
    var tcpMaxConnections: String?
    @Option(
        name: .customLong("tcp-max-connections-per-source"),
        help: .key("Open connections per tcp/tls listener and source address", "tcp.max-connections-per-source"))
    var tcpMaxConnectionsPerSource: String?
    @Option(name: .customLong("tls-cert"), help: .key("PEM certificate chain of tls:// listeners", "tls.cert"))
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: .key("PEM private key of tls:// listeners", "tls.key"))
    var tlsKey: String?
    @Option(name: .customLong("tls-ca"), help: .key("PEM CA bundle for client certificates", "tls.ca"))
    var tlsCA: String?
    @Option(name: .customLong("tls-client-auth"), help: .key("none, optional or required", "tls.client-auth"))
    var tlsClientAuth: String?
    @Option(name: .customLong("tls-handshake-timeout"), help: .key("Time a TLS handshake may take", "tls.handshake-timeout"))
    var tlsHandshakeTimeout: String?
    @Option(name: .customLong("upstream-tls-ca"), help: .key("PEM CA bundle for tls:// upstreams", "upstream-tls.ca"))
    var upstreamTLSCA: String?
    @Option(name: .customLong("upstream-tls-cert"), help: .key("PEM client certificate for tls:// upstreams", "upstream-tls.cert"))
    var upstreamTLSCert: String?
    @Option(name: .customLong("upstream-tls-key"), help: .key("PEM private key for tls:// upstreams", "upstream-tls.key"))
    var upstreamTLSKey: String?
    @Option(
        name: .customLong("upstream-tls-insecure"), help: .key("Skip verifying tls:// upstreams, true or false: loud", "upstream-tls.insecure"))
    var upstreamTLSInsecure: String?

    @Option(
        name: .customLong("auth-key-file"),
        help: .key("File of ferry:// keys (mode 600): its first key signs, every key verifies", "auth.key-file"))
    var authKeyFile: String?
    @Option(
        name: .customLong("auth-key-files"), help: .key("More key files verified during a rotation, repeatable", "auth.key-files"))
    var authKeyFiles: [String] = []

    @Option(
        name: .customLong("admin-token-file"),
        help: .key("File (mode 600) with the bearer token of POST /v1/reopen and other admin endpoints", "admin.token-file"))
    var adminTokenFile: String?
    @Option(name: .customLong("allow"), help: .key("Source address or CIDR block listeners take traffic from, repeatable", "allow"))
    var allow: [String] = []
    @Option(name: .customLong("rate-limit"), help: .key("Logs per second per source address, 0 = off", "rate-limit.logs-per-second"))
    var rateLimit: String?
    @Option(name: .customLong("rate-limit-burst"), help: .key("Logs a source may send at once beyond its rate", "rate-limit.burst"))
    var rateLimitBurst: String?
    @Option(name: .customLong("rate-limit-max-sources"), help: .key("Sources tracked per listener", "rate-limit.max-sources"))
    var rateLimitMaxSources: String?

    @Option(name: .customLong("http"), help: .key("HTTP control-plane address", "http.address"))
    var http: String?

    @Option(name: .customLong("http-max-body-bytes"), help: .key("Largest POST /v1/logs body", "http.max-body-bytes"))
    var httpMaxBodyBytes: String?

    @Option(name: .customLong("http-header-timeout"), help: .key("Time to send a complete request head", "http.header-timeout"))
    var httpHeaderTimeout: String?

    @Option(name: .customLong("http-idle-timeout"), help: .key("Time an idle keep-alive connection stays open", "http.idle-timeout"))
    var httpIdleTimeout: String?

    @Option(name: .customLong("http-max-connections"), help: .key("Concurrent HTTP connections, 0 = from the fd limit", "http.max-connections"))
    var httpMaxConnections: String?

    @Option(
        name: .customLong("upstream"),
        help: .key("Upstream in failover order, repeatable: udp://, tcp://, tls:// or ferry://HOST:PORT, or file:PATH", "upstreams"))
    var upstreams: [String] = []

    @Option(name: .customLong("queue-capacity-logs"), help: .key("Buffer capacity in logs", "queue.capacity-logs"))
    var queueCapacityLogs: String?

    @Option(name: .customLong("queue-capacity-bytes"), help: .key("Buffer capacity in bytes", "queue.capacity-bytes"))
    var queueCapacityBytes: String?

    @Option(name: .customLong("datagram-max-bytes"), help: .key("Largest datagram accepted", "datagram.max-bytes"))
    var datagramMaxBytes: String?

    @Option(name: .customLong("receive-sockets"), help: .key("Receive sockets, one event loop each; 0 = one per core", "receive.sockets"))
    var receiveSockets: String?

    @Option(name: .customLong("receive-buffer-bytes"), help: .key("SO_RCVBUF per receive socket", "receive.buffer-bytes"))
    var receiveBufferBytes: String?

    @Option(name: .customLong("receive-batch"), help: .key("Datagrams per recvmmsg", "receive.batch"))
    var receiveBatch: String?

    @Option(name: .customLong("receive-coalesce"), help: .key("Pause after a short read, e.g. 100us; 0 = off", "receive.coalesce"))
    var receiveCoalesce: String?

    @Option(name: .customLong("log-level"), help: .key("Log level", "log.level"))
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: .key("json or text", "log.format"))
    var logFormat: String?

    @Option(name: .customLong("spool-dir"), help: .key("Directory of the disk spool; off when unset", "spool.dir"))
    var spoolDir: String?
    @Option(name: .customLong("spool-max-bytes"), help: .key("Largest size of the spool", "spool.max-bytes"))
    var spoolMaxBytes: String?
    @Option(name: .customLong("spool-segment-bytes"), help: .key("Size of one spool segment file", "spool.segment-bytes"))
    var spoolSegmentBytes: String?
    @Option(name: .customLong("spool-fsync"), help: .key("interval, always or never", "spool.fsync"))
    var spoolFsync: String?
    @Option(name: .customLong("spool-fsync-interval"), help: .key("Time between syncs", "spool.fsync-interval"))
    var spoolFsyncInterval: String?
    @Option(name: .customLong("drain-timeout"), help: .key("Drain time on shutdown", "drain.timeout"))
    var drainTimeout: String?

    @Option(name: .customLong("log-file"), help: .key("Log to this file, rotated by size, instead of stderr", "log.file"))
    var logFile: String?

    @Option(name: .customLong("log-max-bytes"), help: .key("Size at which the log file rotates", "log.max-bytes"))
    var logMaxBytes: String?

    @Option(name: .customLong("log-keep"), help: .key("Rotated log files kept", "log.keep"))
    var logKeep: String?

    @Option(name: .customLong("resolve-interval"), help: .key("Seconds between re-resolutions of upstream names; 0 = never", "resolve.interval"))
    var resolveInterval: String?

    @Option(name: .customLong("kernel-check-interval"), help: .key("How often kernel receive drops are checked", "kernel.check-interval"))
    var kernelCheckInterval: String?

    @Option(name: .customLong("instance"), help: .key("Name of this Ferry in its log lines", "instance"))
    var instance: String?

    @Option(name: .customLong("trace-sample-rate"), help: .key("Fraction of received logs logged as 'log sampled'", "trace.sample-rate"))
    var traceSampleRate: String?

    @Option(
        name: .customLong("trace-frame-sample-interval"),
        help: .key("One ferry:// frame per loop and interval traced at info on every hop, 0 = off", "trace.frame-sample-interval"))
    var traceFrameSampleInterval: String?

    @Option(name: .customLong("frame-max-bytes"), help: .key("Largest ferry:// frame", "forward.frame-max-bytes"))
    var frameMaxBytes: String?

    @Option(name: .customLong("ack-timeout"), help: .key("Acknowledgement wait per frame", "forward.ack-timeout"))
    var ackTimeout: String?

    @Option(name: .customLong("frame-ttl"), help: .key("How long a frame stays deliverable", "forward.frame-ttl"))
    var frameTTL: String?

    @Option(name: .customLong("window-frames"), help: .key("Unacknowledged frames per loop and upstream", "forward.window-frames"))
    var windowFrames: String?
    @Option(name: .customLong("window-logs"), help: .key("Unacknowledged logs per loop and upstream", "forward.window-logs"))
    var windowLogs: String?
    @Option(
        name: .customLong("frame-linger"),
        help: .key("How long a ferry:// frame that is not full waits for more logs, e.g. 1ms; 0 = never", "forward.frame-linger"))
    var frameLinger: String?

    @Option(
        name: .customLong("udp-segmentation"),
        help: .key("Send runs of equal-length datagrams to udp:// upstreams as one GSO message: true or false", "forward.udp-segmentation"))
    var udpSegmentation: String?

    @Option(name: .customLong("retry-base"), help: .key("First retry's jitter ceiling", "retry.base"))
    var retryBase: String?

    @Option(name: .customLong("retry-cap"), help: .key("Largest retry jitter ceiling", "retry.cap"))
    var retryCap: String?

    @Option(
        name: .customLong("retry-max-attempts"),
        help: .key("No effect (a frame is sent until acknowledged or its TTL ends); accepted for old configurations", "retry.max-attempts"))
    var retryMaxAttempts: String?

    @Option(name: .customLong("retry-budget-ratio"), help: .key("Retries allowed per first attempt", "retry.budget-ratio"))
    var retryBudgetRatio: String?

    @Option(name: .customLong("retry-budget-floor"), help: .key("Retries per second allowed regardless", "retry.budget-floor"))
    var retryBudgetFloor: String?

    @Option(name: .customLong("breaker-failure-rate"), help: .key("Failure rate that opens a breaker", "breaker.failure-rate"))
    var breakerFailureRate: String?

    @Option(name: .customLong("breaker-window"), help: .key("Outcomes in the breaker's sliding window", "breaker.window"))
    var breakerWindow: String?

    @Option(name: .customLong("breaker-minimum-calls"), help: .key("Outcomes before the failure rate counts", "breaker.minimum-calls"))
    var breakerMinimumCalls: String?

    @Option(name: .customLong("breaker-consecutive-failures"), help: .key("Failures in a row that open a breaker", "breaker.consecutive-failures"))
    var breakerConsecutiveFailures: String?

    @Option(name: .customLong("breaker-open-duration"), help: .key("First open wait", "breaker.open-duration"))
    var breakerOpenDuration: String?

    @Option(name: .customLong("breaker-open-max"), help: .key("Longest open wait", "breaker.open-max"))
    var breakerOpenMax: String?

    @Option(name: .customLong("breaker-half-open-probes"), help: .key("Probes when half-open", "breaker.half-open-probes"))
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
