import FerryTestSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Ferrys on a ``KubernetesService``: aggregator pods (spool, a `file:`
/// upstream each, listening on the Service's port) and one edge (spool,
/// `ferry://` to the Service's virtual IP, one receive loop so that it has
/// exactly one flow through the node). Pods keep their spool directory and
/// output file across restarts, as a StatefulSet pod keeps its volume.
final class ServiceBed: @unchecked Sendable {
    let service: KubernetesService
    let directory: String
    private(set) var podFerrys: [Int: FerryProcess] = [:]
    /// Each pod's control-plane port (on 127.0.0.1 inside its namespace).
    private(set) var podHTTP: [Int: Int] = [:]
    private(set) var edge: FerryProcess?
    private(set) var edgePort = 0
    private(set) var edgeHTTP = 0

    init(_ label: String, pods: Int) throws {
        service = try KubernetesService(label, pods: pods)
        directory = try scratchDirectory("k8s-\(label)")
    }

    /// The pod's delivered logs (its `file:` upstream).
    func output(of pod: KubernetesService.Pod) -> String { directory + "/pod-\(pod.index).log" }

    func outputBytes(of pod: KubernetesService.Pod) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: output(of: pod)))?[.size] as? Int) ?? 0
    }

    /// Every line any pod delivered (its output files, the current one and any set aside).
    func delivered() -> [Substring] {
        service.pods.flatMap { pod in
            [output(of: pod) + ".before-outage", output(of: pod)].flatMap { path in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) == nil ? fileLines(path) : []
            }
        }
    }

    /// The pod's log store goes away: its output file is set aside and its path
    /// becomes a link to `/dev/full`, which the pod reopens (SIGHUP). Its writes
    /// then fail, so it keeps what it acknowledges in its spool, undelivered.
    func blockDelivery(of pod: KubernetesService.Pod) throws {
        let path = output(of: pod)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".before-outage")
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/full")
        podFerrys[pod.index]?.signal(SIGHUP)
    }

    /// The log store is back (a plain file again) for the pod's next start.
    func restoreDelivery(of pod: KubernetesService.Pod) throws {
        try FileManager.default.removeItem(atPath: output(of: pod))
    }

    /// Starts (or restarts, on the same spool and file) the pod's Ferry on the Service's port.
    func startPod(_ pod: KubernetesService.Pod) async throws {
        let (ferry, _, http) = try await FerryProcess.serve(
            listeners: ["udp://0.0.0.0:\(service.port)"],
            [
                "--upstream", "file:\(output(of: pod))", "--spool-dir", directory + "/spool-pod-\(pod.index)", "--receive-sockets", "1",
                "--instance", "pod-\(pod.index)",
            ],
            wrapper: pod.host.wrapper)
        podFerrys[pod.index] = ferry
        podHTTP[pod.index] = http
    }

    /// Undelivered logs the pod's spool held when its Ferry started (its `spool opened` line).
    func recoveredAtStart(_ pod: KubernetesService.Pod) async -> String {
        await podFerrys[pod.index]?.waitForLine(message: "spool opened")?["spool.recovered_logs"] as? String ?? "?"
    }

    /// Runs the aggregators' preStop hook, `docker/drain-wait.sh SETTLE MAX`, in
    /// the pod's namespace against its Ferry; returns the script's output.
    func drainWait(_ pod: KubernetesService.Pod, settle: Int, max: Int) async throws -> String {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docker/drain-wait.sh").path
        let port = podHTTP[pod.index] ?? 0
        let network = service.network
        return try await onOwnThread {
            try network.run(
                on: pod.host, ["/usr/bin/env", "FERRY_HTTP_ADDRESS=127.0.0.1:\(port)", "/bin/bash", script, "\(settle)", "\(max)"])
        }
    }

    /// Starts the edge: syslog in on its control link, `ferry://VIP:PORT` out, spool on.
    func startEdge() async throws {
        let (ferry, ports, http) = try await FerryProcess.serve(
            listeners: ["udp://\(service.edgeControlAddress):0"],
            [
                "--upstream", "ferry://\(service.virtualIP):\(service.port)", "--spool-dir", directory + "/spool-edge",
                "--receive-sockets", "1", "--instance", "edge",
            ],
            wrapper: service.edge.wrapper, http: "\(service.edgeControlAddress):0")
        edge = ferry
        edgePort = ports[0]
        edgeHTTP = http
    }

    var edgeStatus: StatusReader { StatusReader(port: edgeHTTP, host: service.edgeControlAddress) }

    /// The edge's upstream breaker and spool, for the figures a test prints.
    func edgeSummary() -> String {
        let status = edgeStatus.status() ?? [:]
        let upstream = (status["upstreams"] as? [[String: Any]])?.first ?? [:]
        let spool = status["spool"] as? [String: Any] ?? [:]
        let parts: [String: Any] = [
            "breaker": upstream["breaker"] ?? "?", "retries": upstream["retries"] ?? "?", "spool_logs": spool["logs"] ?? "?",
            "queue": (status["queue"] as? [String: Any])?["depth_logs"] ?? "?",
        ]
        let data = (try? JSONSerialization.data(withJSONObject: parts, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The pod's address stops answering, as a deleted pod's does: whatever
    /// reaches it is dropped, and nothing (not even ICMP) comes back.
    func blackHole(_ pod: KubernetesService.Pod) throws {
        let rules = "table inet blackhole {\n chain input {\n  type filter hook input priority -10; policy drop;\n }\n}\n"
        _ = try service.network.run(on: pod.host, ["nft", "-f", "-"], input: rules)
    }

    /// The pod's address answers again (before its Ferry restarts).
    func removeBlackHole(_ pod: KubernetesService.Pod) throws {
        _ = try service.network.run(on: pod.host, ["nft", "delete", "table", "inet", "blackhole"])
    }

    /// SIGKILLs the pod's Ferry (a crashed container) and waits for it to exit.
    func kill(_ pod: KubernetesService.Pod) async {
        guard let ferry = podFerrys.removeValue(forKey: pod.index) else { return }
        ferry.signal(SIGKILL)
        _ = await ferry.waitForExit(timeout: 10)
    }

    /// SIGTERMs the pod's Ferry (Kubernetes stopping a pod) and returns its last log line.
    func terminate(_ pod: KubernetesService.Pod) async -> [String: Any]? {
        guard let ferry = podFerrys.removeValue(forKey: pod.index) else { return nil }
        ferry.signal(SIGTERM)
        _ = await ferry.waitForExit(timeout: 20)
        return ferry.logLines.last { ($0["message"] as? String)?.hasPrefix("drain") == true }
    }

    /// Kills every Ferry, then removes the nft table and the namespaces (also after a failed expectation).
    func stop() async {
        for ferry in Array(podFerrys.values) + [edge].compactMap({ $0 }) {
            ferry.signal(SIGKILL)
            _ = await ferry.waitForExit(timeout: 10)
        }
        podFerrys = [:]
        edge = nil
        service.remove()
    }
}
