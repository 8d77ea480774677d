import Configuration
import SystemPackage

/// Builds a ``FerryConfiguration`` from its four sources, in rising precedence:
/// built-in defaults < configuration file < `FERRY_…` environment < flags.
public struct ConfigurationLoader: Sendable {
    /// Values given as flags, by configuration key (`queue.capacity-logs`).
    public var flags: [String: String]
    /// Upstreams given as repeated `--upstream` flags.
    public var upstreamFlags: [String]
    /// The process environment (injected for tests).
    public var environment: [String: String]
    /// A YAML (`.yaml`, `.yml`) or JSON (`.json`) file, if any.
    public var filePath: String?

    public init(flags: [String: String] = [:], upstreamFlags: [String] = [], environment: [String: String], filePath: String? = nil) {
        self.flags = flags
        self.upstreamFlags = upstreamFlags
        self.environment = environment
        self.filePath = filePath
    }

    /// Reads every source and validates the result.
    public func load() async throws -> FerryConfiguration {
        var providers: [any ConfigProvider] = []

        var flagValues: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, value) in flags {
            flagValues[AbsoluteConfigKey(ConfigKey(key))] = ConfigValue(.string(value), isSecret: false)
        }
        if !upstreamFlags.isEmpty {
            flagValues["upstreams"] = ConfigValue(.stringArray(upstreamFlags), isSecret: false)
        }
        providers.append(InMemoryProvider(name: "flags", values: flagValues))

        // Only FERRY_-prefixed variables are read; the key `queue.capacity-logs`
        // is looked up as FERRY_QUEUE_CAPACITY_LOGS.
        providers.append(EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "ferry"))

        if let filePath {
            providers.append(try await Self.fileProvider(path: filePath))
        }
        return try FerryConfiguration(reader: ConfigReader(providers: providers))
    }

    static func fileProvider(path: String) async throws -> any ConfigProvider {
        let lower = path.lowercased()
        do {
            if lower.hasSuffix(".json") {
                return try await FileProvider<JSONSnapshot>(filePath: FilePath(path))
            } else if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
                return try await FileProvider<YAMLSnapshot>(filePath: FilePath(path))
            }
        } catch {
            throw ConfigurationError.unreadableFile(path: path, reason: String(describing: error))
        }
        throw ConfigurationError.unreadableFile(path: path, reason: "unknown file type; allowed: .yaml, .yml or .json")
    }
}
