import FerryTestSupport
import Foundation
import Testing

/// `/metrics` checked by the real Prometheus tools, JSON logs, trace ids and `ferry trace`.
@Suite(.timeLimit(.minutes(2)))
struct ObservabilityTests {
    @Test(.enabled(if: ExternalTool.shouldRun("promtool")))
    func promtoolFindsNothingInLiveMetrics() async throws {
        let (ferry, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "file:out.log"])
        let sender = try UDPTestSocket()
        for index in 0..<25 { sender.send(Array("log \(index)".utf8), to: udpPort) }
        _ = try HTTPTestClient.request("POST", port: httpPort, path: "/v1/logs", body: Array("a\nb\n".utf8))
        _ = try HTTPTestClient.request("GET", port: httpPort, path: "/no-such-route")
        #expect(await eventually(seconds: 5) { StatusReader(port: httpPort).counters()["forwarded"] as? Int == 27 })

        let reply = try HTTPTestClient.request("GET", port: httpPort, path: "/metrics")
        #expect(reply.status == 200)
        #expect(reply.headers["content-type"]?.hasPrefix("text/plain") == true)
        let check = try ExternalTool.run("promtool", ["check", "metrics"], input: reply.body)
        #expect(check.status == 0, "promtool: \(check.output)")
        #expect(check.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool findings: \(check.output)")

        let lines = reply.body.split(separator: "\n")
        func value(_ series: String) -> Double? {
            lines.first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        #expect(value(#"ferry_logs_received_total{transport="udp"}"#) == 25)
        #expect(value(#"ferry_logs_received_total{transport="http"}"#) == 2)
        #expect(value(#"ferry_logs_forwarded_total{upstream="file:out.log"}"#) == 27)
        #expect(value(#"ferry_breaker_state{upstream="file:out.log",state="closed"}"#) == 1)
        #expect(value(#"ferry_build_info{version="0.1.0"}"#) == 1)
        #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect(lines.contains { $0.hasPrefix(#"ferry_forward_latency_seconds_bucket{upstream="file:out.log",le="0.0001"}"#) })
        #expect(lines.contains { $0.hasPrefix(#"ferry_forward_latency_seconds_bucket{upstream="file:out.log",le="10.0"}"#) })
        #expect(lines.contains { $0.hasPrefix("ferry_http_requests_total{") && $0.contains(#"status="404""#) })
        ferry.signal(SIGTERM)
        #expect(await ferry.waitForExit(timeout: 10) == 0)
    }

    @Test(.enabled(if: ExternalTool.shouldRun("prometheus")))
    func aRealPrometheusScrapesTheReceivedCount() async throws {
        let dir = try scratchDirectory("obs")
        let (ferry, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "file:out.log"])
        let sent = 137
        let sender = try UDPTestSocket()
        for index in 0..<sent { sender.send(Array("scraped \(index)".utf8), to: udpPort) }

        let prometheusPort = freeTCPPort()
        let config = """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: ferry
                static_configs:
                  - targets: ["127.0.0.1:\(httpPort)"]
            """
        try config.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: try #require(ExternalTool.path("prometheus")))
        prometheus.arguments = [
            "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
            "--web.listen-address=127.0.0.1:\(prometheusPort)",
        ]
        prometheus.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        prometheus.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try prometheus.run()
        defer {
            prometheus.terminate()
            prometheus.waitUntilExit()
        }

        let query = "ferry_logs_received_total%7Btransport%3D%22udp%22%7D"
        var scraped: Double?
        for _ in 0..<120 where scraped == nil {
            try await Task.sleep(for: .milliseconds(500))
            guard let reply = try? HTTPTestClient.request("GET", port: prometheusPort, path: "/api/v1/query?query=\(query)"),
                let data = reply.json?["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                let value = result.first?["value"] as? [Any], let text = value.last as? String
            else { continue }
            scraped = Double(text)
        }
        #expect(scraped == Double(sent))
        ferry.signal(SIGTERM)
        _ = await ferry.waitForExit(timeout: 10)
    }

    @Test func requestsJoinTheCallersTraceAndLogLinesCarryIt() async throws {
        let (ferry, _, httpPort) = try await FerryProcess.serve(["--upstream", "file:out.log", "--log-level", "debug"])
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let reply = try HTTPTestClient.request(
            "GET", port: httpPort, path: "/v1/status", headers: ["traceparent": "00-\(traceID)-00f067aa0ba902b7-01"])
        let returned = try #require(reply.headers["traceparent"])
        let parts = returned.split(separator: "-")
        #expect(parts.count == 4)
        #expect(parts[1] == Substring(traceID))
        #expect(parts[2] != "00f067aa0ba902b7")  // a span of its own

        let fresh = try HTTPTestClient.request("GET", port: httpPort, path: "/healthz")
        let freshTrace = try #require(fresh.headers["traceparent"]?.split(separator: "-").dropFirst().first)
        #expect(freshTrace.count == 32 && freshTrace != Substring(traceID))

        let line = await ferry.waitForLine(message: "http request")
        #expect(line != nil)
        #expect(
            await eventually(seconds: 5) {
                ferry.logLines.contains {
                    $0["message"] as? String == "http request" && $0["trace_id"] as? String == traceID && $0["span_id"] as? String == String(parts[2])
                }
            })
        ferry.signal(SIGTERM)
        _ = await ferry.waitForExit(timeout: 10)
    }

    @Test func logLinesStayValidJSONUnderLoadAndAcrossRotation() async throws {
        let dir = try scratchDirectory("obs")
        let logFile = dir + "/ferry.log"
        let (ferry, udpPort, _) = try await FerryProcess.serve([
            "--upstream", "file:out.log", "--log-file", logFile, "--log-max-bytes", "16KiB", "--log-keep", "2",
            "--trace-sample-rate", "1", "--instance", "rotating",
        ])
        let sender = try UDPTestSocket()
        for index in 0..<3_000 {
            sender.send(Array(#"{"msg":"hello \#(index)","trace_id":"0af7651916cd43dd8448eb211c80319c"}"#.utf8), to: udpPort)
        }
        #expect(await eventually(seconds: 10) { FileManager.default.fileExists(atPath: logFile + ".2") })
        ferry.signal(SIGTERM)
        #expect(await ferry.waitForExit(timeout: 10) == 0)
        #expect(!FileManager.default.fileExists(atPath: logFile + ".3"))  // only two rotated files kept
        var sampled = 0
        for file in [logFile + ".2", logFile + ".1", logFile] {
            let contents = try String(contentsOfFile: file, encoding: .utf8)
            #expect(contents.hasSuffix("\n"))
            #expect(contents.utf8.count <= 16_384 + 1_024)
            for line in contents.split(separator: "\n") {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object != nil, "not JSON: \(line)")
                guard let object else { continue }
                #expect((object["time"] as? String)?.hasSuffix("Z") == true)
                #expect(object["instance"] as? String == "rotating")
                if object["message"] as? String == "log sampled" {
                    sampled += 1
                    #expect(object["record.trace_id"] as? String == "0af7651916cd43dd8448eb211c80319c")
                }
            }
        }
        #expect(sampled > 0)
    }

    /// A two-hop run with a forced retry: the trace id from the edge's log shows
    /// the send, the retry and the receipt on the aggregator.
    /// Timed: under the suite's heavy tests its 5 s wait for a retry was seen to run out (CI).
    @Test func ferryTraceFollowsABatchAcrossTwoHopsIncludingARetry() async throws {
        try await LoadGate.shared.timed {
            let dir = try scratchDirectory("obs")
            let edgeLog = dir + "/edge.log"
            let aggregatorLog = dir + "/aggregator.log"
            let (aggregator, aggregatorPort, _) = try await FerryProcess.serve([
                "--upstream", "file:\(dir)/delivered.log", "--log-level", "debug", "--log-file", aggregatorLog, "--instance", "aggregator",
            ])
            let (edge, edgePort, _) = try await FerryProcess.serve([
                "--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--log-level", "debug", "--log-file", edgeLog, "--instance", "edge",
            ])
            aggregator.signal(SIGSTOP)  // acks stop: the frame will be retried
            try UDPTestSocket().send(Array("traced log".utf8), to: edgePort)
            var retried: [String: Any]?
            for _ in 0..<200 where retried == nil {
                try await Task.sleep(for: .milliseconds(50))
                retried = jsonLines(edgeLog).first { $0["message"] as? String == "frame retried" }
            }
            aggregator.signal(SIGCONT)
            let traceID = try #require(retried?["trace_id"] as? String)
            #expect(
                await eventually(seconds: 10) {
                    jsonLines(aggregatorLog).contains { $0["message"] as? String == "frame received" && $0["trace_id"] as? String == traceID }
                })

            let text = try FerryProcess(["trace", traceID, edgeLog, aggregatorLog])
            #expect(await text.waitForExit(timeout: 10) == 0)
            let output = text.logText
            #expect(output.contains("frame sent"))
            #expect(output.contains("frame retried"))
            #expect(output.contains("frame received"))
            #expect(output.contains("aggregator") && output.contains("edge"))
            let sentLine = try #require(output.split(separator: "\n").firstIndex { $0.contains("frame sent") })
            let receivedLine = try #require(output.split(separator: "\n").firstIndex { $0.contains("frame received") })
            #expect(sentLine < receivedLine)  // time order across hops

            let json = try FerryProcess(["trace", traceID, edgeLog, aggregatorLog, "--format", "json"])
            #expect(await json.waitForExit(timeout: 10) == 0)
            let events = json.logText.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(events.first?["event"] as? String == "frame sent")
            #expect(events.first?["elapsed_seconds"] as? Double == 0)
            #expect(Set(events.compactMap { $0["instance"] as? String }) == ["edge", "aggregator"])

            let missing = try FerryProcess(["trace", "00000000000000000000000000000001", edgeLog])
            #expect(await missing.waitForExit(timeout: 10) == 1)
            for process in [aggregator, edge] {
                process.signal(SIGTERM)
                _ = await process.waitForExit(timeout: 10)
            }
        }
    }

    /// At default settings a healthy two-hop run leaves trace ids: one frame
    /// per loop and second is logged at info on both hops, and `ferry trace`
    /// follows it across both log files, telling the hops apart.
    @Test func aHealthyTwoHopRunAtDefaultsLeavesATraceThatFerryTraceFollows() async throws {
        let dir = try scratchDirectory("obs")
        let edgeLog = dir + "/edge.log"
        let aggregatorLog = dir + "/aggregator.log"
        let (aggregator, aggregatorPort, _) = try await FerryProcess.serve(["--upstream", "file:\(dir)/delivered.log", "--log-file", aggregatorLog])
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve(["--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--log-file", edgeLog])
        try await PacedSender.send(prefix: "t", count: 50, rate: 100, to: edgePort)
        let status = StatusReader(port: edgeHTTP)
        #expect(await eventually(seconds: 10) { (status.counters()["forwarded"] as? Int) == 50 })
        #expect(await eventually(seconds: 5) { jsonLines(aggregatorLog).contains { $0["message"] as? String == "frame forwarded" } })
        let sent = try #require(jsonLines(edgeLog).first { $0["message"] as? String == "frame sent" && $0["level"] as? String == "info" })
        let traceID = try #require(sent["trace_id"] as? String)
        let trace = try FerryProcess(["trace", traceID, edgeLog, aggregatorLog, "--format", "json"])
        #expect(await trace.waitForExit(timeout: 10) == 0)
        let events = trace.logText.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let names = Set(events.compactMap { $0["event"] as? String })
        #expect(names.isSuperset(of: ["frame sent", "frame received", "frame acknowledged", "frame forwarded"]), "\(names)")
        let instances = Set(events.compactMap { $0["instance"] as? String })
        #expect(instances.count == 2, "the hops are not told apart: \(instances)")
        for process in [aggregator, edge] {
            process.signal(SIGTERM)
            _ = await process.waitForExit(timeout: 10)
        }
    }

    private func jsonLines(_ path: String) -> [[String: Any]] {
        fileLines(path).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}
