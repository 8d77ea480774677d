import FerryTestSupport
import Foundation
import Testing

/// `tls://` listeners against a Python TLS client (certificates made by the
/// test with openssl): mutual TLS with frames split across writes, clients
/// refused for a missing, unknown or expired certificate, a handshake that
/// never finishes, and a certificate replaced on disk while running.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct TLSIngestTests {
    /// Connects with TLS, sends `count` octet-counted messages `prefix-N` cut
    /// into random writes (and one of 8 KiB), prints what happened.
    private static let client = """
        import random, socket, ssl, sys
        port, ca, cert, key, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
        context = ssl.create_default_context(cafile=ca)
        if cert != "-": context.load_cert_chain(cert, key)
        def frame(m): b = m.encode(); return str(len(b)).encode() + b" " + b
        data = b"".join(frame(f"<13>{prefix}-{i} grüße über TLS end") for i in range(count)) + frame(f"<13>{prefix}-big " + "y" * 8192 + " end")
        try:
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="localhost")
            offset = 0
            while offset < len(data):
                n = random.randint(1, 700); s.sendall(data[offset:offset + n]); offset += n
            version = s.version()
            s.settimeout(1.0)
            try: s.recv(1)
            except (socket.timeout, ssl.SSLError, ConnectionError): pass
            s.close()
            print("sent", version)
        except (ssl.SSLError, ConnectionError, OSError) as error:
            print("refused", type(error).__name__, error)
        """

    private func serve(_ certificates: TestCertificates, output: String, extra: [String] = []) async throws -> (FerryProcess, Int, Int) {
        let (ferry, ports, http) = try await FerryProcess.serve(
            listeners: ["tls://127.0.0.1:0"],
            [
                "--upstream", "file:\(output)", "--tls-cert", certificates.certificate("server"), "--tls-key", certificates.key("server"),
                "--tls-ca", certificates.ca, "--tls-client-auth", "required",
            ] + extra)
        return (ferry, ports[0], http)
    }

    @Test func mutualTLSClientWithFramesSplitAcrossWrites() async throws {
        try #require(ExternalTool.shouldRun("openssl"))
        let certificates = try TestCertificates.make()
        let output = try scratchDirectory("tls-in") + "/out.log"
        let (ferry, port, httpPort) = try await serve(certificates, output: output)
        defer { ferry.signal(SIGKILL) }
        let result = try python(
            Self.client, ["\(port)", certificates.ca, certificates.certificate("client"), certificates.key("client"), "mtls", "500"])
        #expect(result.hasPrefix("sent TLSv1.3"), "\(result)")
        #expect(await eventually(seconds: 10, every: .milliseconds(100)) { fileLines(output).count >= 501 })
        let lines = fileLines(output).map(String.init)
        #expect(lines.count == 501)
        #expect(
            Set(lines)
                == Set((0..<500).map { "<13>mtls-\($0) grüße über TLS end" } + ["<13>mtls-big " + String(repeating: "y", count: 8192) + " end"]))
        let status = StatusReader(port: httpPort)
        #expect((status.counters()["received_by_transport"] as? [String: Int])?["tls"] == 501)
        #expect(status.streamListener()["certificate"] as? String != nil)
        // Nothing of the key in Ferry's log.
        let key = try String(contentsOfFile: certificates.key("server"), encoding: .utf8)
        let keyLine = try #require(key.split(separator: "\n").dropFirst().first)
        #expect(!ferry.logText.contains(keyLine))
    }

    @Test func clientsWithoutAGoodCertificateAreRefusedAndCountedByReason() async throws {
        try #require(ExternalTool.shouldRun("openssl"))
        let certificates = try TestCertificates.make()
        let output = try scratchDirectory("tls-refuse") + "/out.log"
        let (ferry, port, httpPort) = try await serve(certificates, output: output, extra: ["--tls-handshake-timeout", "1s"])
        defer { ferry.signal(SIGKILL) }
        for (name, certificate) in [("none", "-"), ("rogue", "rogue"), ("expired", "expired")] {
            let path = certificate == "-" ? "-" : certificates.certificate(certificate)
            let key = certificate == "-" ? "-" : certificates.key(certificate)
            _ = try python(Self.client, ["\(port)", certificates.ca, path, key, name, "5"])
        }
        // A client that connects and never starts its handshake is closed after tls.handshake-timeout.
        let silent = try python(
            """
            import socket, sys, time
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); start = time.time()
            s.settimeout(10); data = s.recv(1)
            print(round(time.time() - start, 1), len(data))
            """, ["\(port)"])
        let waited = Double(silent.split(separator: " ").first ?? "") ?? 99
        #expect(waited >= 0.8 && waited < 5, "closed after \(silent)")
        let status = StatusReader(port: httpPort)
        #expect(
            await eventually(seconds: 5) {
                let failures = status.streamListener()["tls_failures"] as? [String: Int] ?? [:]
                return failures["no_certificate"] == 1 && failures["unknown_ca"] == 1 && failures["expired"] == 1
            }, "\(status.streamListener())")
        #expect((status.streamListener()["closed"] as? [String: Int])?["handshake_timeout"] == 1)
        #expect(fileLines(output).isEmpty)
        #expect(
            ferry.logLines.contains {
                $0["message"] as? String == "tls handshake failed" && $0["reason"] as? String == "expired" && $0["peer"] != nil
            })
        #expect(try HTTPTestClient.request("GET", port: httpPort, path: "/healthz").status == 200)
    }

    /// cert-manager replaces the files in place: new connections get the new certificate, no restart.
    @Test func aReplacedCertificateIsUsedForNewConnections() async throws {
        try #require(ExternalTool.shouldRun("openssl"))
        let certificates = try TestCertificates.make()
        let directory = try scratchDirectory("tls-reload")
        let (certificate, key) = ("\(directory)/tls.crt", "\(directory)/tls.key")
        try FileManager.default.copyItem(atPath: certificates.certificate("server"), toPath: certificate)
        try FileManager.default.copyItem(atPath: certificates.key("server"), toPath: key)
        let (ferry, ports, httpPort) = try await FerryProcess.serve(
            listeners: ["tls://127.0.0.1:0"], ["--upstream", "file:\(directory)/out.log", "--tls-cert", certificate, "--tls-key", key])
        defer { ferry.signal(SIGKILL) }
        let peerExpiry = """
            import socket, ssl, sys
            context = ssl.create_default_context(cafile=sys.argv[2])
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
            print(s.getpeercert()["notAfter"]); s.close()
            """
        let before = try python(peerExpiry, ["\(ports[0])", certificates.ca])
        let status = StatusReader(port: httpPort)
        let summaryBefore = status.streamListener()["certificate"] as? String
        // Key first, then certificate, each replaced by a rename (as a Kubernetes secret volume does).
        try FileManager.default.copyItem(atPath: certificates.key("server2"), toPath: key + ".new")
        _ = rename(key + ".new", key)
        try FileManager.default.copyItem(atPath: certificates.certificate("server2"), toPath: certificate + ".new")
        _ = rename(certificate + ".new", certificate)
        #expect(await eventually(seconds: 10, every: .milliseconds(200)) { status.streamListener()["certificate"] as? String != summaryBefore })
        let after = try python(peerExpiry, ["\(ports[0])", certificates.ca])
        #expect(before != after, "still \(after)")
        #expect(ferry.logLines.contains { $0["message"] as? String == "tls certificate reloaded" })
    }
}
