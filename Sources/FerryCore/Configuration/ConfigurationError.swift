/// A configuration value Ferry cannot run with.
///
/// Every case names the key, the offending value and what is allowed, so the
/// operator can fix the file, variable or flag without reading the source.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A value that does not parse or is outside its allowed range.
    case invalidValue(key: String, value: String, allowed: String)
    /// A configuration file that cannot be read or parsed.
    case unreadableFile(path: String, reason: String)
    /// Two settings that are valid alone but not together.
    case conflict(key: String, value: String, reason: String)
    /// A key in a configuration file that Ferry does not know (a typo would otherwise be ignored silently).
    case unknownKey(key: String, path: String, suggestion: String?)

    public var description: String {
        switch self {
        case .invalidValue(let key, let value, let allowed):
            return "invalid configuration: key '\(key)' has value '\(value)'; allowed: \(allowed)"
        case .unreadableFile(let path, let reason):
            return "invalid configuration: cannot read config file '\(path)': \(reason)"
        case .conflict(let key, let value, let reason):
            return "invalid configuration: key '\(key)' has value '\(value)': \(reason)"
        case .unknownKey(let key, let path, let suggestion):
            let hint = suggestion.map { "did you mean '\($0)'? " } ?? ""
            return "invalid configuration: unknown key '\(key)' in '\(path)'; \(hint)allowed keys are listed by 'ferry check-config'"
                + " and in docs/configuration.md"
        }
    }
}

extension ConfigurationError {
    /// A value of `key` that is not allowed; by default what is allowed is what the key's definition says.
    static func invalidValue(_ key: ConfigurationKey, value: String, allowed: String? = nil) -> Self {
        .invalidValue(key: key.name, value: value, allowed: allowed ?? key.allowed.description)
    }

    /// A value of `key` that is valid alone but not with another setting.
    static func conflict(_ key: ConfigurationKey, value: String, reason: String) -> Self {
        .conflict(key: key.name, value: value, reason: reason)
    }
}
