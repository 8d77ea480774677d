import Configuration
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

extension FerryConfiguration {
    /// Reads and validates every key from `reader`, starting from the defaults.
    ///
    /// Throws ``ConfigurationError`` naming the first key whose value is unusable.
    ///
    /// - Parameter routeNames: the keys of the configuration file's `routes` map
    ///   (a reader cannot list keys; ``ConfigurationLoader`` reads them from the file).
    public init(reader: ConfigReader, routeNames: [String] = []) throws {
        self.init()
        let values = ConfigValues(reader: reader)

        if let list = try values.list("listen") {
            // Bounded: each running listener holds one of 64 positions a route's `match.listener` mask has (one is the HTTP intake's).
            guard list.count <= Self.maxListeners else {
                throw ConfigurationError.invalidValue(key: "listen", value: "\(list.count) listeners", allowed: "at most \(Self.maxListeners)")
            }
            var listeners: [ListenerURL] = []
            for item in list {
                let (text, allowItems) = Self.splitAllow(item)
                guard let listener = ListenerURL(parsing: text) else {
                    throw ConfigurationError.invalidValue(key: "listen", value: item, allowed: ListenerURL.allowedForms + " (port 0...65535)")
                }
                if let clash = listeners.first(where: {
                    $0.address == listener.address && $0.isStream == listener.isStream && listener.address.port != 0
                }) {
                    throw ConfigurationError.conflict(key: "listen", value: item, reason: "its address is already listened on by \(clash)")
                }
                listeners.append(listener)
                if !allowItems.isEmpty { listenerAllow[listener] = try Self.allowlist(allowItems, key: "listen", in: item) }
            }
            self.listeners = listeners
        }
        try readStreamSettings(values)
        try readTrustSettings(values)
        try readSourceLimits(values)
        if let http = try values.parsed("http.address", allowed: "HOST:PORT, port 0...65535", HostAndPort.init(parsing:)) {
            self.httpAddress = http
        }
        if let limit = try values.byteSize("http.max-body-bytes", range: 1...(1 << 30)) {
            self.httpMaxBodyBytes = limit
        }
        if let timeout = try values.duration("http.header-timeout", range: .milliseconds(100) ... .seconds(10)) {
            self.httpHeaderTimeout = timeout
        }
        if let timeout = try values.duration("http.idle-timeout", range: .seconds(1) ... .seconds(3600)) {
            self.httpIdleTimeout = timeout
        }
        if let count = try values.integer("http.max-connections", range: 0...1_000_000) {
            self.httpMaxConnections = count
        }
        var upstreamsGiven = false
        if let list = try values.list("upstreams") {
            var upstreams: [UpstreamURL] = []
            for item in list {
                guard let upstream = UpstreamURL(parsing: item) else {
                    throw ConfigurationError.invalidValue(key: "upstreams", value: item, allowed: UpstreamURL.allowedForms + " (port 1...65535)")
                }
                if upstreams.contains(upstream) {
                    throw ConfigurationError.conflict(key: "upstreams", value: item, reason: "listed twice")
                }
                upstreams.append(upstream)
            }
            self.upstreams = upstreams.isEmpty ? [Self.embeddedDefaultUpstream] : upstreams
            upstreamsGiven = !upstreams.isEmpty
        }
        if let logs = try values.integer("queue.capacity-logs", range: 1...BufferCapacity.maxLogs) {
            self.queueCapacityLogs = logs
        }
        if let bytes = try values.byteSize("queue.capacity-bytes", range: 1...BufferCapacity.maxBytes) {
            self.queueCapacityBytes = bytes
        }
        var spool = spoolDefaults
        if let bytes = try values.byteSize("spool.max-bytes", range: (1 << 20)...(1 << 44)) { spool.maxBytes = bytes }
        if let bytes = try values.byteSize("spool.segment-bytes", range: (64 << 10)...(1 << 30)) { spool.segmentBytes = bytes }
        if let policy = try values.parsed("spool.fsync", allowed: "interval, always, never", { SpoolSyncPolicy(rawValue: $0.lowercased()) }) {
            spool.sync = policy
        }
        if let interval = try values.duration("spool.fsync-interval", range: .milliseconds(1) ... .seconds(60)) { spool.syncInterval = interval }
        if spool.segmentBytes > spool.maxBytes {
            throw ConfigurationError.conflict(
                key: "spool.segment-bytes", value: String(spool.segmentBytes), reason: "must be at most spool.max-bytes (\(spool.maxBytes))")
        }
        self.spoolDefaults = spool
        if let directory = try values.parsed("spool.dir", allowed: "a directory path", { $0.isEmpty ? nil : $0 }) {
            spool.directory = directory
            self.spool = spool
        }
        if let size = try values.byteSize("datagram.max-bytes", range: 1...65_507) {
            self.maxDatagramBytes = size
        }
        if let sockets = try values.integer("receive.sockets", range: 0...256) {
            self.receiveSockets = sockets
        }
        if let bytes = try values.byteSize("receive.buffer-bytes", range: 4096...(1 << 30)) {
            self.receiveBufferBytes = bytes
        }
        if let batch = try values.integer("receive.batch", range: 1...1024) {
            self.receiveBatch = batch
        }
        if let pause = try values.duration("receive.coalesce", range: .zero ... .milliseconds(1)) {
            self.receiveCoalesce = pause
        }
        if let level = try values.parsed(
            "log.level", allowed: Logger.Level.allCases.map(\.rawValue).joined(separator: ", "), { Logger.Level(rawValue: $0.lowercased()) })
        {
            self.logLevel = level
        }
        if let format = try values.parsed("log.format", allowed: "json, text", { LogFormat(rawValue: $0.lowercased()) }) {
            self.logFormat = format
        }
        if let file = try values.parsed("log.file", allowed: "a file path", { $0.isEmpty ? nil : $0 }) {
            self.logFile = file
        }
        if let bytes = try values.byteSize("log.max-bytes", range: 4096...(1 << 40)) {
            self.logMaxBytes = bytes
        }
        if let keep = try values.integer("log.keep", range: 0...100) {
            self.logKeep = keep
        }
        if let instance = try values.parsed(
            "instance", allowed: "a name of 1 to 128 characters without spaces",
            {
                (1...128).contains($0.count) && !$0.contains(" ") ? $0 : nil
            })
        {
            self.instance = instance
        } else {
            // Two Ferrys on one host must be told apart in `ferry trace`: host name and UDP port.
            self.instance = listen.port == 0 ? "\(System.hostname)-\(getpid())" : "\(System.hostname):\(listen.port)"
        }
        if let interval = try values.duration("trace.frame-sample-interval", range: .zero ... .seconds(3600)) {
            self.frameSampleInterval = interval
        }
        if let rate = try values.decimal("trace.sample-rate", range: 0...1) {
            self.traceSampleRate = rate
        }
        if let interval = try values.duration("resolve.interval", range: .zero ... .seconds(86_400)) {
            self.resolveInterval = interval
        }
        if let interval = try values.duration("kernel.check-interval", range: .milliseconds(100) ... .seconds(3600)) {
            self.kernelCheckInterval = interval
        }
        if let timeout = try values.duration("drain.timeout", range: .zero ... .seconds(3600)) {
            self.drainTimeout = timeout
        }
        if let bytes = try values.byteSize("forward.frame-max-bytes", range: 64...65_000) {
            self.frameMaxBytes = bytes
        }
        if let timeout = try values.duration("forward.ack-timeout", range: .milliseconds(10) ... .seconds(60)) {
            self.ackTimeout = timeout
        }
        if let ttl = try values.duration("forward.frame-ttl", range: .seconds(1) ... .seconds(3600)) {
            self.frameTTL = ttl
        }
        if let frames = try values.integer("forward.window-frames", range: 1...256) {
            self.windowFrames = frames
        }
        if let logs = try values.integer("forward.window-logs", range: 64...1_000_000) {
            self.windowLogs = logs
        }
        if let linger = try values.duration("forward.frame-linger", range: .zero ... .milliseconds(100)) {
            self.frameLinger = linger
        }
        if let segmentation = try values.boolean("forward.udp-segmentation") {
            self.udpSegmentation = segmentation
        }
        if let base = try values.duration("retry.base", range: .milliseconds(1) ... .seconds(60)) {
            self.retryPolicy.base = TimeAmount(base)
        }
        if let cap = try values.duration("retry.cap", range: .milliseconds(1) ... .seconds(600)) {
            self.retryPolicy.cap = TimeAmount(cap)
        }
        if let attempts = try values.integer("retry.max-attempts", range: 1...100) {
            self.retryPolicy.maximumAttempts = attempts
        }
        if let ratio = try values.decimal("retry.budget-ratio", range: 0...10) {
            self.retryBudget.ratio = ratio
        }
        if let floor = try values.decimal("retry.budget-floor", range: 0...10_000) {
            self.retryBudget.floorPerSecond = floor
        }
        if let rate = try values.decimal("breaker.failure-rate", range: 0.01...1) {
            self.breaker.failureRateThreshold = rate
        }
        if let window = try values.integer("breaker.window", range: 1...10_000) {
            self.breaker.window = window
        }
        if let calls = try values.integer("breaker.minimum-calls", range: 1...10_000) {
            self.breaker.minimumCalls = calls
        }
        if let failures = try values.integer("breaker.consecutive-failures", range: 1...10_000) {
            self.breaker.consecutiveFailures = failures
        }
        if let wait = try values.duration("breaker.open-duration", range: .milliseconds(10) ... .seconds(3600)) {
            self.breaker.openDuration = TimeAmount(wait)
        }
        if let wait = try values.duration("breaker.open-max", range: .milliseconds(10) ... .seconds(3600)) {
            self.breaker.maximumOpenDuration = TimeAmount(wait)
        }
        if let probes = try values.integer("breaker.half-open-probes", range: 1...100) {
            self.breaker.halfOpenProbes = probes
        }
        if retryPolicy.cap < retryPolicy.base {
            throw ConfigurationError.conflict(
                key: "retry.cap", value: "\(retryPolicy.cap)", reason: "must be at least retry.base (\(retryPolicy.base))")
        }
        if breaker.maximumOpenDuration < breaker.openDuration {
            throw ConfigurationError.conflict(
                key: "breaker.open-max", value: "\(breaker.maximumOpenDuration)", reason: "must be at least breaker.open-duration")
        }
        if frameTTL <= ackTimeout {
            throw ConfigurationError.conflict(
                key: "forward.frame-ttl", value: "\(frameTTL)", reason: "must be longer than forward.ack-timeout (\(ackTimeout))")
        }
        if queueCapacityBytes < maxDatagramBytes {
            throw ConfigurationError.conflict(
                key: "queue.capacity-bytes", value: String(queueCapacityBytes),
                reason: "must be at least datagram.max-bytes (\(maxDatagramBytes)) so that one datagram of the largest size fits")
        }
        try readRoutes(values, names: routeNames, upstreamsGiven: upstreamsGiven)
    }

    /// `tcp.*`, `tls.*` and `upstream-tls.*`, and whether the listeners and upstreams that need them have them.
    private mutating func readStreamSettings(_ values: ConfigValues) throws {
        if let timeout = try values.duration("tcp.idle-timeout", range: .seconds(1) ... .seconds(86_400)) { streamListener.idleTimeout = timeout }
        if let count = try values.integer("tcp.max-connections", range: 1...1_000_000) { streamListener.maxConnections = count }
        if let count = try values.integer("tcp.max-connections-per-source", range: 1...1_000_000) {
            streamListener.maxConnectionsPerSource = count
        }
        let path: (String) -> String? = { $0.isEmpty ? nil : $0 }
        tlsListener.certificatePath = try values.parsed("tls.cert", allowed: "a PEM file path", path)
        tlsListener.keyPath = try values.parsed("tls.key", allowed: "a PEM file path", path)
        tlsListener.caPath = try values.parsed("tls.ca", allowed: "a PEM file path", path)
        if let auth = try values.parsed("tls.client-auth", allowed: "none, optional, required", { TLSClientAuth(rawValue: $0.lowercased()) }) {
            tlsListener.clientAuth = auth
        }
        if let timeout = try values.duration("tls.handshake-timeout", range: .milliseconds(100) ... .seconds(300)) {
            tlsListener.handshakeTimeout = timeout
        }
        tlsUpstream.caPath = try values.parsed("upstream-tls.ca", allowed: "a PEM file path", path)
        tlsUpstream.certificatePath = try values.parsed("upstream-tls.cert", allowed: "a PEM file path", path)
        tlsUpstream.keyPath = try values.parsed("upstream-tls.key", allowed: "a PEM file path", path)
        if let insecure = try values.boolean("upstream-tls.insecure") { tlsUpstream.insecure = insecure }

        if let tls = listeners.first(where: { if case .tls = $0 { return true } else { return false } }) {
            if tlsListener.certificatePath == nil || tlsListener.keyPath == nil {
                throw ConfigurationError.conflict(
                    key: "listen", value: tls.description, reason: "a tls:// listener needs tls.cert and tls.key (PEM files)")
            }
        }
        if tlsListener.clientAuth != .none, tlsListener.caPath == nil {
            throw ConfigurationError.conflict(
                key: "tls.client-auth", value: tlsListener.clientAuth.rawValue,
                reason: "needs tls.ca, the CA bundle client certificates are verified against")
        }
        if (tlsUpstream.certificatePath == nil) != (tlsUpstream.keyPath == nil) {
            throw ConfigurationError.conflict(
                key: tlsUpstream.certificatePath == nil ? "upstream-tls.key" : "upstream-tls.cert",
                value: tlsUpstream.certificatePath ?? tlsUpstream.keyPath ?? "", reason: "upstream-tls.cert and upstream-tls.key go together")
        }
    }

    /// Splits `URL?framing=lf&allow=CIDR&allow=CIDR` into the URL with its other parameters and the `allow` items.
    static func splitAllow(_ text: String) -> (String, [String]) {
        guard let mark = text.firstIndex(of: "?") else { return (text, []) }
        let parameters = text[text.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: false)
        let allow = parameters.filter { $0.hasPrefix("allow=") }.map { String($0.dropFirst("allow=".count)) }
        let rest = parameters.filter { !$0.hasPrefix("allow=") }
        return (String(text[..<mark]) + (rest.isEmpty ? "" : "?" + rest.joined(separator: "&")), allow)
    }

    static func allowlist(_ items: [String], key: String, in value: String? = nil) throws -> SourceAllowlist {
        var blocks: [CIDRBlock] = []
        for item in items {
            guard let block = CIDRBlock(parsing: item) else {
                throw ConfigurationError.invalidValue(
                    key: key, value: value ?? item, allowed: SourceAllowlist.allowedForms + "; '\(item)' is not one")
            }
            if !blocks.contains(block) { blocks.append(block) }
        }
        guard blocks.count <= 4096 else {
            throw ConfigurationError.invalidValue(key: key, value: value ?? "\(blocks.count) blocks", allowed: "at most 4096 blocks")
        }
        return SourceAllowlist(blocks)
    }

    /// `allow` and `rate-limit.*`.
    private mutating func readSourceLimits(_ values: ConfigValues) throws {
        if let items = try values.list("allow") { allow = try Self.allowlist(items, key: "allow") }
        let rate = try values.decimal("rate-limit.logs-per-second", range: 0...10_000_000) ?? 0
        let burst = try values.integer("rate-limit.burst", range: 1...100_000_000)
        let sources = try values.integer("rate-limit.max-sources", range: 16...10_000_000)
        if rate > 0 {
            rateLimit = RateLimitSettings(logsPerSecond: rate, burst: burst ?? max(1, Int(rate.rounded(.up))), maxSources: sources ?? 65_536)
        } else if burst != nil || sources != nil {
            throw ConfigurationError.conflict(
                key: burst != nil ? "rate-limit.burst" : "rate-limit.max-sources", value: String(burst ?? sources ?? 0),
                reason: "needs rate-limit.logs-per-second (--rate-limit) above 0")
        }
    }

    /// `auth.*`: the key files are read now, so a bad one fails `check-config` and start-up alike.
    private mutating func readTrustSettings(_ values: ConfigValues) throws {
        var files: [String] = []
        if let file = try values.parsed("auth.key-file", allowed: "a file path", { $0.isEmpty ? nil : $0 }) { files.append(file) }
        if let more = try values.list("auth.key-files") { files += more.filter { !$0.isEmpty } }
        trust.keyFiles = files
        trust.adminTokenFile = try values.parsed("admin.token-file", allowed: "a file path", { $0.isEmpty ? nil : $0 })
        do {
            _ = try trust.loadAdminToken()
        } catch {
            throw ConfigurationError.conflict(key: "admin.token-file", value: trust.adminTokenFile ?? "", reason: error.description)
        }
        do {
            _ = try trust.loadKeys()
        } catch {
            throw ConfigurationError.conflict(
                key: files.count == 1 ? "auth.key-file" : "auth.key-files", value: files.joined(separator: ","), reason: error.description)
        }
    }

    /// Most entries `listen` takes.
    public static let maxListeners = 63
}
