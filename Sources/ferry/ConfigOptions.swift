import ArgumentParser
import FerryCore
import Foundation

/// The flags every command that reads configuration shares. Each one maps to a
/// configuration key (see `FerryConfiguration.keys`) and wins over the file and
/// the environment.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (.yaml, .yml or .json).")
    var config: String?

    @Option(name: .long, help: "UDP address to receive logs on (key listen).")
    var listen: String?

    @Option(name: .customLong("http"), help: "HTTP control-plane address (key http.address).")
    var http: String?

    @Option(name: .customLong("http-max-body-bytes"), help: "Largest POST /v1/logs body (key http.max-body-bytes).")
    var httpMaxBodyBytes: String?

    @Option(name: .customLong("upstream"), help: "Upstream in failover order, repeatable: udp://HOST:PORT or file:PATH (key upstreams).")
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

    @Option(name: .customLong("log-level"), help: "Log level (key log.level).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "json or text (key log.format).")
    var logFormat: String?

    @Option(name: .customLong("drain-timeout"), help: "Drain time on shutdown (key drain.timeout).")
    var drainTimeout: String?

    /// Flag values by configuration key.
    var flagValues: [String: String] {
        let pairs: [(String, String?)] = [
            ("listen", listen),
            ("http.address", http),
            ("http.max-body-bytes", httpMaxBodyBytes),
            ("queue.capacity-logs", queueCapacityLogs),
            ("queue.capacity-bytes", queueCapacityBytes),
            ("datagram.max-bytes", datagramMaxBytes),
            ("receive.sockets", receiveSockets),
            ("receive.buffer-bytes", receiveBufferBytes),
            ("receive.batch", receiveBatch),
            ("log.level", logLevel),
            ("log.format", logFormat),
            ("drain.timeout", drainTimeout),
        ]
        return Dictionary(uniqueKeysWithValues: pairs.compactMap { key, value in value.map { (key, $0) } })
    }

    /// Reads defaults < file < environment < flags into a validated configuration.
    func load() async throws -> FerryConfiguration {
        let loader = ConfigurationLoader(
            flags: flagValues, upstreamFlags: upstreams,
            environment: ProcessInfo.processInfo.environment, filePath: config)
        return try await loader.load()
    }
}
