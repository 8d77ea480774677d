import FerryCore
import FerryTestSupport
import Foundation
import NIOCore
import Testing

/// A receiver with several receive sockets hands every frame of one sender to
/// one of them (one loop, one dedupe window), whatever source port it comes
/// from: a sender that moved to a new port, or restarted and replays its
/// frames, is recognised instead of delivered again by another loop.
struct FrameSteeringTests {
    @Test func oneSendersFrameFromManySourcePortsIsDeliveredOnce() async throws {
        let directory = try scratchDirectory("steering")
        let (receiver, port, http) = try await FerryProcess.serve([
            "--upstream", "file:\(directory)/out.log", "--receive-sockets", "4",
        ])
        defer { receiver.signal(SIGTERM) }
        // 16 frames, each sent from 8 fresh source ports: the kernel's own hash would spread those over the 4 sockets.
        let frames = 16
        for index in 0..<frames {
            var frame = ByteBuffer()
            let header = FrameCodec.DataHeader(
                senderID: 0x5EED_0000_0000_0000 | UInt64(index), sequence: 7, ttlMilliseconds: 60_000,
                sentAtMilliseconds: UInt64(Date().timeIntervalSince1970 * 1000), traceID: TraceID(high: 1, low: UInt64(index)))
            FrameCodec.encodeData(header: header, records: [ByteBuffer(string: "steered-\(index)")][...], into: &frame)
            let bytes = Array(frame.readableBytesView)
            for _ in 0..<8 {
                let socket = try UDPTestSocket()
                socket.send(bytes, to: port)
            }
        }
        let status = StatusReader(port: http)
        let outcomes = { status.counters()["frames_received_by_outcome"] as? [String: Int] ?? [:] }
        #expect(await eventually(seconds: 10) { outcomes().values.reduce(0, +) == frames * 8 }, "\(outcomes())")
        #expect(outcomes()["accepted"] == frames, "\(outcomes())")
        #expect(outcomes()["duplicate"] == frames * 7, "\(outcomes())")
        #expect(await eventually(seconds: 5) { fileLines(directory + "/out.log").count >= frames })
        try await Task.sleep(for: .milliseconds(300))
        let lines = fileLines(directory + "/out.log")
        #expect(lines.count == frames && Set(lines).count == frames, "\(lines.count) lines for \(frames) frames")
    }
}
