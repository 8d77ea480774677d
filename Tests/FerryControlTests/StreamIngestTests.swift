import FerryTestSupport
import Foundation
import Testing

/// `tcp://` listeners against real clients (util-linux `logger`, Python
/// sockets) and bad ones: every message once and intact, bad streams closed
/// and counted, caps and timeouts holding, backpressure instead of drops.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct StreamIngestTests {
    /// The messages a test sends: numbered, with UTF-8, and one of 8 KiB.
    private static func messages(_ prefix: String, count: Int) -> [String] {
        (0..<count).map { "\(prefix)-\($0) grüße ✓ 日本 end" } + ["\(prefix)-big " + String(repeating: "x", count: 8192) + " end"]
    }

    /// Each message arrived in exactly one line, which ends with it byte for byte.
    private static func expectOnceAndIntact(_ messages: [String], in lines: [Substring], sourceLocation: SourceLocation = #_sourceLocation) {
        for message in messages {
            let found = lines.filter { $0 == message || $0.hasSuffix(" " + message) }.count
            #expect(found == 1, "\(message.prefix(12)): in \(found) lines", sourceLocation: sourceLocation)
        }
    }

    @Test func loggerSendsLFAndOctetCountedMessagesIntact() async throws {
        try #require(ExternalTool.shouldRun("logger"))
        let directory = try scratchDirectory("tcp-logger")
        let output = "\(directory)/out.log"
        let (ferry, ports, httpPort) = try await FerryProcess.serve(
            listeners: ["tcp://127.0.0.1:0", "udp://127.0.0.1:0"], ["--upstream", "file:\(output)"])
        defer { ferry.signal(SIGKILL) }
        let lf = Self.messages("lf", count: 200)
        let octet = Self.messages("oc", count: 200)
        try lf.joined(separator: "\n").write(toFile: "\(directory)/lf.txt", atomically: true, encoding: .utf8)
        try octet.joined(separator: "\n").write(toFile: "\(directory)/oc.txt", atomically: true, encoding: .utf8)
        let base = ["--tcp", "-n", "127.0.0.1", "-P", "\(ports[0])", "--size", "20000"]
        #expect(try ExternalTool.run("logger", base + ["-f", "\(directory)/lf.txt"]).status == 0)
        #expect(try ExternalTool.run("logger", base + ["--octet-count", "-f", "\(directory)/oc.txt"]).status == 0)
        let status = StatusReader(port: httpPort)
        #expect(await eventually(seconds: 20, every: .milliseconds(100)) { fileLines(output).count >= lf.count + octet.count })
        Self.expectOnceAndIntact(lf + octet, in: fileLines(output))
        #expect((status.counters()["received_by_transport"] as? [String: Int])?["tcp"] == lf.count + octet.count)
        #expect(status.streamListener()["received"] as? Int == lf.count + octet.count)
        #expect(status.counters()["dropped"] as? Int == 0)
    }

    /// `[::]` is dual stack: IPv4 and IPv6 clients on one tcp:// listener, beside an IPv6 UDP listener.
    @Test func dualStackListenersTakeIPv4AndIPv6() async throws {
        try #require(ExternalTool.shouldRun("logger"))
        let output = try scratchDirectory("tcp-dual") + "/out.log"
        let (ferry, ports, httpPort) = try await FerryProcess.serve(listeners: ["tcp://[::]:0", "udp://[::1]:0"], ["--upstream", "file:\(output)"])
        defer { ferry.signal(SIGKILL) }
        for (host, text) in [("127.0.0.1", "over-ipv4"), ("::1", "over-ipv6")] {
            #expect(try ExternalTool.run("logger", ["--tcp", "-n", host, "-P", "\(ports[0])", text]).status == 0)
        }
        #expect(try ExternalTool.run("logger", ["--udp", "-n", "::1", "-P", "\(ports[1])", "udp-over-ipv6"]).status == 0)
        #expect(await eventually(seconds: 10) { fileLines(output).count >= 3 })
        for text in ["over-ipv4", "over-ipv6", "udp-over-ipv6"] {
            #expect(fileLines(output).filter { $0.hasSuffix(" " + text) }.count == 1, "\(text)")
        }
        let status = StatusReader(port: httpPort).status()
        #expect((status?["stream_listeners"] as? [[String: Any]])?.first?["listener"] as? String == "tcp://[::]:0")
        #expect((status?["listeners"] as? [[String: Any]])?.first?["listener"] as? String == "udp://[::1]:0")
    }

    /// Frames split at every byte and many per write; garbage; a length of
    /// 999999999; a frame cut mid-way; a client sending one byte a second —
    /// Ferry stays up, the good streams and UDP keep flowing, each bad one is counted.
    @Test func badStreamsAreClosedAndCountedWhileOthersFlow() async throws {
        let directory = try scratchDirectory("tcp-bad")
        let output = "\(directory)/out.log"
        let (ferry, ports, httpPort) = try await FerryProcess.serve(
            listeners: ["tcp://127.0.0.1:0", "udp://127.0.0.1:0"], ["--upstream", "file:\(output)"])
        defer { ferry.signal(SIGKILL) }
        let script = """
            import socket, sys, threading, time
            port, udp = int(sys.argv[1]), int(sys.argv[2])
            def frame(m): b = m.encode(); return str(len(b)).encode() + b" " + b
            def conn(): return socket.create_connection(("127.0.0.1", port))
            def bytewise():
                s = conn()
                for b in b"".join(frame(f"split-{i} grüße end") for i in range(20)):
                    s.send(bytes([b]))
                s.close()
            def slow():
                s = conn()
                for b in frame("slow-0 one byte a second end"):
                    s.send(bytes([b])); time.sleep(0.1 if b != 32 else 1.0)
                s.close()
            threads = [threading.Thread(target=bytewise), threading.Thread(target=slow)]
            for t in threads: t.start()
            s = conn(); s.sendall(b"".join(frame(f"many-{i} in one write end") for i in range(500))); s.close()
            s = conn(); s.sendall(b"9garbage\\x00\\xff\\xfe not a frame"); time.sleep(0.3); s.close()
            s = conn(); s.sendall(b"999999999 " + b"x" * 100); time.sleep(0.3); s.close()
            s = conn(); s.sendall(frame("cut-ok end") + b"100 only part of it"); s.close()
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for i in range(50): u.sendto(f"udp-{i} still flows end".encode(), ("127.0.0.1", udp)); time.sleep(0.01)
            for t in threads: t.join()
            """
        try python(script, ["\(ports[0])", "\(ports[1])"])
        let status = StatusReader(port: httpPort)
        let expected =
            (0..<20).map { "split-\($0) grüße end" } + ["slow-0 one byte a second end"] + (0..<500).map { "many-\($0) in one write end" }
            + ["cut-ok end"] + (0..<50).map { "udp-\($0) still flows end" }
        #expect(await eventually(seconds: 15, every: .milliseconds(100)) { fileLines(output).count >= expected.count })
        let lines = fileLines(output)
        #expect(lines.count == expected.count)
        #expect(Set(lines.map(String.init)) == Set(expected))
        #expect(status.dropped("framing_error") == 2)
        #expect(status.dropped("truncated") == 1)
        let closed = status.streamListener()["closed"] as? [String: Int] ?? [:]
        #expect(closed["framing_error"] == 2)
        #expect(try HTTPTestClient.request("GET", port: httpPort, path: "/healthz").status == 200)
    }

    /// 10,000 connections opened and left idle: the per-source cap refuses
    /// most at accept, another source still gets in, the idle timeout closes
    /// the rest, UDP never stops; everything is counted.
    @Test func tenThousandIdleConnectionsAreCappedAndTimedOut() async throws {
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("tcp-idle")
            let output = "\(directory)/out.log"
            let (ferry, ports, httpPort) = try await FerryProcess.serve(
                listeners: ["tcp://127.0.0.1:0", "udp://127.0.0.1:0"],
                [
                    "--upstream", "file:\(output)", "--tcp-max-connections", "3000", "--tcp-max-connections-per-source", "2000", "--tcp-idle-timeout",
                    "3s",
                ])
            defer { ferry.signal(SIGKILL) }
            let script = """
                import resource, socket, sys, time
                port, udp = int(sys.argv[1]), int(sys.argv[2])
                resource.setrlimit(resource.RLIMIT_NOFILE, (15000, 15000))
                import selectors
                held = []
                for batch in range(20):  # 500 at a time, each batch connected before the next (the kernel's SYN queue is finite)
                    pending = []
                    for i in range(500):
                        # From 127.0.0.3: its 10,000 source ports do not take ports other tests bind on 127.0.0.1.
                        s = socket.socket(); s.bind(("127.0.0.3", 0)); s.setblocking(False)
                        try: s.connect(("127.0.0.1", port))
                        except BlockingIOError: pass
                        pending.append(s)
                    selector = selectors.DefaultSelector()
                    for s in pending: selector.register(s, selectors.EVENT_WRITE)
                    deadline, left = time.time() + 10, len(pending)
                    while left and time.time() < deadline:
                        for key, _ in selector.select(timeout=1):
                            selector.unregister(key.fileobj); left -= 1
                    held += pending
                time.sleep(1.0)
                # Another source address still gets in, and UDP still flows.
                o = socket.socket(); o.bind(("127.0.0.2", 0)); o.connect(("127.0.0.1", port)); o.sendall(b"<13>other-0 from another source end\\n"); o.close()
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.sendto(b"udp-0 while 10000 are open end", ("127.0.0.1", udp))
                time.sleep(5.0)
                for s in held: s.close()
                """
            try python(script, ["\(ports[0])", "\(ports[1])"])
            let status = StatusReader(port: httpPort)
            #expect(await eventually(seconds: 10, every: .milliseconds(200)) { fileLines(output).count >= 2 })
            #expect(Set(fileLines(output).map(String.init)) == ["<13>other-0 from another source end", "udp-0 while 10000 are open end"])
            let listener = status.streamListener()
            let refused = listener["refused"] as? [String: Int] ?? [:]
            let closed = listener["closed"] as? [String: Int] ?? [:]
            // Beyond the cap (2,000 open from one source) they were refused at accept; the idle timeout
            // frees places as it goes (how many of the 10,000 the kernel lets through its SYN queue in time
            // depends on the machine).
            #expect((refused["source_limit"] ?? 0) >= 1_000, "refused: \(refused)")
            #expect((refused["source_limit"] ?? 0) + (listener["connections_accepted"] as? Int ?? 0) >= 5_000, "\(listener)")
            #expect((closed["idle"] ?? 0) >= 1_500, "closed: \(closed)")
            #expect(await eventually(seconds: 10) { status.streamListener()["connections_open"] as? Int == 0 })
            #expect(try HTTPTestClient.request("GET", port: httpPort, path: "/healthz").status == 200)
        }
    }
}
