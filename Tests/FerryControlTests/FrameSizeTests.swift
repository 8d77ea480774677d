import FerryTestSupport
import Foundation
import Testing

/// `ferry://` frames fill the path MTU of the lane's socket (65,536 on
/// loopback), capped by `forward.frame-max-bytes`: a burst of small logs
/// travels in one frame instead of one per 1,400 bytes, which halved the CPU
/// per log of the two-hop chain flat out.
@Suite(.timeLimit(.minutes(2)))
struct FrameSizeTests {
    /// The "aggregator" is a socket that hears frames and never acknowledges
    /// them, so the test sees each frame the edge sends as it sent it.
    @Test(arguments: [nil, 1_400] as [Int?])
    func framesFillThePathMTUUpToTheConfiguredMaximum(limit: Int?) async throws {
        let aggregator = try UDPTestSocket()
        var options = ["--upstream", "ferry://127.0.0.1:\(aggregator.port)"]
        if let limit { options += ["--frame-max-bytes", String(limit)] }
        let (edge, port, _) = try await FerryProcess.serve(options)
        defer { edge.signal(SIGTERM) }
        let sender = try UDPTestSocket()
        let line = [UInt8]("<14>frame-size ".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 285)
        // Sent in a tight loop: the edge's reads take many at once.
        for _ in 0..<500 { sender.send(line, to: port) }
        let frames = aggregator.receive(count: 64, idleMilliseconds: 1_000, firstMilliseconds: 5_000)
        let largest = frames.map(\.count).max() ?? 0
        #expect(!frames.isEmpty)
        if let limit {
            #expect(largest <= limit, "largest frame \(largest) B over --frame-max-bytes \(limit)")
        } else {
            // Over what a 1,500-byte MTU takes: more logs in a frame than any Ethernet-sized frame holds.
            #expect(largest > 1_472, "largest frame \(largest) B of \(frames.count)")
        }
    }
}
