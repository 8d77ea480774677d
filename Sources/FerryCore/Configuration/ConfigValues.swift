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
        guard let raw = text(key) else { return nil }
        let trimmed = raw.trimmingWhitespace()
        guard let value = parse(trimmed) else {
            throw ConfigurationError.invalidValue(key: key, value: raw, allowed: allowed)
        }
        return value
    }

    func integer(_ key: String, range: ClosedRange<Int>) throws -> Int? {
        try parsed(key, allowed: "a whole number in \(range.lowerBound)...\(range.upperBound)") {
            Int($0).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    func decimal(_ key: String, range: ClosedRange<Double>) throws -> Double? {
        try parsed(key, allowed: "a number in \(range.lowerBound)...\(range.upperBound)") {
            Double($0).flatMap { $0.isFinite && range.contains($0) ? $0 : nil }
        }
    }

    func boolean(_ key: String) throws -> Bool? {
        try parsed(key, allowed: "true or false (also on/off, yes/no, 1/0)") {
            switch $0.lowercased() {
            case "true", "on", "yes", "1": true
            case "false", "off", "no", "0": false
            default: nil
            }
        }
    }

    func byteSize(_ key: String, range: ClosedRange<Int>) throws -> Int? {
        try parsed(key, allowed: "a size in bytes in \(range.lowerBound)...\(range.upperBound) (suffixes KiB, MiB, GiB allowed)") {
            ByteSizeParser.parse($0).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    func duration(_ key: String, range: ClosedRange<Duration>) throws -> Duration? {
        try parsed(key, allowed: "a duration from \(range.lowerBound) to \(range.upperBound): a number of seconds, or with suffix ms or s") {
            DurationParser.parse($0).flatMap { range.contains($0) ? $0 : nil }
        }
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
