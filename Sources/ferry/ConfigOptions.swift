import ArgumentParser
import FerryCore
import Foundation

/// The flags every command that reads configuration shares: one per configuration key, in the order of
/// `FerryConfiguration.keys`, each winning over the file and the environment.
///
/// A flag's name, help text and shown default come from its key's definition (`@Option(key:)`); the value
/// carries its key, so ``flagValues`` collects them without a second list. `ConfigurationKeysTests` fails when a
/// key has no flag here or a flag no key.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (.yaml, .yml or .json).")
    var config: String?

    @Option(key: .listen) var listen: [ConfigFlag] = []
    @Option(key: .tcpIdleTimeout) var tcpIdleTimeout: ConfigFlag?
    @Option(key: .tcpMaxConnections) var tcpMaxConnections: ConfigFlag?
    @Option(key: .tcpMaxConnectionsPerSource) var tcpMaxConnectionsPerSource: ConfigFlag?
    @Option(key: .tlsCert) var tlsCert: ConfigFlag?
    @Option(key: .tlsKey) var tlsKey: ConfigFlag?
    @Option(key: .tlsCA) var tlsCA: ConfigFlag?
    @Option(key: .tlsClientAuth) var tlsClientAuth: ConfigFlag?
    @Option(key: .tlsHandshakeTimeout) var tlsHandshakeTimeout: ConfigFlag?
    @Option(key: .upstreamTLSCA) var upstreamTLSCA: ConfigFlag?
    @Option(key: .upstreamTLSCert) var upstreamTLSCert: ConfigFlag?
    @Option(key: .upstreamTLSKey) var upstreamTLSKey: ConfigFlag?
    @Option(key: .upstreamTLSInsecure) var upstreamTLSInsecure: ConfigFlag?
    @Option(key: .authKeyFile) var authKeyFile: ConfigFlag?
    @Option(key: .authKeyFiles) var authKeyFiles: [ConfigFlag] = []
    @Option(key: .adminTokenFile) var adminTokenFile: ConfigFlag?
    @Option(key: .allow) var allow: [ConfigFlag] = []
    @Option(key: .rateLimit) var rateLimit: ConfigFlag?
    @Option(key: .rateLimitBurst) var rateLimitBurst: ConfigFlag?
    @Option(key: .rateLimitMaxSources) var rateLimitMaxSources: ConfigFlag?
    @Option(key: .httpAddress) var httpAddress: ConfigFlag?
    @Option(key: .httpMaxBodyBytes) var httpMaxBodyBytes: ConfigFlag?
    @Option(key: .httpHeaderTimeout) var httpHeaderTimeout: ConfigFlag?
    @Option(key: .httpIdleTimeout) var httpIdleTimeout: ConfigFlag?
    @Option(key: .httpMaxConnections) var httpMaxConnections: ConfigFlag?
    @Option(key: .upstreams) var upstreams: [ConfigFlag] = []
    @Option(key: .queueCapacityLogs) var queueCapacityLogs: ConfigFlag?
    @Option(key: .queueCapacityBytes) var queueCapacityBytes: ConfigFlag?
    @Option(key: .spoolDir) var spoolDir: ConfigFlag?
    @Option(key: .spoolMaxBytes) var spoolMaxBytes: ConfigFlag?
    @Option(key: .spoolSegmentBytes) var spoolSegmentBytes: ConfigFlag?
    @Option(key: .spoolFsync) var spoolFsync: ConfigFlag?
    @Option(key: .spoolFsyncInterval) var spoolFsyncInterval: ConfigFlag?
    @Option(key: .datagramMaxBytes) var datagramMaxBytes: ConfigFlag?
    @Option(key: .receiveSockets) var receiveSockets: ConfigFlag?
    @Option(key: .receiveBufferBytes) var receiveBufferBytes: ConfigFlag?
    @Option(key: .receiveBatch) var receiveBatch: ConfigFlag?
    @Option(key: .receiveCoalesce) var receiveCoalesce: ConfigFlag?
    @Option(key: .logLevel) var logLevel: ConfigFlag?
    @Option(key: .logFormat) var logFormat: ConfigFlag?
    @Option(key: .logFile) var logFile: ConfigFlag?
    @Option(key: .logMaxBytes) var logMaxBytes: ConfigFlag?
    @Option(key: .logKeep) var logKeep: ConfigFlag?
    @Option(key: .instance) var instance: ConfigFlag?
    @Option(key: .traceFrameSampleInterval) var traceFrameSampleInterval: ConfigFlag?
    @Option(key: .traceSampleRate) var traceSampleRate: ConfigFlag?
    @Option(key: .resolveInterval) var resolveInterval: ConfigFlag?
    @Option(key: .kernelCheckInterval) var kernelCheckInterval: ConfigFlag?
    @Option(key: .drainTimeout) var drainTimeout: ConfigFlag?
    @Option(key: .frameMaxBytes) var frameMaxBytes: ConfigFlag?
    @Option(key: .ackTimeout) var ackTimeout: ConfigFlag?
    @Option(key: .frameTTL) var frameTTL: ConfigFlag?
    @Option(key: .windowFrames) var windowFrames: ConfigFlag?
    @Option(key: .windowLogs) var windowLogs: ConfigFlag?
    @Option(key: .frameLinger) var frameLinger: ConfigFlag?
    @Option(key: .udpSegmentation) var udpSegmentation: ConfigFlag?
    @Option(key: .retryBase) var retryBase: ConfigFlag?
    @Option(key: .retryCap) var retryCap: ConfigFlag?
    @Option(key: .retryMaxAttempts) var retryMaxAttempts: ConfigFlag?
    @Option(key: .retryBudgetRatio) var retryBudgetRatio: ConfigFlag?
    @Option(key: .retryBudgetFloor) var retryBudgetFloor: ConfigFlag?
    @Option(key: .breakerFailureRate) var breakerFailureRate: ConfigFlag?
    @Option(key: .breakerWindow) var breakerWindow: ConfigFlag?
    @Option(key: .breakerMinimumCalls) var breakerMinimumCalls: ConfigFlag?
    @Option(key: .breakerConsecutiveFailures) var breakerConsecutiveFailures: ConfigFlag?
    @Option(key: .breakerOpenDuration) var breakerOpenDuration: ConfigFlag?
    @Option(key: .breakerOpenMax) var breakerOpenMax: ConfigFlag?
    @Option(key: .breakerHalfOpenProbes) var breakerHalfOpenProbes: ConfigFlag?

    /// Single-valued flags given, by configuration key.
    var flagValues: [String: String] {
        Dictionary(uniqueKeysWithValues: flags.compactMap { ($0 as? Option<ConfigFlag?>)?.wrappedValue.map { ($0.key, $0.value) } })
    }

    /// Repeated flags given (`--listen`, `--upstream`, …), by configuration key.
    var listFlagValues: [String: [String]] {
        var lists: [String: [String]] = [:]
        for case let option as Option<[ConfigFlag]> in flags {
            for flag in option.wrappedValue { lists[flag.key, default: []].append(flag.value) }
        }
        return lists
    }

    private var flags: [Any] { Mirror(reflecting: self).children.map(\.value) }

    /// Reads defaults < file < environment < flags into a validated configuration.
    func load() async throws -> FerryConfiguration {
        try await loader.load()
    }

    var loader: ConfigurationLoader {
        var loader = ConfigurationLoader(flags: flagValues, environment: ProcessInfo.processInfo.environment, filePath: config)
        loader.listFlags = listFlagValues
        return loader
    }

    /// Warnings for `FERRY_…` variables that name no key.
    var environmentWarnings: [String] {
        loader.unknownEnvironmentVariables.map {
            "warning: environment variable \($0) names no configuration key and is ignored (see 'ferry check-config' for the keys)"
        }
    }
}
