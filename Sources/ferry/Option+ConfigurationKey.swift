import ArgumentParser
import FerryCore

/// A flag's value with the configuration key it sets.
struct ConfigFlag: Sendable {
    let key: String
    let value: String
}

extension Option where Value == ConfigFlag? {
    /// The flag of a configuration key: `--FLAG`, with the key's help line (what it means, what is allowed,
    /// the key and its default). Not given, it is nil, so the file, the environment or the default decide.
    init(key: ConfigurationKey) {
        let name = key.name
        self.init(name: .customLong(key.flag), help: ArgumentHelp(key.helpLine)) { ConfigFlag(key: name, value: $0) }
    }
}

extension Option where Value == [ConfigFlag] {
    /// The repeatable flag of a list key (`--listen`, `--upstream`).
    init(wrappedValue: [ConfigFlag], key: ConfigurationKey) {
        let name = key.name
        self.init(wrappedValue: wrappedValue, name: .customLong(key.flag), help: ArgumentHelp(key.helpLine)) {
            ConfigFlag(key: name, value: $0)
        }
    }
}
