import ArgumentParser
import FerryCore

extension ArgumentHelp {
    /// A configuration flag's help: what it sets, its key (which `ConfigurationKeysTests` reads back)
    /// and its default, as `ferry check-config` prints it when nothing is set.
    static func key(_ abstract: String, _ key: String) -> ArgumentHelp {
        let value = ConfigOptions.defaults[key].map { " (default: \($0))" } ?? ""
        return ArgumentHelp("\(abstract) (key \(key))\(value).")
    }
}

extension ConfigOptions {
    /// Every key's default, rendered as `check-config` renders it (without its parentheses; empty values left out).
    static let defaults: [String: String] = Dictionary(
        FerryConfiguration().renderedLines.compactMap { line in
            line.range(of: " = ").flatMap { range in
                var value = Substring(line[range.upperBound...])
                if value.hasPrefix("("), value.hasSuffix(")") { value = value.dropFirst().dropLast() }  // "(none)" reads "none"
                return value.isEmpty ? nil : (String(line[..<range.lowerBound]), String(value))
            }
        },
        uniquingKeysWith: { first, _ in first })
}
