import CFerrySystem
import Logging
import NIOCore

/// Lets go of the pages of Ferry's executable that only start-up touched, once
/// start-up is over.
///
/// Start-up (argument parsing, configuration, the Swift runtime's first
/// protocol-conformance scans, Hummingbird's set-up) touches code and
/// read-only data all over the binary, and the kernel maps up to 64 KiB
/// around each such fault: an idle Ferry kept 27–31 MiB of clean file pages
/// resident, of which it uses about 7 from then on. Dropping its mappings of
/// them (``cferry_page_out_file_mappings()``: `MADV_DONTNEED` on the read-only
/// file mappings that hold no anonymous page) leaves the pages in the page
/// cache, shared and reclaimable as before, and takes them out of this
/// process's resident set; what the data path uses comes back as minor faults
/// in its first bursts. (`MADV_PAGEOUT` would keep every page a second Ferry
/// from the same binary maps too, the two hops of a chain on one machine.)
package enum StartupPages {
    /// How long after the listeners opened the release waits (the HTTP
    /// server and the first monitor ticks start in that time).
    static let delay: TimeAmount = .seconds(1)

    static func releaseLater(on loop: any EventLoop, logger: Logger) {
        loop.scheduleTask(in: delay) { release(logger: logger) }
    }

    /// Releases the pages now and logs how much of the file-backed resident set went.
    static func release(logger: Logger) {
        let before = residentFileBytes()
        let advised = cferry_page_out_file_mappings()
        let after = residentFileBytes()
        guard advised >= 0 else {
            logger.debug("start-up pages kept", metadata: ["reason": "madvise(MADV_DONTNEED) failed: errno \(-advised)"])
            return
        }
        logger.info(
            "start-up pages released",
            metadata: [
                "process.resident_file_bytes.before": "\(before.map(String.init) ?? "unknown")",
                "process.resident_file_bytes.after": "\(after.map(String.init) ?? "unknown")",
                "mappings.bytes": "\(advised)",
            ])
    }

    /// Releases what loading the configuration touched (argument parsing, the
    /// configuration providers), before the relay and the HTTP server start:
    /// start-up's peak is then the larger of its two halves, not their sum.
    package static func releaseAfterConfiguration() {
        _ = cferry_page_out_file_mappings()
    }

    /// `RssFile` of /proc/self/status in bytes (nil where there is none).
    static func residentFileBytes() -> Int? {
        let bytes = cferry_resident_file_bytes()
        return bytes < 0 ? nil : Int(bytes)
    }
}
