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

        if let list = try values.list(.listen) {
            // Bounded: each running listener holds one of 64 positions a route's `match.listener` mask has (one is the HTTP intake's).
            guard list.count <= Self.maxListeners else {
                throw ConfigurationError.invalidValue(.listen, value: "\(list.count) listeners", allowed: "at most \(Self.maxListeners)")
            }
            var listeners: [ListenerURL] = []
            for item in list {
                let (text, allowItems) = Self.splitAllow(item)
                guard let listener = ListenerURL(parsing: text) else {
                    throw ConfigurationError.invalidValue(.listen, value: item)
                }
                if let clash = listeners.first(where: {
                    $0.address == listener.address && $0.isStream == listener.isStream && listener.address.port != 0
                }) {
                    throw ConfigurationError.conflict(.listen, value: item, reason: "its address is already listened on by \(clash)")
                }
                listeners.append(listener)
                if !allowItems.isEmpty { listenerAllow[listener] = try Self.allowlist(allowItems, key: ConfigurationKey.listen.name, in: item) }
            }
            self.listeners = listeners
        }
        try readStreamSettings(values)
        try readTrustSettings(values)
        try readSourceLimits(values)
        if let http = try values.parsed(.httpAddress, HostAndPort.init(parsing:)) {
            self.httpAddress = http
        }
        if let limit = try values.byteSize(.httpMaxBodyBytes) {
            self.httpMaxBodyBytes = limit
        }
        if let timeout = try values.duration(.httpHeaderTimeout) {
            self.httpHeaderTimeout = timeout
        }
        if let timeout = try values.duration(.httpIdleTimeout) {
            self.httpIdleTimeout = timeout
        }
        if let count = try values.integer(.httpMaxConnections) {
            self.httpMaxConnections = count
        }
        var upstreamsGiven = false
        if let list = try values.list(.upstreams) {
            var upstreams: [UpstreamURL] = []
            for item in list {
                guard let upstream = UpstreamURL(parsing: item) else {
                    throw ConfigurationError.invalidValue(.upstreams, value: item)
                }
                if upstreams.contains(upstream) {
                    throw ConfigurationError.conflict(.upstreams, value: item, reason: "listed twice")
                }
                upstreams.append(upstream)
            }
            self.upstreams = upstreams.isEmpty ? [Self.embeddedDefaultUpstream] : upstreams
            upstreamsGiven = values.isSet(.upstreams) && !upstreams.isEmpty
        }
        if let logs = try values.integer(.queueCapacityLogs) {
            self.queueCapacityLogs = logs
        }
        if let bytes = try values.byteSize(.queueCapacityBytes) {
            self.queueCapacityBytes = bytes
        }
        var spool = spoolDefaults
        if let bytes = try values.byteSize(.spoolMaxBytes) { spool.maxBytes = bytes }
        if let bytes = try values.byteSize(.spoolSegmentBytes) { spool.segmentBytes = bytes }
        if let policy = try values.choice(.spoolFsync, as: SpoolSyncPolicy.self) {
            spool.sync = policy
        }
        if let interval = try values.duration(.spoolFsyncInterval) { spool.syncInterval = interval }
        if spool.segmentBytes > spool.maxBytes {
            throw ConfigurationError.conflict(
                .spoolSegmentBytes, value: String(spool.segmentBytes), reason: "must be at most spool.max-bytes (\(spool.maxBytes))")
        }
        self.spoolDefaults = spool
        if let directory = try values.parsed(.spoolDir, { $0.isEmpty ? nil : $0 }) {
            spool.directory = directory
            self.spool = spool
        }
        if let size = try values.byteSize(.datagramMaxBytes) {
            self.maxDatagramBytes = size
        }
        if let sockets = try values.integer(.receiveSockets) {
            self.receiveSockets = sockets
        }
        if let bytes = try values.byteSize(.receiveBufferBytes) {
            self.receiveBufferBytes = bytes
        }
        if let batch = try values.integer(.receiveBatch) {
            self.receiveBatch = batch
        }
        if let pause = try values.duration(.receiveCoalesce) {
            self.receiveCoalesce = pause
        }
        if let level = try values.choice(.logLevel, as: Logger.Level.self) {
            self.logLevel = level
        }
        if let format = try values.choice(.logFormat, as: LogFormat.self) {
            self.logFormat = format
        }
        if let file = try values.parsed(.logFile, { $0.isEmpty ? nil : $0 }) {
            self.logFile = file
        }
        if let bytes = try values.byteSize(.logMaxBytes) {
            self.logMaxBytes = bytes
        }
        if let keep = try values.integer(.logKeep) {
            self.logKeep = keep
        }
        if let instance = try values.parsed(.instance, { (1...128).contains($0.count) && !$0.contains(" ") ? $0 : nil }) {
            self.instance = instance
        } else {
            // Two Ferrys on one host must be told apart in `ferry trace`: host name and UDP port.
            self.instance = listen.port == 0 ? "\(System.hostname)-\(getpid())" : "\(System.hostname):\(listen.port)"
        }
        if let interval = try values.duration(.traceFrameSampleInterval) {
            self.frameSampleInterval = interval
        }
        if let rate = try values.decimal(.traceSampleRate) {
            self.traceSampleRate = rate
        }
        if let interval = try values.duration(.resolveInterval) {
            self.resolveInterval = interval
        }
        if let interval = try values.duration(.kernelCheckInterval) {
            self.kernelCheckInterval = interval
        }
        if let timeout = try values.duration(.drainTimeout) {
            self.drainTimeout = timeout
        }
        if let bytes = try values.byteSize(.frameMaxBytes) {
            self.frameMaxBytes = bytes
        }
        if let timeout = try values.duration(.ackTimeout) {
            self.ackTimeout = timeout
        }
        if let ttl = try values.duration(.frameTTL) {
            self.frameTTL = ttl
        }
        if let frames = try values.integer(.windowFrames) {
            self.windowFrames = frames
        }
        if let logs = try values.integer(.windowLogs) {
            self.windowLogs = logs
        }
        if let linger = try values.duration(.frameLinger) {
            self.frameLinger = linger
        }
        if let segmentation = try values.boolean(.udpSegmentation) {
            self.udpSegmentation = segmentation
        }
        if let base = try values.duration(.retryBase) {
            self.retryPolicy.base = TimeAmount(base)
        }
        if let cap = try values.duration(.retryCap) {
            self.retryPolicy.cap = TimeAmount(cap)
        }
        if let attempts = try values.integer(.retryMaxAttempts) {
            self.retryPolicy.maximumAttempts = attempts
        }
        if let ratio = try values.decimal(.retryBudgetRatio) {
            self.retryBudget.ratio = ratio
        }
        if let floor = try values.decimal(.retryBudgetFloor) {
            self.retryBudget.floorPerSecond = floor
        }
        if let rate = try values.decimal(.breakerFailureRate) {
            self.breaker.failureRateThreshold = rate
        }
        if let window = try values.integer(.breakerWindow) {
            self.breaker.window = window
        }
        if let calls = try values.integer(.breakerMinimumCalls) {
            self.breaker.minimumCalls = calls
        }
        if let failures = try values.integer(.breakerConsecutiveFailures) {
            self.breaker.consecutiveFailures = failures
        }
        if let wait = try values.duration(.breakerOpenDuration) {
            self.breaker.openDuration = TimeAmount(wait)
        }
        if let wait = try values.duration(.breakerOpenMax) {
            self.breaker.maximumOpenDuration = TimeAmount(wait)
        }
        if let probes = try values.integer(.breakerHalfOpenProbes) {
            self.breaker.halfOpenProbes = probes
        }
        if retryPolicy.cap < retryPolicy.base {
            throw ConfigurationError.conflict(
                .retryCap, value: "\(retryPolicy.cap)", reason: "must be at least retry.base (\(retryPolicy.base))")
        }
        if breaker.maximumOpenDuration < breaker.openDuration {
            throw ConfigurationError.conflict(
                .breakerOpenMax, value: "\(breaker.maximumOpenDuration)", reason: "must be at least breaker.open-duration")
        }
        if frameTTL <= ackTimeout {
            throw ConfigurationError.conflict(
                .frameTTL, value: "\(frameTTL)", reason: "must be longer than forward.ack-timeout (\(ackTimeout))")
        }
        if queueCapacityBytes < maxDatagramBytes {
            throw ConfigurationError.conflict(
                .queueCapacityBytes, value: String(queueCapacityBytes),
                reason: "must be at least datagram.max-bytes (\(maxDatagramBytes)) so that one datagram of the largest size fits")
        }
        try readRoutes(values, names: routeNames, upstreamsGiven: upstreamsGiven)
    }

    /// `tcp.*`, `tls.*` and `upstream-tls.*`, and whether the listeners and upstreams that need them have them.
    private mutating func readStreamSettings(_ values: ConfigValues) throws {
        if let timeout = try values.duration(.tcpIdleTimeout) { streamListener.idleTimeout = timeout }
        if let count = try values.integer(.tcpMaxConnections) { streamListener.maxConnections = count }
        if let count = try values.integer(.tcpMaxConnectionsPerSource) {
            streamListener.maxConnectionsPerSource = count
        }
        let path: (String) -> String? = { $0.isEmpty ? nil : $0 }
        tlsListener.certificatePath = try values.parsed(.tlsCert, path)
        tlsListener.keyPath = try values.parsed(.tlsKey, path)
        tlsListener.caPath = try values.parsed(.tlsCA, path)
        if let auth = try values.choice(.tlsClientAuth, as: TLSClientAuth.self) {
            tlsListener.clientAuth = auth
        }
        if let timeout = try values.duration(.tlsHandshakeTimeout) {
            tlsListener.handshakeTimeout = timeout
        }
        tlsUpstream.caPath = try values.parsed(.upstreamTLSCA, path)
        tlsUpstream.certificatePath = try values.parsed(.upstreamTLSCert, path)
        tlsUpstream.keyPath = try values.parsed(.upstreamTLSKey, path)
        if let insecure = try values.boolean(.upstreamTLSInsecure) { tlsUpstream.insecure = insecure }

        if let tls = listeners.first(where: { if case .tls = $0 { return true } else { return false } }) {
            if tlsListener.certificatePath == nil || tlsListener.keyPath == nil {
                throw ConfigurationError.conflict(
                    .listen, value: tls.description, reason: "a tls:// listener needs tls.cert and tls.key (PEM files)")
            }
        }
        if tlsListener.clientAuth != .none, tlsListener.caPath == nil {
            throw ConfigurationError.conflict(
                .tlsClientAuth, value: tlsListener.clientAuth.rawValue,
                reason: "needs tls.ca, the CA bundle client certificates are verified against")
        }
        if (tlsUpstream.certificatePath == nil) != (tlsUpstream.keyPath == nil) {
            throw ConfigurationError.conflict(
                tlsUpstream.certificatePath == nil ? .upstreamTLSKey : .upstreamTLSCert,
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
        if let items = try values.list(.allow) { allow = try Self.allowlist(items, key: ConfigurationKey.allow.name) }
        let rate = try values.decimal(.rateLimit) ?? 0
        let burst = try values.integer(.rateLimitBurst)
        let sources = try values.integer(.rateLimitMaxSources)
        if rate > 0 {
            var limit = RateLimitSettings(logsPerSecond: rate, burst: burst ?? max(1, Int(rate.rounded(.up))))
            if let sources { limit.maxSources = sources }
            rateLimit = limit
        } else if burst != nil || values.isSet(.rateLimitMaxSources) {
            throw ConfigurationError.conflict(
                burst != nil ? .rateLimitBurst : .rateLimitMaxSources, value: String(burst ?? sources ?? 0),
                reason: "needs rate-limit.logs-per-second (--rate-limit) above 0")
        }
    }

    /// `auth.*`: the key files are read now, so a bad one fails `check-config` and start-up alike.
    private mutating func readTrustSettings(_ values: ConfigValues) throws {
        var files: [String] = []
        if let file = try values.parsed(.authKeyFile, { $0.isEmpty ? nil : $0 }) { files.append(file) }
        if let more = try values.list(.authKeyFiles) { files += more.filter { !$0.isEmpty } }
        trust.keyFiles = files
        trust.adminTokenFile = try values.parsed(.adminTokenFile, { $0.isEmpty ? nil : $0 })
        do {
            _ = try trust.loadAdminToken()
        } catch {
            throw ConfigurationError.conflict(.adminTokenFile, value: trust.adminTokenFile ?? "", reason: error.description)
        }
        do {
            _ = try trust.loadKeys()
        } catch {
            throw ConfigurationError.conflict(
                files.count == 1 ? .authKeyFile : .authKeyFiles, value: files.joined(separator: ","), reason: error.description)
        }
    }

    /// Most entries `listen` takes.
    public static let maxListeners = 63
}
