/// The effective configuration as text: what `check-config` prints and what a
/// reload compares key by key.
extension FerryConfiguration {
    /// The effective configuration as `key = value` lines, in the order of ``keys``.
    public var renderedLines: [String] {
        let values: [String: String] = [
            "listen": listeners.map { url in
                listenerAllow[url].map {
                    "\(url)\(url.description.contains("?") ? "&" : "?")allow=\($0.blocks.map(\.description).joined(separator: "&allow="))"
                } ?? url.description
            }
            .joined(separator: ","),
            "tcp.idle-timeout": Self.seconds(streamListener.idleTimeout),
            "tcp.max-connections": String(streamListener.maxConnections),
            "tcp.max-connections-per-source": String(streamListener.maxConnectionsPerSource),
            "tls.cert": tlsListener.certificatePath ?? "(none)",
            "tls.key": tlsListener.keyPath ?? "(none)",
            "tls.ca": tlsListener.caPath ?? "(none)",
            "tls.client-auth": tlsListener.clientAuth.rawValue,
            "tls.handshake-timeout": Self.seconds(tlsListener.handshakeTimeout),
            "upstream-tls.ca": tlsUpstream.caPath ?? "(system trust store)",
            "upstream-tls.cert": tlsUpstream.certificatePath ?? "(none)",
            "upstream-tls.key": tlsUpstream.keyPath ?? "(none)",
            "upstream-tls.insecure": String(tlsUpstream.insecure),
            "auth.key-file": trust.keyFiles.first ?? "(none: ferry:// frames are not keyed)",
            "auth.key-files": trust.keyFiles.dropFirst().joined(separator: ","),
            "admin.token-file": trust.adminTokenFile ?? "(none: admin endpoints are off)",
            "allow": allow.map(\.description) ?? "(any source)",
            "rate-limit.logs-per-second": rateLimit.map { String($0.logsPerSecond) } ?? "0 (off)",
            "rate-limit.burst": rateLimit.map { String($0.burst) } ?? "(off)",
            "rate-limit.max-sources": String(rateLimit?.maxSources ?? 65_536),
            "http.address": httpAddress.description,
            "http.max-body-bytes": String(httpMaxBodyBytes),
            "http.header-timeout": Self.seconds(httpHeaderTimeout),
            "http.idle-timeout": Self.seconds(httpIdleTimeout),
            "http.max-connections": httpMaxConnections == 0 ? "0 (from the file-descriptor limit)" : String(httpMaxConnections),
            "upstreams": routes.isEmpty
                ? upstreams.map(\.description).joined(separator: ",") : "(none: routes are configured; each route lists its own)",
            "queue.capacity-logs": String(queueCapacityLogs),
            "queue.capacity-bytes": String(queueCapacityBytes),
            "spool.dir": spool?.directory ?? "(none: memory buffer only)",
            "spool.max-bytes": String(spoolDefaults.maxBytes),
            "spool.segment-bytes": String(spoolDefaults.segmentBytes),
            "spool.fsync": spoolDefaults.sync.rawValue,
            "spool.fsync-interval": Self.seconds(spoolDefaults.syncInterval),
            "datagram.max-bytes": String(maxDatagramBytes),
            "receive.sockets": receiveSockets == 0 ? "0 (one per core: \(effectiveReceiveSockets))" : String(receiveSockets),
            "receive.buffer-bytes": String(receiveBufferBytes),
            "receive.batch": String(receiveBatch),
            "receive.coalesce": Self.seconds(receiveCoalesce),
            "log.level": logLevel.rawValue,
            "log.format": logFormat.rawValue,
            "log.file": logFile ?? "(stderr)",
            "log.max-bytes": String(logMaxBytes),
            "log.keep": String(logKeep),
            "instance": instance,
            "trace.sample-rate": String(traceSampleRate),
            "trace.frame-sample-interval": Self.seconds(frameSampleInterval),
            "resolve.interval": Self.seconds(resolveInterval),
            "kernel.check-interval": Self.seconds(kernelCheckInterval),
            "drain.timeout": Self.seconds(drainTimeout),
            "forward.frame-max-bytes": String(frameMaxBytes),
            "forward.ack-timeout": Self.seconds(ackTimeout),
            "forward.frame-ttl": Self.seconds(frameTTL),
            "forward.window-frames": String(windowFrames),
            "forward.window-logs": String(windowLogs),
            "forward.frame-linger": Self.seconds(frameLinger),
            "forward.udp-segmentation": String(udpSegmentation),
            "retry.base": Self.seconds(Duration(retryPolicy.base)),
            "retry.cap": Self.seconds(Duration(retryPolicy.cap)),
            "retry.max-attempts": String(retryPolicy.maximumAttempts),
            "retry.budget-ratio": String(retryBudget.ratio),
            "retry.budget-floor": String(retryBudget.floorPerSecond),
            "breaker.failure-rate": String(breaker.failureRateThreshold),
            "breaker.window": String(breaker.window),
            "breaker.minimum-calls": String(breaker.minimumCalls),
            "breaker.consecutive-failures": String(breaker.consecutiveFailures),
            "breaker.open-duration": Self.seconds(Duration(breaker.openDuration)),
            "breaker.open-max": Self.seconds(Duration(breaker.maximumOpenDuration)),
            "breaker.half-open-probes": String(breaker.halfOpenProbes),
        ]
        return Self.keys.map { "\($0.name) = \(values[$0.name] ?? "")" } + routeLines
    }

    private static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return "\(value)s"
    }
}
