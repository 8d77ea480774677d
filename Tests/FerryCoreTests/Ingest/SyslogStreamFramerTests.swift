import NIOCore
import Testing

@testable import FerryCore

/// RFC 6587 framing of TCP/TLS streams: the peers' bugs (partial reads,
/// off-by-one lengths, a truncated frame breaking the rest) are what these try.
@Suite struct SyslogStreamFramerTests {
    private func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    /// Feeds `chunks` in turn and collects every event, then the end of stream.
    private func run(_ framing: StreamFraming, max: Int = 100, _ chunks: [String]) -> (events: [String], truncated: Bool) {
        var framer = SyslogStreamFramer(framing: framing, maxMessageBytes: max)
        var events: [String] = []
        for chunk in chunks {
            framer.append(buffer(chunk))
            while let event = framer.next() {
                switch event {
                case .message(let message): events.append(String(buffer: message))
                case .oversize(let length): events.append("oversize:\(length)")
                case .fatal(let error): events.append("fatal:\(error.reason)")
                }
            }
        }
        let (last, truncated) = framer.finish()
        if let last { events.append(String(buffer: last)) }
        return (events, truncated)
    }

    @Test func octetCountingManyPerReadAndSplitAtEveryByte() {
        let stream = "5 hello11 <13>a b  c 3 xyz"
        #expect(run(.octet, [stream]).events == ["hello", "<13>a b  c ", "xyz"])
        // Split after every byte: the same messages, nothing more.
        #expect(run(.octet, stream.map { String($0) }).events == ["hello", "<13>a b  c ", "xyz"])
        #expect(run(.detect, [stream]).events == ["hello", "<13>a b  c ", "xyz"])
    }

    @Test func lfFramingSkipsEmptyLinesAndKeepsAnUnterminatedLastLine() {
        let result = run(.lf, ["<13>one\n\n<13>tw", "o\n<13>three"])
        #expect(result.events == ["<13>one", "<13>two", "<13>three"])
        #expect(!result.truncated)
        #expect(run(.detect, ["<13>x\n"]).events == ["<13>x"])
        // A message with spaces and digits in LF mode is not mistaken for a length.
        #expect(run(.lf, ["12 monkeys\n"]).events == ["12 monkeys"])
    }

    @Test func oversizeMessagesAreSkippedAndTheStreamGoesOn() {
        let long = String(repeating: "x", count: 150)
        #expect(run(.octet, max: 100, ["150 \(long)3 abc"]).events == ["oversize:150", "abc"])
        // Skipped as it streams past, across reads.
        #expect(run(.octet, max: 100, ["150 " + long.prefix(70), String(long.dropFirst(70)) + "2 ok"]).events == ["oversize:150", "ok"])
        #expect(run(.lf, max: 100, [long.prefix(120) + "", long.dropFirst(120) + "\nnext\n"]).events == ["oversize:120", "next"])
        #expect(run(.lf, max: 100, [long + "\nnext\n"]).events == ["oversize:150", "next"])
    }

    @Test func impossibleOrBrokenLengthsEndTheStream() {
        #expect(run(.octet, ["999999999 abc"]).events == ["fatal:impossible_length"])
        #expect(run(.octet, ["12345678901234"]).events == ["fatal:impossible_length"])
        #expect(run(.octet, ["abc def"]).events == ["fatal:bad_length"])
        #expect(run(.octet, ["0 "]).events == ["fatal:bad_length"])
        #expect(run(.octet, ["3 abc<13>oops"]).events == ["abc", "fatal:bad_length"])
        // Nothing is read after a fatal error.
        #expect(run(.octet, ["x", "3 abc"]).events == ["fatal:bad_length"])
    }

    @Test func aFrameCutByTheEndOfTheStreamIsTruncatedNotForwarded() {
        let cut = run(.octet, ["5 hello10 abc"])
        #expect(cut.events == ["hello"])
        #expect(cut.truncated)
        #expect(run(.octet, ["5 hello1"]).truncated)
        #expect(!run(.octet, ["5 hello"]).truncated)
    }

    /// Random bytes in random chunks never crash it, and every message it
    /// returns is within the limit and made of bytes that were sent.
    @Test func randomInputInRandomChunksIsHandled() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let alphabet = Array("0123456789 <>\n\rab".utf8)
            let length = Int.random(in: 0...300, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            var framer = SyslogStreamFramer(framing: .detect, maxMessageBytes: 64)
            var offset = 0
            var total = 0
            while offset < bytes.count {
                let take = min(bytes.count - offset, Int.random(in: 1...40, using: &generator))
                framer.append(ByteBuffer(bytes: bytes[offset..<offset + take]))
                offset += take
                while let event = framer.next() {
                    if case .message(let message) = event {
                        #expect(message.readableBytes <= 64)
                        total += message.readableBytes
                    }
                }
            }
            _ = framer.finish()
            #expect(total <= bytes.count)
        }
    }

    /// Valid octet-counted streams cut at random places give back exactly what was framed.
    @Test func validStreamsSurviveAnyChunking() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let messages = (0..<Int.random(in: 1...20, using: &generator)).map { index in
                "<13>msg \(index) " + String(repeating: "é", count: Int.random(in: 0...30, using: &generator))
            }
            let stream = Array(messages.map { "\($0.utf8.count) \($0)" }.joined().utf8)
            var framer = SyslogStreamFramer(framing: .detect, maxMessageBytes: 1000)
            var got: [String] = []
            var offset = 0
            while offset < stream.count {
                let take = min(stream.count - offset, Int.random(in: 1...17, using: &generator))
                framer.append(ByteBuffer(bytes: stream[offset..<offset + take]))
                offset += take
                while case .message(let message)? = framer.next() { got.append(String(buffer: message)) }
            }
            #expect(got == messages)
            #expect(framer.finish().truncated == false)
        }
    }
}
