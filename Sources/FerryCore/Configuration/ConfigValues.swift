import Configuration
import NIOCore

/// Reads raw values from a `ConfigReader` and turns them into typed values or
/// a ``ConfigurationError`` that names the key.
///
/// swift-configuration's non-throwing getters return `nil` both for a missing
/// key and for a value of the wrong type; reading the text first lets Ferry
/// tell those apart and quote the offending value.
struct ConfigValues {
    let reader: ConfigReader

    /// The value as text, whatever type the provider stored it as; `nil` when absent.
    func text(_ key: String) -> String? {
        let configKey = ConfigKey(key)
        if let string = reader.string(forKey: configKey) { return string }
        if let int = reader.int(forKey: configKey) { return String(int) }
        if let double = reader.double(forKey: configKey) { return String(double) }
        if let bool = reader.bool(forKey: configKey) { return String(bool) }
        if let array = reader.stringArray(forKey: configKey) { return array.joined(separator: ",") }
        return nil
    }

    func parsed<T>(_ key: String, allowed: String, _ parse: (String) -> T?) throws -> T? {
        try parsed(key, raw: text(key), allowed: allowed, parse)
    }

    private func parsed<T>(_ key: String, raw: String?, allowed: String, _ parse: (String) -> T?) throws -> T? {
        guard let raw else { return nil }
        let trimmed = raw.trimmingWhitespace()
        guard let value = parse(trimmed) else {
            throw ConfigurationError.invalidValue(key: key, value: raw, allowed: allowed)
        }
        return value
    }

    /// A size under a key that has no definition of its own (`routes.NAME.max-backlog-bytes`).
    func byteSize(_ key: String, range: ClosedRange<Int>) throws -> Int? {
        try parsed(key, allowed: ConfigurationKey.Allowed.byteSize(range).description) {
            ByteSizeParser.parse($0).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    // MARK: Keys

    /// Whether a source sets `key` (its default does not count).
    func isSet(_ key: ConfigurationKey) -> Bool {
        text(key.name) != nil
    }

    /// `key`'s value as a source sets it, else its default, checked against what the key allows;
    /// nil only for a key without a default that no source sets.
    func parsed<T>(_ key: ConfigurationKey, _ parse: (String) -> T?) throws -> T? {
        try parsed(key.name, raw: text(key.name) ?? key.defaultValue, allowed: key.allowed.description, parse)
    }

    func integer(_ key: ConfigurationKey) throws -> Int? {
        guard case .integer(let range) = key.allowed else { preconditionFailure("\(key) takes no whole number") }
        return try parsed(key) { Self.integer($0, in: range) }
    }

    func decimal(_ key: ConfigurationKey) throws -> Double? {
        guard case .decimal(let range) = key.allowed else { preconditionFailure("\(key) takes no number") }
        return try parsed(key) { Double($0).flatMap { $0.isFinite && range.contains($0) ? $0 : nil } }
    }

    func byteSize(_ key: ConfigurationKey) throws -> Int? {
        guard case .byteSize(let range) = key.allowed else { preconditionFailure("\(key) takes no size") }
        return try parsed(key) { ByteSizeParser.parse($0).flatMap { range.contains($0) ? $0 : nil } }
    }

    func duration(_ key: ConfigurationKey) throws -> Duration? {
        guard case .duration(let range) = key.allowed else { preconditionFailure("\(key) takes no duration") }
        return try parsed(key) { DurationParser.parse($0).flatMap { range.contains($0) ? $0 : nil } }
    }

    func boolean(_ key: ConfigurationKey) throws -> Bool? {
        guard case .boolean = key.allowed else { preconditionFailure("\(key) takes no boolean") }
        return try parsed(key, BooleanParser.parse)
    }

    /// One of the key's words, as the enum whose raw values they are.
    func choice<T: RawRepresentable>(_ key: ConfigurationKey, as type: T.Type) throws -> T? where T.RawValue == String {
        guard case .choice(let words) = key.allowed else { preconditionFailure("\(key) takes no choice") }
        return try parsed(key) { words.contains($0.lowercased()) ? T(rawValue: $0.lowercased()) : nil }
    }

    /// A list the key's source sets, else its default (comma-separated); nil when neither.
    func list(_ key: ConfigurationKey) throws -> [String]? {
        try list(key.name) ?? key.defaultValue.map { $0.split(separator: ",").map(String.init) }
    }

    private static func integer(_ text: String, in range: ClosedRange<Int>) -> Int? {
        Int(text).flatMap { range.contains($0) ? $0 : nil }
    }

    /// A list from a YAML/JSON array, or from comma-separated text (environment, flags).
    func list(_ key: String) throws -> [String]? {
        let configKey = ConfigKey(key)
        let items: [String]
        if let array = reader.stringArray(forKey: configKey) {
            items = array
        } else if let string = reader.string(forKey: configKey) {
            // An empty value is no value; "a,,b" or "," is a mistake to report, not to skip.
            guard !string.trimmingWhitespace().isEmpty else { return nil }
            items = string.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        } else {
            return nil
        }
        let trimmed = items.map { (item: String) in item.trimmingWhitespace() }
        if trimmed == [""] { return nil }  // an empty value is no value
        if let empty = trimmed.firstIndex(where: \.isEmpty) {
            throw ConfigurationError.invalidValue(
                key: key, value: items.joined(separator: ","),
                allowed: "a list of non-empty items (item \(empty + 1) of \(items.count) is empty; check for a stray comma)")
        }
        return trimmed
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }
}

/// Parses `true`/`false`, also `on`/`off`, `yes`/`no`, `1`/`0`.
enum BooleanParser {
    static func parse(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "on", "yes", "1": true
        case "false", "off", "no", "0": false
        default: nil
        }
    }
}

/// Parses `1048576`, `512KiB`, `64MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB` as powers of 1024).
enum ByteSizeParser {
    static func parse(_ text: String) -> Int? {
        let digits = text.prefix { $0.isNumber }
        guard !digits.isEmpty, let number = Int(digits) else { return nil }
        let suffix = String(text.dropFirst(digits.count)).trimmingWhitespace().lowercased()
        let multiplier: Int
        switch suffix {
        case "", "b": multiplier = 1
        case "k", "kb", "kib": multiplier = 1 << 10
        case "m", "mb", "mib": multiplier = 1 << 20
        case "g", "gb", "gib": multiplier = 1 << 30
        default: return nil
        }
        let (result, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : result
    }
}

/// Parses `5`, `2.5`, `5s`, `500ms`, `100us` into a `Duration`.
enum DurationParser {
    static func parse(_ text: String) -> Duration? {
        var number = text
        var scale = 1.0
        if text.hasSuffix("us") {
            number = String(text.dropLast(2))
            scale = 0.000_001
        } else if text.hasSuffix("ms") {
            number = String(text.dropLast(2))
            scale = 0.001
        } else if text.hasSuffix("s") {
            number = String(text.dropLast())
        }
        guard let value = Double(number.trimmingWhitespace()), value.isFinite, value >= 0 else { return nil }
        return .nanoseconds(Int64((value * scale * 1e9).rounded()))
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension Duration {
    init(_ amount: TimeAmount) {
        self = .nanoseconds(amount.nanoseconds)
    }
}
