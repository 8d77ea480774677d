import FerryTestSupport
import Foundation
import Testing

/// Ferry beside software no one here wrote: rsyslog's `omfwd` (TCP, and TLS
/// with its `gtls` driver) as a client of Ferry's listeners, and Ferry's
/// `tcp://` and `tls://` upstreams into rsyslog's `imtcp` (plain, and gtls
/// with mutual TLS). Every message once and intact, UTF-8 and 8 KiB included.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RsyslogInteropTests {
    private static func messages(_ prefix: String) -> [String] {
        (0..<300).map { "<13>\(prefix)-\($0) grüße ✓ from rsyslog's peer end" } + [
            "<13>\(prefix)-big " + String(repeating: "z", count: 8192) + " end"
        ]
    }

    /// Sends each message as one UDP datagram to `port`, paced a little.
    private static func sendDatagrams(_ messages: [String], to port: Int) throws {
        let socket = try UDPTestSocket()
        for (index, message) in messages.enumerated() {
            socket.send(Array(message.utf8), to: port)
            if index % 50 == 49 { usleep(5_000) }
        }
    }

    @Test func rsyslogForwardsIntoFerryOverTCPAndTLS() async throws {
        try #require(Rsyslog.shouldRun)
        let certificates = try TestCertificates.make()
        let output = try scratchDirectory("rsyslog-in") + "/out.log"
        let (ferry, ports, httpPort) = try await FerryProcess.serve(
            listeners: ["tcp://127.0.0.1:0", "tls://127.0.0.1:0"],
            [
                "--upstream", "file:\(output)", "--tls-cert", certificates.certificate("server"), "--tls-key", certificates.key("server"),
                "--tls-ca", certificates.ca, "--tls-client-auth", "required",
            ])
        defer { ferry.signal(SIGKILL) }
        let input = freeUDPPort()
        let rsyslog = try Rsyslog(
            """
            module(load="imudp")
            input(type="imudp" address="127.0.0.1" port="\(input)")
            template(name="raw" type="string" string="%rawmsg%")
            action(type="omfwd" target="127.0.0.1" port="\(ports[0])" protocol="tcp" tcp_framing="traditional" template="raw")
            action(type="omfwd" target="127.0.0.1" port="\(ports[1])" protocol="tcp" tcp_framing="octet-counted" template="raw"
                   streamDriver="gtls" streamDriverMode="1" streamDriverAuthMode="x509/name" streamDriverPermittedPeers="localhost")
            """, certificates: certificates, certificateName: "client")
        try await Task.sleep(for: .seconds(1))
        let messages = Self.messages("rs")
        try Self.sendDatagrams(messages, to: input)
        #expect(
            await eventually(seconds: 20, every: .milliseconds(200)) { fileLines(output).count >= 2 * messages.count },
            "rsyslog: \(rsyslog.errorText.suffix(2000))")
        let lines = fileLines(output).map(String.init)
        #expect(lines.count == 2 * messages.count)
        #expect(Dictionary(grouping: lines, by: { $0 }).mapValues(\.count) == Dictionary(uniqueKeysWithValues: messages.map { ($0, 2) }))
        let received = StatusReader(port: httpPort).counters()["received_by_transport"] as? [String: Int]
        #expect(received?["tcp"] == messages.count && received?["tls"] == messages.count, "\(received ?? [:])")
    }

    @Test func ferryForwardsIntoRsyslogOverTCPAndMutualTLS() async throws {
        try #require(Rsyslog.shouldRun)
        let certificates = try TestCertificates.make()
        let (plainPort, tlsPort) = (freeTCPPort(), freeTCPPort())
        let plain = try Rsyslog(
            """
            module(load="imtcp")
            input(type="imtcp" address="127.0.0.1" port="\(plainPort)")
            template(name="raw" type="string" string="%rawmsg%\\n")
            action(type="omfile" file="\(FileManager.default.temporaryDirectory.path)/ferry-rsyslog-plain-\(plainPort).log" template="raw")
            """)
        let secure = try Rsyslog(
            """
            module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
            input(type="imtcp" address="127.0.0.1" port="\(tlsPort)")
            template(name="raw" type="string" string="%rawmsg%\\n")
            action(type="omfile" file="\(FileManager.default.temporaryDirectory.path)/ferry-rsyslog-tls-\(tlsPort).log" template="raw")
            """, certificates: certificates)
        #expect(await waitForTCPListener(port: plainPort), "\(plain.errorText)")
        #expect(await waitForTCPListener(port: tlsPort), "\(secure.errorText)")
        let (tcpEdge, tcpUDP, _) = try await FerryProcess.serve(["--upstream", "tcp://127.0.0.1:\(plainPort)"])
        defer { tcpEdge.signal(SIGKILL) }
        let (tlsEdge, tlsUDP, tlsHTTP) = try await FerryProcess.serve([
            "--upstream", "tls://localhost:\(tlsPort)", "--upstream-tls-ca", certificates.ca, "--upstream-tls-cert",
            certificates.certificate("client"), "--upstream-tls-key", certificates.key("client"),
        ])
        defer { tlsEdge.signal(SIGKILL) }
        let plainMessages = Self.messages("tcp")
        let tlsMessages = Self.messages("tls")
        #expect(await eventually(seconds: 10) { StatusReader(port: tlsHTTP).upstream(0)["state"] as? String == "available" })
        try Self.sendDatagrams(plainMessages, to: tcpUDP)
        try Self.sendDatagrams(tlsMessages, to: tlsUDP)
        let plainOutput = "\(FileManager.default.temporaryDirectory.path)/ferry-rsyslog-plain-\(plainPort).log"
        let tlsOutput = "\(FileManager.default.temporaryDirectory.path)/ferry-rsyslog-tls-\(tlsPort).log"
        for (output, messages, server) in [(plainOutput, plainMessages, plain), (tlsOutput, tlsMessages, secure)] {
            #expect(
                await eventually(seconds: 20, every: .milliseconds(200)) { fileLines(output).count >= messages.count },
                "rsyslog: \(server.errorText.suffix(2000))")
            let lines = fileLines(output).map(String.init)
            #expect(lines.count == messages.count)
            #expect(Set(lines) == Set(messages))
        }
    }
}
