import Logging
/// The effective configuration as text: what `check-config` prints and what a
/// reload compares key by key.
extension FerryConfiguration {
    /// The effective configuration as `key = value` lines, in the order of ``keys``.
    public var renderedLines: [String] {
        let values: [ConfigurationKey: String] = [
            .listen: listeners.map { url in
                listenerAllow[url].map {
                    "\(url)\(url.description.contains("?") ? "&" : "?")allow=\($0.blocks.map(\.description).joined(separator: "&allow="))"
                } ?? url.description
            }
            .joined(separator: ","),
            .tcpIdleTimeout: Self.seconds(streamListener.idleTimeout),
            .tcpMaxConnections: String(streamListener.maxConnections),
            .tcpMaxConnectionsPerSource: String(streamListener.maxConnectionsPerSource),
            .tlsCert: tlsListener.certificatePath ?? Self.unset(.tlsCert),
            .tlsKey: tlsListener.keyPath ?? Self.unset(.tlsKey),
            .tlsCA: tlsListener.caPath ?? Self.unset(.tlsCA),
            .tlsClientAuth: tlsListener.clientAuth.rawValue,
            .tlsHandshakeTimeout: Self.seconds(tlsListener.handshakeTimeout),
            .upstreamTLSCA: tlsUpstream.caPath ?? Self.unset(.upstreamTLSCA),
            .upstreamTLSCert: tlsUpstream.certificatePath ?? Self.unset(.upstreamTLSCert),
            .upstreamTLSKey: tlsUpstream.keyPath ?? Self.unset(.upstreamTLSKey),
            .upstreamTLSInsecure: String(tlsUpstream.insecure),
            .authKeyFile: trust.keyFiles.first ?? Self.unset(.authKeyFile),
            .authKeyFiles: trust.keyFiles.dropFirst().joined(separator: ","),
            .adminTokenFile: trust.adminTokenFile ?? Self.unset(.adminTokenFile),
            .allow: allow.map(\.description) ?? Self.unset(.allow),
            .rateLimit: rateLimit.map { String($0.logsPerSecond) } ?? ConfigurationKey.rateLimit.shownDefault,
            .rateLimitBurst: rateLimit.map { String($0.burst) } ?? "(off)",
            .rateLimitMaxSources: rateLimit.map { String($0.maxSources) } ?? ConfigurationKey.rateLimitMaxSources.shownDefault,
            .httpAddress: httpAddress.description,
            .httpMaxBodyBytes: String(httpMaxBodyBytes),
            .httpHeaderTimeout: Self.seconds(httpHeaderTimeout),
            .httpIdleTimeout: Self.seconds(httpIdleTimeout),
            .httpMaxConnections: httpMaxConnections == 0 ? ConfigurationKey.httpMaxConnections.shownDefault : String(httpMaxConnections),
            .upstreams: routes.isEmpty
                ? upstreams.map(\.description).joined(separator: ",") : "(none: routes are configured; each route lists its own)",
            .queueCapacityLogs: String(queueCapacityLogs),
            .queueCapacityBytes: String(queueCapacityBytes),
            .spoolDir: spool?.directory ?? Self.unset(.spoolDir),
            .spoolMaxBytes: String(spoolDefaults.maxBytes),
            .spoolSegmentBytes: String(spoolDefaults.segmentBytes),
            .spoolFsync: spoolDefaults.sync.rawValue,
            .spoolFsyncInterval: Self.seconds(spoolDefaults.syncInterval),
            .datagramMaxBytes: String(maxDatagramBytes),
            .receiveSockets: receiveSockets == 0 ? "0 (one per core: \(effectiveReceiveSockets))" : String(receiveSockets),
            .receiveBufferBytes: String(receiveBufferBytes),
            .receiveBatch: String(receiveBatch),
            .receiveCoalesce: Self.seconds(receiveCoalesce),
            .logLevel: logLevel.rawValue,
            .logFormat: logFormat.rawValue,
            .logFile: logFile ?? Self.unset(.logFile),
            .logMaxBytes: String(logMaxBytes),
            .logKeep: String(logKeep),
            .instance: instance,
            .traceSampleRate: String(traceSampleRate),
            .traceFrameSampleInterval: Self.seconds(frameSampleInterval),
            .resolveInterval: Self.seconds(resolveInterval),
            .kernelCheckInterval: Self.seconds(kernelCheckInterval),
            .drainTimeout: Self.seconds(drainTimeout),
            .frameMaxBytes: String(frameMaxBytes),
            .ackTimeout: Self.seconds(ackTimeout),
            .frameTTL: Self.seconds(frameTTL),
            .windowFrames: String(windowFrames),
            .windowLogs: String(windowLogs),
            .frameLinger: Self.seconds(frameLinger),
            .udpSegmentation: String(udpSegmentation),
            .retryBase: Self.seconds(Duration(retryPolicy.base)),
            .retryCap: Self.seconds(Duration(retryPolicy.cap)),
            .retryMaxAttempts: String(retryPolicy.maximumAttempts),
            .retryBudgetRatio: String(retryBudget.ratio),
            .retryBudgetFloor: String(retryBudget.floorPerSecond),
            .breakerFailureRate: String(breaker.failureRateThreshold),
            .breakerWindow: String(breaker.window),
            .breakerMinimumCalls: String(breaker.minimumCalls),
            .breakerConsecutiveFailures: String(breaker.consecutiveFailures),
            .breakerOpenDuration: Self.seconds(Duration(breaker.openDuration)),
            .breakerOpenMax: Self.seconds(Duration(breaker.maximumOpenDuration)),
            .breakerHalfOpenProbes: String(breaker.halfOpenProbes),
        ]
        return Self.keys.map { "\($0.name) = \(values[$0] ?? "")" } + routeLines
    }

    /// What an unset key means, as its definition says: `(none)`, `(stderr)`.
    private static func unset(_ key: ConfigurationKey) -> String {
        "(\(key.shownDefault))"
    }

    private static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return "\(value)s"
    }
}
