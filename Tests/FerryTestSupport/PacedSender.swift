import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Sends numbered log lines (`PREFIX-000123`) to a UDP port at a steady rate,
/// from a thread of its own, so tests can check which ones arrived and how often.
public enum PacedSender {
    /// The line for log number `index`.
    public static func line(_ prefix: String, _ index: Int) -> String {
        let number = String(index)
        return prefix + "-" + String(repeating: "0", count: max(0, 6 - number.count)) + number
    }

    /// Sends `count` lines (numbered from `first`) at `rate` per second, from
    /// `source` to `host`:`port` (loopback unless told); returns when all are sent.
    public static func send(
        prefix: String, count: Int, rate: Int, to port: Int, host: String = "127.0.0.1", first: Int = 0, from source: String = "127.0.0.1"
    ) async throws {
        // Loopback cannot reach another namespace's host: then the kernel picks the source.
        let socket = try UDPTestSocket(host: host.hasPrefix("127.") || source != "127.0.0.1" ? source : "0.0.0.0")
        let start = ContinuousClock.now
        let chunk = max(1, rate / 100)  // one chunk every 10 ms
        var index = 0
        while index < count {
            for _ in 0..<min(chunk, count - index) {
                socket.send(Array(line(prefix, first + index).utf8), to: port, host: host)
                index += 1
            }
            let due = start + .milliseconds(index * 1000 / rate)
            let now = ContinuousClock.now
            if due > now { try await Task.sleep(until: due, clock: .continuous) }
        }
    }

    /// Counts how often each expected line appears in `lines`.
    public static func tally(prefix: String, count: Int, in lines: [Substring]) -> (missing: Int, duplicated: Int, unexpected: Int) {
        var seen = [Int](repeating: 0, count: count)
        var unexpected = 0
        for line in lines {
            guard line.hasPrefix(prefix + "-"), let number = Int(line.dropFirst(prefix.count + 1)), number < count else {
                unexpected += 1
                continue
            }
            seen[number] += 1
        }
        return (seen.filter { $0 == 0 }.count, seen.filter { $0 > 1 }.count, unexpected)
    }
}

/// Reads a running `ferry`'s `/v1/status`.
public struct StatusReader {
    public let port: Int
    /// The control plane's address: loopback, or a ``TestNetwork`` host's link address.
    public let host: String

    public init(port: Int, host: String = "127.0.0.1") {
        self.port = port
        self.host = host
    }

    public func status() -> [String: Any]? {
        (try? HTTPTestClient.request("GET", port: port, path: "/v1/status", host: host))?.json
    }

    public func counters() -> [String: Any] {
        status()?["counters"] as? [String: Any] ?? [:]
    }

    public func upstream(_ index: Int) -> [String: Any] {
        (status()?["upstreams"] as? [[String: Any]])?[index] ?? [:]
    }

    public func queueDepth() -> Int {
        (status()?["queue"] as? [String: Any])?["depth_logs"] as? Int ?? -1
    }
}

/// Reads a file's lines (empty when missing).
public func fileLines(_ path: String) -> [Substring] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
}

/// Resident memory of a process in KiB, from /proc.
public func residentKiB(pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}

/// Waits until `condition` holds or `seconds` pass, asking every `every`; returns whether it held.
/// (Poll a condition that reads a large file slowly: the suites beside share the test runner's threads.)
public func eventually(seconds: Double, every: Duration = .milliseconds(20), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: every)
    }
    return condition()
}
