import ArgumentParser
import FerryCore

/// `ferry check-config`: validate a configuration without starting anything.
struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate configuration (file, environment and flags) and print the effective values.",
        discussion: "Exits 0 when the configuration is valid, 2 with a message naming the key otherwise.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let configuration = try await options.load()
        print("configuration OK")
        print(configuration.renderedLines.joined(separator: "\n"))
    }
}
