import FerryCore
import FerryTestSupport
import Foundation
import Testing

/// `FerryConfiguration.keys` is the one list of configuration keys; the CLI
/// flags, `check-config`'s output and the table of docs/configuration.md must say the same,
/// so a key added or renamed in one place and not the others fails here.
@Suite(.timeLimit(.minutes(1)))
struct ConfigurationKeysTests {
    private static let keys = FerryConfiguration.keys

    /// Every key has its flag on `ferry serve` and `ferry check-config`, named, described and repeatable as its definition
    /// says (help text, allowed values, key and default); no flag names a key that does not exist.
    @Test(arguments: ["serve", "check-config"])
    func everyKeyHasItsFlagAsDefinedAndEveryFlagItsKey(command: String) async throws {
        let dump = try FerryProcess([command, "--experimental-dump-help"])
        #expect(await dump.waitForExit(timeout: 10) == 0)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.logText.utf8)) as? [String: Any])
        let arguments = try #require((root["command"] as? [String: Any])?["arguments"] as? [[String: Any]])
        var flags: [String: (help: String, repeating: Bool)] = [:]
        for argument in arguments {
            guard let name = (argument["names"] as? [[String: Any]])?.first(where: { $0["kind"] as? String == "long" })?["name"] as? String,
                !["config", "print-config", "help", "version"].contains(name)
            else { continue }
            flags[name] = (argument["abstract"] as? String ?? "", argument["isRepeating"] as? Bool ?? false)
        }
        #expect(Set(flags.keys) == Set(Self.keys.map(\.flag)), "flags differ from the keys' definitions")
        for key in Self.keys {
            #expect(flags[key.flag]?.help == key.helpLine, "--\(key.flag): help differs from the definition of \(key.name)")
            #expect(flags[key.flag]?.repeating == key.isList, "--\(key.flag): repeatable only for a list key")
        }
    }

    /// `ferry check-config` prints every key, in the table's order.
    @Test func checkConfigPrintsEveryKey() async throws {
        let check = try FerryProcess(["check-config"])
        #expect(await check.waitForExit(timeout: 10) == 0)
        let printed = check.logText.split(separator: "\n").compactMap { line in
            line.range(of: " = ").map { String(line[..<$0.lowerBound]) }
        }
        #expect(printed == Self.keys.map(\.name))
    }

    /// With `routes`, the embedded default upstream is never used, so `check-config` does not show it as if it were.
    @Test func checkConfigWithRoutesShowsNoUnusedDefaultUpstream() async throws {
        let directory = try scratchDirectory("check-routes")
        let path = directory + "/ferry.yaml"
        try "routes:\n  archive: { upstreams: [\"file:\(directory)/all.log\"] }\n".write(toFile: path, atomically: true, encoding: .utf8)
        let check = try FerryProcess(["check-config", "--config", path])
        #expect(await check.waitForExit(timeout: 10) == 0)
        let line = check.logText.split(separator: "\n").first { $0.hasPrefix("upstreams = ") }
        #expect(line == "upstreams = (none: routes are configured; each route lists its own)", "\(check.logText)")
        #expect(!check.logText.contains("forwarded.log"), "\(check.logText)")
    }

    /// The configuration reference's table (docs/configuration.md, "Keys") has one row per key, with its environment variable and flag.
    @Test func theReferenceTableListsEveryKeyWithItsVariableAndFlag() throws {
        let reference = try String(
            contentsOf: DashboardMetricsTests.repositoryRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let section = try #require(reference.components(separatedBy: "\n## Keys\n").dropFirst().first?.components(separatedBy: "\n## ").first)
        var rows: [String: (variable: String, flag: String)] = [:]
        for line in section.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3 else { continue }
            func code(_ cell: String) -> String {
                cell.split(separator: "`", omittingEmptySubsequences: false).dropFirst().first.map(String.init) ?? ""
            }
            rows[code(cells[0])] = (code(cells[1]), code(cells[2]))
        }
        #expect(Set(rows.keys) == Set(Self.keys.map(\.name)), "docs/configuration.md rows differ from the keys")
        for key in Self.keys {
            #expect(rows[key.name]?.variable == key.environmentVariable, "\(key.name): docs/configuration.md variable")
            #expect(rows[key.name]?.flag == "--\(key.flag)", "\(key.name): docs/configuration.md flag")
        }
    }
}
