import Configuration
import FerryCore
import Foundation
import Testing

/// Each key is defined once (`ConfigurationKey`); what is made from the definitions stays true to them.
struct ConfigurationReferenceTests {
    private static let keys = FerryConfiguration.keys

    /// docs/configuration.md holds the table the definitions generate; when it is stale the message says how to refresh it.
    @Test func theCommittedReferenceIsGeneratedFromTheDefinitions() throws {
        let path = DocumentationLinksTests.repositoryRoot.appendingPathComponent("docs/configuration.md").path
        let page = try String(contentsOfFile: path, encoding: .utf8)
        let updated = try #require(ConfigurationReference.updating(page), "docs/configuration.md has lost its generated-table markers")
        let stale = zip(page.split(separator: "\n"), updated.split(separator: "\n")).first { $0 != $1 }
        #expect(
            stale == nil && updated == page,
            """
            docs/configuration.md is stale: run `\(ConfigurationReference.updateCommand)` and commit the result.
            First differing line, committed: \(stale.map { String($0.0) } ?? "(page length differs)")
            generated: \(stale.map { String($0.1) } ?? "")
            """)
    }

    /// Names, flags and environment variables are unique, and the list holds every key once.
    @Test func keysAreUnique() {
        #expect(Set(Self.keys.map(\.name)).count == Self.keys.count)
        #expect(Set(Self.keys.map(\.flag)).count == Self.keys.count)
        #expect(Set(Self.keys.map(\.environmentVariable)).count == Self.keys.count)
    }

    /// The defaults `FerryConfiguration()` (and the component settings in it) are written with are the definitions' defaults:
    /// built from no source at all, the configuration prints the same as the plain value does.
    @Test func theStructDefaultsAreTheDefinitionsDefaults() throws {
        let read = try FerryConfiguration(reader: ConfigReader(provider: InMemoryProvider(values: [:])))
        var plain = FerryConfiguration()
        plain.instance = read.instance  // derived from the listener when unset
        for (fromKeys, fromStruct) in zip(read.renderedLines, plain.renderedLines) {
            #expect(fromKeys == fromStruct)
        }
        #expect(read == plain)
    }

    /// A value outside its key's range is refused with the key, the value and the range the definition gives.
    @Test func theReaderChecksTheDefinitionsRange() throws {
        let provider = InMemoryProvider(values: ["tcp.max-connections": ConfigValue(.string("0"), isSecret: false)])
        #expect(throws: ConfigurationError.invalidValue(key: "tcp.max-connections", value: "0", allowed: "a whole number in 1...1000000")) {
            try FerryConfiguration(reader: ConfigReader(provider: provider))
        }
        #expect(
            ConfigurationKey.tcpMaxConnections.helpLine == "Open connections per tcp/tls listener; more are closed at accept (1...1000000)."
                + " Key tcp.max-connections, default: 1024.")
        #expect(ConfigurationKey.receiveCoalesce.allowed.summary == "0s...1ms")
        #expect(ConfigurationKey.spoolMaxBytes.allowed.summary == "1MiB...16384GiB")
    }
}
