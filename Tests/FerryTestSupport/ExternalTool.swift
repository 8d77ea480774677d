import Foundation

/// A program from the machine (promtool, prometheus) that some tests need.
/// `.ci/run` installs them; on a developer's machine without them those tests
/// are skipped, and in CI (`CI` set) they run and fail if the tool is missing.
public enum ExternalTool {
    public static func path(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Whether tests needing `name` should run here.
    public static func shouldRun(_ name: String) -> Bool {
        path(name) != nil || ProcessInfo.processInfo.environment["CI"] != nil
    }

    /// Runs `name` with `arguments` and `input` on standard input; returns its exit status and output.
    public static func run(_ name: String, _ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
        guard let executable = path(name) else { throw ExternalToolError.missing(name) }
        return try run(executable: executable, arguments, input: input)
    }

    /// Runs the program at `executable` with `arguments` and `input` on standard input; returns its exit status and output.
    public static func run(executable: String, _ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}

public enum ExternalToolError: Error, CustomStringConvertible {
    case missing(String)
    case failed(String, String)

    public var description: String {
        switch self {
        case .failed(let name, let output): return "'\(name)' failed: \(output)"
        case .missing(let name): return "'\(name)' is not installed (.ci/run installs it with apt-get)"
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released).
public func freeTCPPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs a Python 3 script (a test's own TCP/TLS client or server) and returns its output; throws if it fails.
@discardableResult
public func python(_ script: String, _ arguments: [String] = []) throws -> String {
    let (status, output) = try ExternalTool.run("python3", ["-c", script] + arguments)
    guard status == 0 else { throw ExternalToolError.failed("python3", output) }
    return output
}

extension StatusReader {
    /// The `tcp://`/`tls://` listener `index` of `/v1/status`.
    public func streamListener(_ index: Int = 0) -> [String: Any] {
        (status()?["stream_listeners"] as? [[String: Any]])?[index] ?? [:]
    }

    /// `counters.dropped_by_reason[reason]`.
    public func dropped(_ reason: String) -> Int {
        (counters()["dropped_by_reason"] as? [String: Int])?[reason] ?? 0
    }
}

/// The whole of a /proc file (its size reads as 0, so Foundation's readers may stop at the first page).
public func readProcFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
public func waitForTCPListener(port: Int, seconds: Double = 10) async -> Bool {
    await eventually(seconds: seconds, every: .milliseconds(50)) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// A free UDP port on 127.0.0.1 (bound and released).
public func freeUDPPort() -> Int {
    guard let socket = try? UDPTestSocket() else { return 0 }
    return socket.port
}
