import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The real `ferry` binary run as a child process, its log lines read back
/// from its standard error (JSON Lines).
public final class FerryProcess {
    public let process = Process()
    public let logPath: String
    public let directory: String

    /// The `ferry` built next to this test bundle.
    public static var binary: URL {
        if let override = ProcessInfo.processInfo.environment["FERRY_BINARY"] {
            return URL(fileURLWithPath: override)
        }
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent("ferry")
    }

    /// Runs `ferry ARGUMENTS`, or `WRAPPER… ferry ARGUMENTS` when `wrapper` is given
    /// (for example `unshare --mount sh -c '…; exec "$0" "$@"'`).
    public init(_ arguments: [String], environment: [String: String] = [:], wrapper: [String] = []) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-proc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        logPath = directory + "/ferry.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        if wrapper.isEmpty {
            process.executableURL = Self.binary
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: wrapper[0])
            process.arguments = Array(wrapper.dropFirst()) + [Self.binary.path] + arguments
        }
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FERRY_") }
        env.merge(environment) { _, new in new }
        process.environment = env
        // One descriptor for both, so neither overwrites what the other wrote.
        let output = FileHandle(forWritingAtPath: logPath)
        process.standardError = output
        process.standardOutput = output
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Starts `ferry serve` on ephemeral ports and waits until both planes listen.
    public static func serve(
        _ extra: [String], environment: [String: String] = [:], wrapper: [String] = [], listen: String = "127.0.0.1:0"
    ) async throws -> (FerryProcess, udpPort: Int, httpPort: Int) {
        let ferry = try FerryProcess(
            ["serve", "--listen", listen, "--http", "127.0.0.1:0"] + extra, environment: environment, wrapper: wrapper)
        guard let udp = await ferry.waitForLine(message: "listening"), let http = await ferry.waitForLine(message: "http listening"),
            let udpPort = port(of: udp["udp.address"]), let httpPort = port(of: http["http.address"])
        else {
            throw FerryProcessError.didNotStart(log: ferry.logText)
        }
        return (ferry, udpPort, httpPort)
    }

    /// Starts `ferry serve` on `listeners` (URLs, port 0 allowed) and returns
    /// the port each one bound, in order, and the HTTP port. `http` is the
    /// control plane's address: a Ferry in a ``TestNetwork`` host binds its
    /// link address, so the test (in the root namespace) can read its status.
    public static func serve(
        listeners: [String], _ extra: [String], environment: [String: String] = [:], wrapper: [String] = [],
        http: String = "127.0.0.1:0"
    ) async throws -> (FerryProcess, ports: [Int], httpPort: Int) {
        let ferry = try FerryProcess(
            ["serve", "--http", http] + listeners.flatMap { ["--listen", $0] } + extra, environment: environment, wrapper: wrapper)
        guard let line = await ferry.waitForLine(message: "listening"), let http = await ferry.waitForLine(message: "http listening"),
            let bound = line["listeners"] as? String, let httpPort = port(of: http["http.address"])
        else {
            throw FerryProcessError.didNotStart(log: ferry.logText)
        }
        let ports = bound.split(separator: ",").compactMap { port(of: String($0.split(separator: "/").last ?? "")) }
        return (ferry, ports, httpPort)
    }

    private static func port(of address: Any?) -> Int? {
        (address as? String).flatMap { $0.split(separator: ":").last.flatMap { Int($0) } }
    }

    public var logText: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// A `--log-file` given to the process, whose lines are read too.
    var logFile: String? {
        guard let index = process.arguments?.firstIndex(of: "--log-file"), let path = process.arguments?[index + 1] else { return nil }
        return path.hasPrefix("/") ? path : directory + "/" + path
    }

    /// Every JSON log line written so far.
    public var logLines: [[String: Any]] {
        let fileText = logFile.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? ""
        return (logText + fileText).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Waits for the first log line with `message`, polling on a thread of its own: when
    /// dozens of tests start Ferrys at once on 2 cores, Swift's cooperative pool can be held
    /// by other tests' blocking calls for longer than `timeout` (seen on CI: every start-up
    /// "failed" with both lines already in the log).
    public func waitForLine(message: String, timeout: Double = 10) async -> [String: Any]? {
        try? await onOwnThread { () -> [String: Any]? in
            let deadline = Date().addingTimeInterval(timeout)
            while true {
                if let line = self.logLines.first(where: { $0["message"] as? String == message }) { return line }
                if Date() >= deadline { return nil }
                usleep(20_000)
            }
        }
    }

    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// The process id (to signal it from another task).
    public var processID: Int32 { process.processIdentifier }

    /// Waits for the process to exit; returns its exit status, or `nil` on timeout.
    public func waitForExit(timeout: Double) async -> Int32? {
        // On a thread of its own, for the same reason as waitForLine.
        (try? await onOwnThread { self.blockingWaitForExit(timeout: timeout) }) ?? nil
    }
}

public enum FerryProcessError: Error {
    case didNotStart(log: String)
}
