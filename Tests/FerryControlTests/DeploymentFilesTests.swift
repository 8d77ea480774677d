import FerryTestSupport
import Foundation
import Testing

/// dashboards/ and docker/ checked by what can run without a Docker engine or
/// a cluster: promtool (rules, rule unit tests, Prometheus config), the Grafana
/// dashboard model, the compose file, Kubernetes objects against the API
/// models, and every example Ferry config through `ferry check-config`
/// (docker/validate.py does the checking; this runs it with the built binary).
@Suite(.timeLimit(.minutes(3)))
struct DeploymentFilesTests {
    static var validatorAvailable: Bool {
        guard ExternalTool.path("python3") != nil, ExternalTool.path("promtool") != nil else { return false }
        let probe = try? ExternalTool.run("python3", ["-c", "import yaml, kubernetes"])
        return probe?.status == 0
    }

    @Test(.enabled(if: validatorAvailable || ProcessInfo.processInfo.environment["CI"] != nil))
    func deploymentFilesPassEveryCheckThatRunsHere() async throws {
        let script = DashboardMetricsTests.repositoryRoot.appendingPathComponent("docker/validate.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(ExternalTool.path("python3")))
        process.arguments = [script]
        var environment = ProcessInfo.processInfo.environment
        environment["FERRY_BINARY"] = FerryProcess.binary.path
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Read and waited for on a thread of its own: validate.py runs for many seconds, and a
        // cooperative-pool thread held that long stalls every other test's waits (2 on 2 cores).
        let text = try await onOwnThread { () -> String in
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return text
        }
        #expect(
            process.terminationStatus == 0,
            "docker/validate.py failed:\n\(text.split(separator: "\n").filter { $0.contains("FAIL") }.joined(separator: "\n"))")
        #expect(text.contains(" 0 failed"))
    }
}
