import FerryTestSupport
import Foundation
import Testing

/// Start-up touches code and read-only data all over Ferry's executable; once
/// it is over Ferry hands those clean pages back to the page cache
/// (`MADV_PAGEOUT`), so its resident set shows what the data path uses. A real
/// `ferry serve`, read from its log and /proc.
@Suite(.timeLimit(.minutes(1)))
struct StartupPagesTests {
    private func residentFileKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/status"), encoding: .utf8) else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("RssFile:") }
        return line?.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    @Test func pagesOnlyStartUpTouchedLeaveTheResidentSet() async throws {
        // Its binary's pages are mapped by the other tests' Ferrys too: they go from this process's resident set all the same.
        let (ferry, port, _) = try await FerryProcess.serve(["--upstream", "udp://127.0.0.1:9"])
        defer { ferry.signal(SIGTERM) }
        let pid = ferry.process.processIdentifier
        var released: [String: Any]?
        _ = await eventually(seconds: 15) {
            released = ferry.logLines.first { $0["message"] as? String == "start-up pages released" }
            return released != nil
        }
        let line = try #require(released, "no 'start-up pages released' line")
        let before = try #require(Int(line["process.resident_file_bytes.before"] as? String ?? ""))
        let after = try #require(Int(line["process.resident_file_bytes.after"] as? String ?? ""))
        #expect(after < before / 2, "resident file bytes \(before) -> \(after)")
        // Still relaying: what the data path needs comes back from the page cache, and stays far below start-up's.
        try await PacedSender.send(prefix: "p", count: 2_000, rate: 20_000, to: port)
        let now = try #require(residentFileKiB(pid))
        #expect(now * 1024 < before * 3 / 4, "RssFile \(before / 1024) KiB at start, \(now) KiB after release and traffic")
    }
}
