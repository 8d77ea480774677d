import FerryTestSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An edge and an aggregator, each in a namespace of its own, with an
/// impairment relay between them in the root namespace (where the test runs).
///
/// ```
/// test (root) ──udp──▶ edge ──upstream──▶ relay (root, edge link) ──▶ aggregator ──▶ file:
/// ```
/// The edge's upstream points at the relay's address on the edge link; the
/// relay forwards from its address on the aggregator link. The aggregator
/// writes a `file:` upstream the test reads (the filesystem is shared), so
/// every offered log is counted, missing or doubled, with `PacedSender.tally`.
final class RelayedChain {
    /// The edge's upstream transport.
    enum Scheme: String {
        case ferry
        case udp
        case tcp
    }

    let network: TestNetwork
    let edgeLink: TestNetwork.Link
    let aggregatorLink: TestNetwork.Link
    let directory: String
    let output: String
    let udpRelay: ImpairmentRelay?
    let tcpRelay: TCPImpairmentRelay?
    let edge: FerryProcess
    let edgePort: Int
    let edgeStatus: StatusReader
    let aggregator: FerryProcess
    let aggregatorStatus: StatusReader

    /// Builds the hosts and links, starts the aggregator, the relay and the edge.
    /// - Parameters:
    ///   - keys: both Ferrys sign and verify `ferry://` frames with one key (`auth.key-file`).
    ///   - spool: both Ferrys keep a disk spool.
    init(
        _ label: String, scheme: Scheme = .ferry, data: Impairment = .none, acks: Impairment = .none, seed: UInt64, keys: Bool = false,
        spool: Bool = false, edgeOptions: [String] = []
    ) async throws {
        network = try TestNetwork(label)
        do {
            let edgeHost = try network.addHost("edge")
            let aggregatorHost = try network.addHost("aggr")
            edgeLink = try network.link(TestNetwork.root, edgeHost)
            aggregatorLink = try network.link(TestNetwork.root, aggregatorHost)
            directory = try scratchDirectory("net-\(label)")
            output = directory + "/aggregator.log"
            var shared: [String] = []
            if keys {
                let keyFile = directory + "/ferry.key"
                var random = SystemRandomNumberGenerator()
                let key = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
                FileManager.default.createFile(atPath: keyFile, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o600])
                shared += ["--auth-key-file", keyFile]
            }
            let listener = scheme == .tcp ? "tcp" : "udp"
            let (aggregator, aggregatorPorts, aggregatorHTTP) = try await FerryProcess.serve(
                listeners: ["\(listener)://\(aggregatorLink.addressB):0"],
                ["--upstream", "file:\(output)"] + shared + (spool ? ["--spool-dir", directory + "/aggregator-spool"] : []),
                wrapper: aggregatorHost.wrapper, http: "\(aggregatorLink.addressB):0")
            self.aggregator = aggregator
            aggregatorStatus = StatusReader(port: aggregatorHTTP, host: aggregatorLink.addressB)
            let target = IPv4Endpoint(host: aggregatorLink.addressB, port: aggregatorPorts[0])
            let listen = IPv4Endpoint(host: edgeLink.addressA, port: 0)
            let relayEndpoint: IPv4Endpoint
            if scheme == .tcp {
                let relay = try TCPImpairmentRelay(listen: listen, to: target, seed: seed)
                (tcpRelay, udpRelay, relayEndpoint) = (relay, nil, relay.endpoint)
            } else {
                let relay = try ImpairmentRelay(listen: listen, to: target, source: aggregatorLink.addressA, data: data, acks: acks, seed: seed)
                (tcpRelay, udpRelay, relayEndpoint) = (nil, relay, relay.endpoint)
            }
            let (edge, edgePorts, edgeHTTP) = try await FerryProcess.serve(
                listeners: ["udp://\(edgeLink.addressB):0"],
                ["--upstream", "\(scheme.rawValue)://\(relayEndpoint)"] + shared + (spool ? ["--spool-dir", directory + "/edge-spool"] : [])
                    + edgeOptions,
                wrapper: edgeHost.wrapper, http: "\(edgeLink.addressB):0")
            self.edge = edge
            edgePort = edgePorts[0]
            edgeStatus = StatusReader(port: edgeHTTP, host: edgeLink.addressB)
        } catch {
            network.remove()
            throw error
        }
    }

    /// Offers `count` numbered logs at `rate` to the edge's UDP listener.
    func offer(prefix: String, count: Int, rate: Int) async throws {
        try await PacedSender.send(prefix: prefix, count: count, rate: rate, to: edgePort, host: edgeLink.addressB)
    }

    /// Missing, doubled and unexpected lines in the aggregator's file now.
    func tally(prefix: String, count: Int) -> (missing: Int, duplicated: Int, unexpected: Int) {
        PacedSender.tally(prefix: prefix, count: count, in: outputLines)
    }

    /// The aggregator's file, line by line, read as bytes: a corrupted log
    /// (udp:// passes flipped bits on) is not valid UTF-8, and `fileLines`
    /// would then read the whole file as empty.
    var outputLines: [Substring] {
        guard let data = FileManager.default.contents(atPath: output) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).map { Substring(String(decoding: $0, as: UTF8.self)) }
    }

    /// The seed of the relay and what it did, for failure messages.
    var relayDescription: String { udpRelay?.description ?? tcpRelay?.description ?? "no relay" }

    /// The edge's breaker transitions, in order: (seconds since `start`, target state, reason).
    func breakerTransitions(since start: Date) -> [(at: Double, to: String, reason: String)] {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return edge.logLines.filter { $0["message"] as? String == "breaker transition" }.map { line in
            let time = (line["time"] as? String).flatMap { formatter.date(from: $0) } ?? start
            return (time.timeIntervalSince(start), line["breaker.to"] as? String ?? "?", line["breaker.reason"] as? String ?? "?")
        }
    }

    /// Stops both Ferrys and the relay and removes the namespaces.
    func stop() async {
        edge.signal(SIGTERM)
        aggregator.signal(SIGTERM)
        _ = await edge.waitForExit(timeout: 10)
        _ = await aggregator.waitForExit(timeout: 10)
        udpRelay?.stop()
        tcpRelay?.stop()
        network.remove()
    }
}

extension RelayedChain {
    /// What a scenario measured: logs missing and doubled, and how long delivery took after the last send.
    struct Delivery: CustomStringConvertible {
        var missing: Int
        var duplicated: Int
        var unexpected: Int
        /// Seconds from the last send until every log had arrived; nil if some never did within the deadline.
        var completeAfter: Double?

        var description: String {
            "missing \(missing), doubled \(duplicated), unexpected \(unexpected), complete after "
                + (completeAfter.map { String(format: "%.1f s", $0) } ?? "never")
        }
    }

    /// Waits (polling the aggregator's file) until every one of `count` logs
    /// arrived or `seconds` pass, then `settle` more for late copies, and counts.
    func awaitDelivery(prefix: String, count: Int, within seconds: Double, settle: Duration = .seconds(2)) async -> Delivery {
        let sent = ContinuousClock.now
        var completeAfter: Double?
        _ = await eventually(seconds: seconds, every: .milliseconds(250)) {
            guard tally(prefix: prefix, count: count).missing == 0 else { return false }
            let elapsed = ContinuousClock.now - sent
            completeAfter = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return true
        }
        try? await Task.sleep(for: settle)
        let final = tally(prefix: prefix, count: count)
        return Delivery(missing: final.missing, duplicated: final.duplicated, unexpected: final.unexpected, completeAfter: completeAfter)
    }

    /// The numbers of `prefix`'s logs that are missing from, and doubled in, the aggregator's file.
    func missingAndDoubled(prefix: String, count: Int) -> (missing: [Int], doubled: [Int]) {
        var seen = [Int](repeating: 0, count: count)
        for line in outputLines where line.hasPrefix(prefix + "-") {
            if let number = Int(line.dropFirst(prefix.count + 1)), number < count { seen[number] += 1 }
        }
        return (seen.indices.filter { seen[$0] == 0 }, seen.indices.filter { seen[$0] > 1 })
    }

    /// A line for the record (docs/networks.md): the scenario, its seed and what it measured.
    func report(_ scenario: String, _ delivery: Delivery, since start: Date) {
        let opens = breakerTransitions(since: start).filter { $0.to == "open" }.count
        print(
            "NETWORK-RESULT \(scenario): \(delivery); breaker opens \(opens); edge \(edgeStatus.counters().filter { ["received", "forwarded", "dropped"].contains($0.key) }); "
                + "edge path \(edgeStatus.upstream(0)["frames"] ?? "-"); aggregator frames \(aggregatorStatus.counters()["frames_received_by_outcome"] ?? "-"); "
                + relayDescription
        )
    }
}
