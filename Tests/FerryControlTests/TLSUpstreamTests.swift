import FerryTestSupport
import Foundation
import Testing

/// `tls://` upstreams verify the server: a certificate for another host, an
/// expired one, or one from an unknown CA is refused before a byte of a log
/// is sent, with the reason in `/v1/status`; the insecure opt-out is loud.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct TLSUpstreamTests {
    private func receiver(_ certificates: TestCertificates, certificate: String, output: String) async throws -> (FerryProcess, Int) {
        let (ferry, ports, _) = try await FerryProcess.serve(
            listeners: ["tls://127.0.0.1:0"],
            ["--upstream", "file:\(output)", "--tls-cert", certificates.certificate(certificate), "--tls-key", certificates.key(certificate)])
        return (ferry, ports[0])
    }

    @Test(arguments: [("other", "wrong_name"), ("expired", "expired"), ("rogue", "unknown_ca")])
    func aServerThatCannotBeVerifiedIsRefused(certificate: String, reason: String) async throws {
        try #require(ExternalTool.shouldRun("openssl"))
        let certificates = try TestCertificates.make()
        let output = try scratchDirectory("tls-up-\(certificate)") + "/out.log"
        let (server, port) = try await receiver(certificates, certificate: certificate, output: output)
        defer { server.signal(SIGKILL) }
        let (edge, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "tls://localhost:\(port)", "--upstream-tls-ca", certificates.ca])
        defer { edge.signal(SIGKILL) }
        try await PacedSender.send(prefix: "refused", count: 20, rate: 200, to: udpPort)
        let status = StatusReader(port: httpPort)
        #expect(
            await eventually(seconds: 10) { (status.upstream(0)["tls_failures"] as? [String: Int])?[reason] ?? 0 >= 1 },
            "\(status.upstream(0))")
        let upstream = status.upstream(0)
        #expect((upstream["last_error"] as? String)?.contains("(\(reason))") == true, "\(upstream["last_error"] ?? "")")
        #expect(upstream["forwarded"] as? Int == 0)
        #expect(upstream["state"] as? String == "unavailable")
        #expect(fileLines(output).isEmpty)
        #expect(edge.logLines.contains { $0["message"] as? String == "upstream connection failed" && $0["tls.reason"] as? String == reason })
        #expect(try HTTPTestClient.request("GET", port: httpPort, path: "/healthz").status == 200)
        // The logs wait in the buffer; none was lost or counted delivered.
        #expect(status.queueDepth() == 20)
    }

    @Test func theInsecureOptOutDeliversAndSaysSoLoudly() async throws {
        try #require(ExternalTool.shouldRun("openssl"))
        let certificates = try TestCertificates.make()
        let output = try scratchDirectory("tls-up-insecure") + "/out.log"
        let (server, port) = try await receiver(certificates, certificate: "rogue", output: output)
        defer { server.signal(SIGKILL) }
        let (edge, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "tls://localhost:\(port)", "--upstream-tls-insecure", "true"])
        defer { edge.signal(SIGKILL) }
        #expect(edge.logLines.contains { $0["level"] as? String == "error" && ($0["message"] as? String)?.contains("not verified") == true })
        let status = StatusReader(port: httpPort)
        #expect(status.upstream(0)["tls_insecure"] as? Bool == true)
        try await PacedSender.send(prefix: "insecure", count: 50, rate: 500, to: udpPort)
        #expect(await eventually(seconds: 10) { fileLines(output).count == 50 })
    }
}
