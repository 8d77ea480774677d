import Configuration
import Logging

extension FerryConfiguration {
    /// Reads and validates every key from `reader`, starting from the defaults.
    ///
    /// Throws ``ConfigurationError`` naming the first key whose value is unusable.
    public init(reader: ConfigReader) throws {
        self.init()
        let values = ConfigValues(reader: reader)

        if let listen = try values.parsed("listen", allowed: "HOST:PORT, port 0...65535", HostAndPort.init(parsing:)) {
            self.listen = listen
        }
        if let http = try values.parsed("http.address", allowed: "HOST:PORT, port 0...65535", HostAndPort.init(parsing:)) {
            self.httpAddress = http
        }
        if let limit = try values.byteSize("http.max-body-bytes", range: 1...(1 << 30)) {
            self.httpMaxBodyBytes = limit
        }
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
        }
        if let logs = try values.integer("queue.capacity-logs", range: 1...BufferCapacity.maxLogs) {
            self.queueCapacityLogs = logs
        }
        if let bytes = try values.byteSize("queue.capacity-bytes", range: 1...BufferCapacity.maxBytes) {
            self.queueCapacityBytes = bytes
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
        if let level = try values.parsed("log.level", allowed: Logger.Level.allCases.map(\.rawValue).joined(separator: ", "), { Logger.Level(rawValue: $0.lowercased()) }) {
            self.logLevel = level
        }
        if let format = try values.parsed("log.format", allowed: "json, text", { LogFormat(rawValue: $0.lowercased()) }) {
            self.logFormat = format
        }
        if let timeout = try values.duration("drain.timeout", range: .zero ... .seconds(3600)) {
            self.drainTimeout = timeout
        }
        if queueCapacityBytes < maxDatagramBytes {
            throw ConfigurationError.conflict(
                key: "queue.capacity-bytes", value: String(queueCapacityBytes),
                reason: "must be at least datagram.max-bytes (\(maxDatagramBytes)) so that one datagram of the largest size fits")
        }
    }

    /// The effective configuration as `key = value` lines, in the order of ``keys``.
    public var renderedLines: [String] {
        let durationSeconds = Double(drainTimeout.components.seconds) + Double(drainTimeout.components.attoseconds) / 1e18
        let values: [String: String] = [
            "listen": listen.description,
            "http.address": httpAddress.description,
            "http.max-body-bytes": String(httpMaxBodyBytes),
            "upstreams": upstreams.map(\.description).joined(separator: ","),
            "queue.capacity-logs": String(queueCapacityLogs),
            "queue.capacity-bytes": String(queueCapacityBytes),
            "datagram.max-bytes": String(maxDatagramBytes),
            "receive.sockets": receiveSockets == 0 ? "0 (one per core: \(effectiveReceiveSockets))" : String(receiveSockets),
            "receive.buffer-bytes": String(receiveBufferBytes),
            "receive.batch": String(receiveBatch),
            "log.level": logLevel.rawValue,
            "log.format": logFormat.rawValue,
            "drain.timeout": "\(durationSeconds)s",
        ]
        return Self.keys.map { "\($0.name) = \(values[$0.name] ?? "")" }
    }
}
