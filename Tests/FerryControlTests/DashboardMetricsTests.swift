import FerryTestSupport
import Foundation
import Testing

/// The dashboards and rules speak of metrics a live Ferry really exports, so a
/// renamed metric breaks the build, not the on-call's night.
@Suite(.timeLimit(.minutes(1)))
struct DashboardMetricsTests {
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Every `ferry_*` and `process_*` name in the dashboards, the rules, their
    /// tests and the Kubernetes PrometheusRule (recording-rule names, which contain colons, excluded).
    static func metricNamesUsed() throws -> [String: Set<String>] {
        let pattern = try NSRegularExpression(pattern: "(?<![:A-Za-z0-9_])((?:ferry|process)_[a-z0-9_]+)")
        var used: [String: Set<String>] = [:]
        let roots = ["dashboards", "docker/k8s", "docker/prometheus"].map { repositoryRoot.appendingPathComponent($0) }
        for root in roots {
            guard let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { continue }
            for case let file as URL in files where ["json", "yml", "yaml"].contains(file.pathExtension) {
                let text = try String(contentsOf: file, encoding: .utf8)
                for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                    let name = String(text[Range(match.range(at: 1), in: text)!])
                    used[name, default: []].insert(file.lastPathComponent)
                }
            }
        }
        return used
    }

    @Test func everyMetricTheDashboardsAndRulesUseIsExported() async throws {
        let used = try Self.metricNamesUsed()
        #expect(used.count >= 10, "found only \(used.keys.sorted()) under dashboards/")
        let closedPort = try UDPTestSocket().port
        let certificates = try TestCertificates.make()
        // Every kind of listener and upstream, so that every family is registered.
        let (ferry, _, httpPort) = try await FerryProcess.serve(
            listeners: ["udp://127.0.0.1:0", "tcp://127.0.0.1:0", "tls://127.0.0.1:0"],
            [
                "--upstream", "ferry://127.0.0.1:\(closedPort)", "--upstream", "tls://127.0.0.1:\(closedPort)", "--upstream-tls-insecure", "true",
                "--upstream", "file:out.log", "--spool-dir", "spool", "--tls-cert", certificates.certificate("server"), "--tls-key",
                certificates.key("server"),
            ])
        _ = try HTTPTestClient.request("GET", port: httpPort, path: "/metrics")
        let exposition = try HTTPTestClient.request("GET", port: httpPort, path: "/metrics").body
        let exported = Set(
            exposition.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
                String(line.prefix { $0 != "{" && $0 != " " })
            })
        let missing = used.filter { !exported.contains($0.key) }
        #expect(missing.isEmpty, "used but not exported: \(missing.map { "\($0.key) (in \($0.value.sorted().joined(separator: ", ")))" }.sorted())")
        ferry.signal(SIGTERM)
        _ = await ferry.waitForExit(timeout: 10)
    }
}
