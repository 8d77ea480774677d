import Foundation

/// A real rsyslogd (Debian's `rsyslog`, `rsyslog-gnutls` for TLS) started in
/// the foreground with a configuration a test writes: the syslog peer Ferry
/// must interoperate with. Stopped (SIGKILL) when the value goes away.
///
/// `@unchecked`: Foundation's `Process` is not declared `Sendable`; this class
/// configures and runs it in `init` only, and afterwards only reads its pid
/// and status and signals it, which `Process` allows from any thread.
public final class Rsyslog: @unchecked Sendable {
    public let directory: String
    public let process = Process()

    /// Starts rsyslogd with `body` after a `global(...)` preamble (work
    /// directory, 64 KiB messages, and TLS files when `certificates` is given).
    public init(_ body: String, certificates: TestCertificates? = nil, certificateName: String = "server") throws {
        directory = try scratchDirectory("ferry-rsyslog")
        var global = "workDirectory=\"\(directory)\" maxMessageSize=\"64k\""
        if let certificates {
            global += """
                 defaultNetstreamDriverCAFile="\(certificates.ca)" \
                defaultNetstreamDriverCertFile="\(certificates.certificate(certificateName))" \
                defaultNetstreamDriverKeyFile="\(certificates.key(certificateName))"
                """
        }
        let configuration = "global(\(global))\n" + body + "\n"
        try configuration.write(toFile: "\(directory)/rsyslog.conf", atomically: true, encoding: .utf8)
        guard
            let rsyslogd = ExternalTool.path("rsyslogd")
                ?? ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"].first(where: FileManager.default.isExecutableFile)
        else {
            throw ExternalToolError.missing("rsyslogd")
        }
        process.executableURL = URL(fileURLWithPath: rsyslogd)
        process.arguments = ["-n", "-f", "\(directory)/rsyslog.conf", "-i", "\(directory)/rsyslog.pid"]
        let log =
            FileHandle(forWritingAtPath: "\(directory)/stderr")
            ?? {
                FileManager.default.createFile(atPath: "\(directory)/stderr", contents: nil)
                return FileHandle(forWritingAtPath: "\(directory)/stderr")!
            }()
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    public var errorText: String { (try? String(contentsOfFile: "\(directory)/stderr", encoding: .utf8)) ?? "" }

    public static var isInstalled: Bool {
        ExternalTool.path("rsyslogd") != nil || FileManager.default.isExecutableFile(atPath: "/usr/sbin/rsyslogd")
    }

    /// Whether the rsyslog tests should run: rsyslogd is here, or this is CI (where it must be).
    public static var shouldRun: Bool { isInstalled || ProcessInfo.processInfo.environment["CI"] != nil }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
