import FerryTestSupport
import NIOCore
import Testing

@testable import FerryCore

/// A relay receiving `ferry://` frames on its ordinary UDP port, from a plain socket.
@Suite(.timeLimit(.minutes(1)))
struct FrameReceiverTests {
    @Test func validFramesAreDeliveredOnceAndAcknowledgedEveryTime() async throws {
        let upstream = try UDPTestSocket()
        let (relay, port) = try await TestRelay.start(
            TestRelay.configuration(upstreams: [.udp(HostAndPort(host: "127.0.0.1", port: upstream.port))], sockets: 1))
        let sender = try UDPTestSocket()
        let data = dataFrame(sequence: UInt32.max, records: ["one", "two"])
        sender.send(data, to: port)
        sender.send(data, to: port)  // a retransmission
        sender.send(dataFrame(sequence: 0, records: ["three"]), to: port)  // after wrap-around
        sender.send(Array("plain".utf8), to: port)  // plain datagrams still work on the same port

        let received = upstream.receive(count: 4).map { String(decoding: $0, as: UTF8.self) }
        #expect(received == ["one", "two", "three", "plain"])
        #expect(upstream.receive(timeoutMilliseconds: 300) == nil)  // the duplicate was not delivered

        var acks: [UInt32] = []
        while let datagram = sender.receive(timeoutMilliseconds: 500) {
            acks.append(try FrameCodec.decodeAck(ByteBuffer(bytes: datagram)).sequence)
        }
        #expect(acks.sorted() == [0, UInt32.max, UInt32.max])
        let totals = relay.totals
        #expect(totals.frames[.accepted] == 2)
        #expect(totals.frames[.duplicate] == 1)
        #expect(totals.received[.ferry] == 3)
        await relay.shutdown()
    }

    /// A sender whose frames say it reads batched acks gets a burst's acks in
    /// batches (one datagram for many frames); one whose frames do not (an
    /// older Ferry) gets one ack per frame, as before.
    @Test func batchedAcksOnlyForSendersThatAskAndEveryFrameOnce() async throws {
        let upstream = try UDPTestSocket()
        let (relay, port) = try await TestRelay.start(
            TestRelay.configuration(upstreams: [.udp(HostAndPort(host: "127.0.0.1", port: upstream.port))], sockets: 1))
        let modern = try UDPTestSocket()
        let older = try UDPTestSocket()
        for sequence in 0..<UInt32(40) {
            modern.send(dataFrame(sequence: sequence, records: ["m\(sequence)"], flags: FrameCodec.DataHeader.acceptsBatchedAcks), to: port)
            older.send(dataFrame(sequence: 1_000 + sequence, records: ["o\(sequence)"]), to: port)
        }
        #expect(upstream.receive(count: 80).count == 80)
        var batched: [UInt32] = []
        var datagrams = 0
        while let datagram = modern.receive(timeoutMilliseconds: 500) {
            #expect(datagram[5] == FrameCodec.FrameType.batchedAck.rawValue, "a batched-ack sender got a single ack")
            batched += try FrameCodec.decodeAcks(ByteBuffer(bytes: datagram)).sequences
            datagrams += 1
        }
        #expect(batched.sorted() == Array(0..<40), "\(batched)")
        #expect(datagrams <= 40)
        var single: [UInt32] = []
        while let datagram = older.receive(timeoutMilliseconds: 500) {
            single.append(try FrameCodec.decodeAck(ByteBuffer(bytes: datagram)).sequence)  // type 2: what an older Ferry reads
        }
        #expect(single.sorted() == Array(1_000..<1_040))
        await relay.shutdown()
    }

    @Test func malformedTruncatedAndExpiredFramesNeverReachTheUpstream() async throws {
        let upstream = try UDPTestSocket()
        let (relay, port) = try await TestRelay.start(
            TestRelay.configuration(upstreams: [.udp(HostAndPort(host: "127.0.0.1", port: upstream.port))], sockets: 1))
        let sender = try UDPTestSocket()
        var corrupted = dataFrame(sequence: 1, records: ["secret"])
        corrupted[60] ^= 0x01
        sender.send(corrupted, to: port)
        sender.send(Array(dataFrame(sequence: 2, records: ["cut"]).prefix(30)), to: port)
        sender.send([0xFE, 0x46, 0x52, 0x59], to: port)
        sender.send(dataFrame(sequence: 3, records: ["late"], sentAt: WallClock.milliseconds() - 20_000), to: port)
        sender.send(Array("after".utf8), to: port)

        #expect(upstream.receive().map { String(decoding: $0, as: UTF8.self) } == "after")
        #expect(upstream.receive(timeoutMilliseconds: 300) == nil)
        #expect(sender.receive(timeoutMilliseconds: 300) == nil)  // nothing acknowledged
        let totals = relay.totals
        #expect(totals.dropped[.malformed] == 3)
        #expect(totals.frames[.malformed] == 3)
        #expect(totals.frames[.expired] == 1)
        await relay.shutdown()
    }
}
