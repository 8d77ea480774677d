@testable import FerryCore

/// RFC 6587 framing as the framer documents it, written plainly over the
/// whole stream: the reference the fuzz target compares the framer with.
enum Reference {
    static func frame(_ stream: [UInt8], framing: StreamFraming, limit: Int) -> Framed {
        guard let first = stream.first else { return Framed() }
        switch framing {
        case .lf: return lines(stream, limit: limit)
        case .octet: return octets(stream, limit: limit)
        case .detect: return (0x30...0x39).contains(first) ? octets(stream, limit: limit) : lines(stream, limit: limit)
        }
    }

    /// One message per LF-ended line; empty lines skipped; a longer line than the limit is oversize; the unended last line counts.
    private static func lines(_ stream: [UInt8], limit: Int) -> Framed {
        var framed = Framed()
        let parts = stream.split(separator: 0x0A, omittingEmptySubsequences: false)
        for (index, line) in parts.enumerated() {
            let isLast = index == parts.count - 1
            if line.isEmpty { continue }
            if line.count > limit {
                framed.oversize.append(line.count)
            } else if isLast {
                framed.last = Array(line)
            } else {
                framed.messages.append(Array(line))
            }
        }
        return framed
    }

    /// `MSG-LEN SP MSG`: a non-zero digit and up to nine more.
    private static func octets(_ stream: [UInt8], limit: Int) -> Framed {
        var framed = Framed()
        var position = 0
        let impossible = max(1 << 20, limit)
        while position < stream.count {
            var length = 0
            var digits = 0
            var header: Int?
            scan: while position + digits < stream.count {
                let byte = stream[position + digits]
                if byte == 0x20 {
                    if digits == 0 {
                        framed.fatal = .badLength
                        return framed
                    }
                    if length > impossible {
                        framed.fatal = .impossibleLength(length)
                        return framed
                    }
                    header = digits + 1
                    break scan
                }
                if !(0x30...0x39).contains(byte) || (digits == 0 && byte == 0x30) {
                    framed.fatal = .badLength
                    return framed
                }
                if digits == 10 {
                    framed.fatal = .impossibleLength(length)
                    return framed
                }
                digits += 1
                length = length * 10 + Int(byte - 0x30)
            }
            guard let header else {
                framed.truncated = true
                return framed
            }
            position += header
            if length > limit {
                framed.oversize.append(length)
                position += length
                continue
            }
            guard stream.count - position >= length else {
                framed.truncated = true
                return framed
            }
            framed.messages.append(Array(stream[position..<(position + length)]))
            position += length
        }
        return framed
    }
}
