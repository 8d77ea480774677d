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
        for warning in options.environmentWarnings { print(warning) }
        print("configuration OK")
        print(configuration.renderedLines.joined(separator: "\n"))
        if let granted = ReceiveBufferProbe.granted(requested: configuration.receiveBufferBytes),
            granted < configuration.receiveBufferBytes
        {
            print(
                "warning: receive.buffer-bytes asks for \(configuration.receiveBufferBytes) bytes but the kernel grants \(granted);"
                    + " raise the sysctl net.core.rmem_max to at least \(configuration.receiveBufferBytes)"
                    + " (sysctl -w net.core.rmem_max=\(configuration.receiveBufferBytes)) or run ferry with CAP_NET_ADMIN")
        }
    }
}
