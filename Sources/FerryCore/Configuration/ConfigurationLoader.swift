import Configuration
import Foundation
import SystemPackage
import Yams

/// Builds a ``FerryConfiguration`` from its four sources, in rising precedence:
/// built-in defaults < configuration file < `FERRY_…` environment < flags.
public struct ConfigurationLoader: Sendable {
    /// Values given as flags, by configuration key (`queue.capacity-logs`).
    public var flags: [String: String]
    /// Upstreams given as repeated `--upstream` flags.
    public var upstreamFlags: [String]
    /// List-valued keys given as repeated flags (`listen`, `auth.key-files`, `allow`), by key.
    public var listFlags: [String: [String]] = [:]
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
        for (key, list) in listFlags where !list.isEmpty {
            flagValues[AbsoluteConfigKey(ConfigKey(key))] = ConfigValue(.stringArray(list), isSecret: false)
        }
        providers.append(InMemoryProvider(name: "flags", values: flagValues))

        // Only FERRY_-prefixed variables are read; the key `queue.capacity-logs`
        // is looked up as FERRY_QUEUE_CAPACITY_LOGS.
        providers.append(EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "ferry"))

        var routeNames: [String] = []
        if let filePath {
            providers.append(try await Self.fileProvider(path: filePath))
            let root = try Self.rejectUnknownKeys(inFile: filePath)
            routeNames = root.map(FerryConfiguration.routeNames(in:)) ?? []
        }
        return try FerryConfiguration(reader: ConfigReader(providers: providers), routeNames: routeNames)
    }

    /// `FERRY_…` variables that name no key (typos, or settings of another tool).
    public var unknownEnvironmentVariables: [String] {
        let known = Set(FerryConfiguration.keys.map(\.environmentVariable))
        return environment.keys.filter { $0.hasPrefix("FERRY_") && !known.contains($0) }.sorted()
    }

    /// Fails on a key the file sets that Ferry does not read, naming the closest known key;
    /// returns the file's top-level map (where route names are read from).
    @discardableResult
    static func rejectUnknownKeys(inFile path: String) throws -> [String: Any]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let root: Any?
        if path.lowercased().hasSuffix(".json") {
            if let key = JSONDuplicateKeys.first(in: text) {
                throw ConfigurationError.unreadableFile(path: path, reason: "key '\(key)' appears twice in one object (a key may be given once)")
            }
            root = try? JSONSerialization.jsonObject(with: Data(text.utf8))
        } else {
            root = try? Yams.load(yaml: text)
        }
        guard let dictionary = root as? [String: Any] else { return nil }
        if let routes = dictionary["routes"], !(routes is [String: Any]) {
            throw ConfigurationError.invalidValue(
                key: "routes", value: "\(routes)", allowed: "a map of route names to routes (routes: { archive: { upstreams: [...] } })")
        }
        var known = Set(FerryConfiguration.keys.map(\.name))
        for name in FerryConfiguration.routeNames(in: dictionary) {
            for key in RouteSettings.keys { known.insert("routes.\(name).\(key)") }
        }
        for key in flattenedKeys(dictionary).sorted() where !known.contains(key) {
            throw ConfigurationError.unknownKey(key: key, path: path, suggestion: closest(to: key, in: known))
        }
        return dictionary
    }

    private static func flattenedKeys(_ dictionary: [String: Any], prefix: String = "") -> [String] {
        dictionary.flatMap { key, value -> [String] in
            let full = prefix.isEmpty ? key : "\(prefix).\(key)"
            if let nested = value as? [String: Any] { return flattenedKeys(nested, prefix: full) }
            return [full]
        }
    }

    private static func closest(to key: String, in known: Set<String>) -> String? {
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a)
            let b = Array(b)
            var row = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var previous = row[0]
                row[0] = i
                for j in 1...max(b.count, 1) where !b.isEmpty {
                    let current = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = current
                }
            }
            return row[b.count]
        }
        let best = known.map { ($0, distance(key, $0)) }.min { $0.1 < $1.1 }
        return best.flatMap { $0.1 <= max(3, key.count / 3) ? $0.0 : nil }
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
