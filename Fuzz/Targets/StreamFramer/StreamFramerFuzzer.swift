import FuzzSupport
import NIOCore

@testable import FerryCore

/// The TCP/TLS syslog stream framer (``SyslogStreamFramer``): octet counting,
/// LF and detect, with a small or large message limit.
///
/// First byte: framing and limit; second: how many split sizes follow; then
/// the split sizes and the stream. The stream is fed whole, one byte at a
/// time, and in pieces of the chosen sizes, as a connection reads it. Checks:
/// fed whole, the events are exactly those of an independent reading of RFC
/// 6587 (messages, oversize lengths, the fatal error, what the end leaves);
/// fed in pieces, the messages concatenated are the same bytes, with as many
/// oversize events, the same fatal error and the same end.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamFramer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let choice = input.byte()
    let framing = [StreamFraming.detect, .octet, .lf][Int(choice % 3)]
    let limit = [1, 2, 5, 16, 100, 2048][Int(choice >> 2) % 6]
    let sizes = input.take(Int(input.byte() % 8)).map { Int($0) + 1 }
    let stream = input.rest()

    let expected = Reference.frame(stream, framing: framing, limit: limit)
    let whole = feed([stream], framing: framing, limit: limit)
    invariant(whole == expected, "fed whole: \(whole) expected \(expected)")
    let byByte = feed(stream.map { [$0] }, framing: framing, limit: limit)
    invariant(byByte.sameMessages(as: expected), "fed a byte at a time: \(byByte) expected \(expected)")
    if !sizes.isEmpty {
        var pieces: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let count = min(sizes[pieces.count % sizes.count], stream.count - offset)
            pieces.append(Array(stream[offset..<(offset + count)]))
            offset += count
        }
        let split = feed(pieces, framing: framing, limit: limit)
        invariant(split.sameMessages(as: expected), "fed in pieces of \(sizes): \(split) expected \(expected)")
    }
    return 0
}

/// What a framer made of a stream.
struct Framed: Equatable, CustomStringConvertible {
    var messages: [[UInt8]] = []
    var oversize: [Int] = []
    var fatal: StreamFramingError?
    var last: [UInt8]?
    var truncated = false

    /// Equal but for oversize lengths (a line skipped while it streams in is reported at the length seen).
    func sameMessages(as other: Framed) -> Bool {
        messages == other.messages && oversize.count == other.oversize.count && fatal == other.fatal && last == other.last
            && truncated == other.truncated
    }

    var description: String {
        "messages \(messages.map(\.count)) oversize \(oversize) fatal \(String(describing: fatal)) last \(last?.count ?? -1) truncated \(truncated)"
    }
}

/// Feeds `pieces` to a framer as a connection does: append, take every event, finish at the end.
private func feed(_ pieces: [[UInt8]], framing: StreamFraming, limit: Int) -> Framed {
    var framer = SyslogStreamFramer(framing: framing, maxMessageBytes: limit)
    var framed = Framed()
    for piece in pieces {
        framer.append(ByteBuffer(bytes: piece))
        var events = 0
        while let event = framer.next() {
            events += 1
            invariant(events <= piece.count + 1, "next() yields more events than bytes appended")
            switch event {
            case .message(let message):
                invariant(message.readableBytes > 0 && message.readableBytes <= limit, "a message of \(message.readableBytes) bytes")
                framed.messages.append(Array(message.readableBytesView))
            case .oversize(let length):
                invariant(length > limit, "oversize(\(length)) within the limit \(limit)")
                framed.oversize.append(length)
            case .fatal(let error):
                framed.fatal = error
                return framed
            }
        }
        invariant(framer.bufferedBytes <= limit + 11, "holds \(framer.bufferedBytes) bytes: more than one message and its header")
    }
    let end = framer.finish()
    framed.last = end.message.map { Array($0.readableBytesView) }
    framed.truncated = end.truncated
    return framed
}

@main
enum StreamFramerFuzzer {
    static func main() { FuzzDriver.run(fuzzStreamFramer) }
}
