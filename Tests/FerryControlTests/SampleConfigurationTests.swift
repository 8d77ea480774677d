import FerryTestSupport
import Foundation
import Testing

/// The configuration an operator copies (docs/examples/ferry.yaml, installed as
/// /etc/ferry/ferry.yaml, and the README's minimal file) passes `check-config`,
/// and the systemd unit starts that file the way docs/deployment.md says.
@Suite(.timeLimit(.minutes(1)))
struct SampleConfigurationTests {
    static let root = DashboardMetricsTests.repositoryRoot

    @Test func theSampleConfigurationPassesCheckConfig() async throws {
        let check = try FerryProcess(["check-config", "--config", Self.root.appendingPathComponent("docs/examples/ferry.yaml").path])
        #expect(await check.waitForExit(timeout: 10) == 0, "\(check.logText)")
        #expect(check.logText.hasPrefix("configuration OK"), "\(check.logText)")
        #expect(check.logText.contains("spool.dir = /var/lib/ferry/spool"), "\(check.logText)")
    }

    /// The README's "minimal configuration file" is a real one.
    @Test func theReadmesMinimalConfigurationPassesCheckConfig() async throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "\n## A minimal configuration file\n").dropFirst().first)
        let yaml = try #require(section.components(separatedBy: "```yaml\n").dropFirst().first?.components(separatedBy: "\n```").first)
        let path = try scratchDirectory("readme-config") + "/ferry.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let check = try FerryProcess(["check-config", "--config", path])
        #expect(await check.waitForExit(timeout: 10) == 0, "\(check.logText)")
        #expect(check.logText.contains("listen = udp://0.0.0.0:5514,tcp://0.0.0.0:5514"), "\(check.logText)")
    }

    /// The unit runs the binary and file the install steps put in place, as `Type=notify`, and reloads with SIGHUP.
    @Test func theSystemdUnitMatchesTheInstallSteps() throws {
        let unit = try String(contentsOf: Self.root.appendingPathComponent("docs/examples/ferry.service"), encoding: .utf8)
        let settings = Set(unit.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains("=") }.map(String.init))
        for expected in [
            "Type=notify", "ExecStart=/usr/local/bin/ferry serve --config /etc/ferry/ferry.yaml", "ExecReload=/bin/kill -HUP $MAINPID",
            "User=ferry", "ProtectSystem=strict", "StateDirectory=ferry", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        ] {
            #expect(settings.contains(expected), "docs/examples/ferry.service lacks \(expected)")
        }
        let deployment = try String(contentsOf: Self.root.appendingPathComponent("docs/deployment.md"), encoding: .utf8)
        #expect(deployment.contains("install -m 644 docs/examples/ferry.yaml /etc/ferry/ferry.yaml"))
        #expect(deployment.contains("install -m 644 docs/examples/ferry.service /etc/systemd/system/ferry.service"))
    }
}
