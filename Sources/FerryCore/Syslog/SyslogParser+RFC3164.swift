extension SyslogParser {
    /// An RFC 3164 line after its PRI (§4.1): TIMESTAMP HOSTNAME TAG CONTENT, as
    /// senders really write it.
    ///
    /// - The timestamp is `Mmm dd hh:mm:ss` (with an optional fraction, or a
    ///   year after the day) or ISO 8601 / RFC 3339, optionally followed by `:`
    ///   as Cisco devices write it.
    /// - The hostname is left out by local senders (`logger`, glibc's
    ///   `syslog()` writing to `/dev/log`): a first word that ends in `:` or
    ///   holds a byte a host name cannot (`[`, `/`, …) is the tag instead.
    /// - The tag is `TAG[PID]:`, `TAG:` or `TAG[PID]`; without one, the
    ///   message starts after the hostname.
    ///
    /// A line with a PRI but no timestamp is all message (§4.3.2). Without PRI
    /// and timestamp, nil: nothing shows it is syslog.
    func parseRFC3164(_ line: UnsafeRawBufferPointer, from start: Int, end: Int, priority: UInt8, receivedAt: Int64) -> SyslogMessage? {
        var message = SyslogMessage(outcome: .rfc3164, message: SyslogField(end, end))
        message.priorityValue = priority
        var reading: SyslogTimestamp.Reading?
        if start < end {
            let first = line[start]
            if first &- UInt8(ascii: "0") < 10 {
                reading = SyslogTimestamp.rfc3339(line, at: start, end: Self.wordEnd(line, from: start, end: end), zone: timeZone)
            } else if first | 0x20 &- UInt8(ascii: "a") < 26 {
                reading = SyslogTimestamp.rfc3164(line, at: start, end: end, zone: timeZone, receivedAt: receivedAt)
            }
        }
        guard let reading else {
            guard priority != SyslogMessage.noPriority else { return nil }
            Self.setMessage(&message, line, from: start, end: end)
            return message
        }
        message.timestamp = reading.nanoseconds
        message.timestampText = SyslogField(start, reading.end)
        var position = reading.end
        if position < end, line[position] == UInt8(ascii: ":") { position += 1 }
        position = Self.skipSpaces(line, from: position, end: end)

        let wordEnd = Self.wordEnd(line, from: position, end: end)
        if wordEnd < end, Self.isHostname(line, position, wordEnd) {
            message.hostname = SyslogField(position, wordEnd)
            position = Self.skipSpaces(line, from: wordEnd, end: end)
        }
        position = readTag(line, from: position, end: end, into: &message)
        Self.setMessage(&message, line, from: position, end: end)
        return message
    }

    /// Reads `TAG[PID]:`, `TAG:` or `TAG[PID]` at `start` into app-name and
    /// procid; returns where the message starts (one space after the tag
    /// skipped), or `start` when there is no tag.
    func readTag(_ line: UnsafeRawBufferPointer, from start: Int, end: Int, into message: inout SyslogMessage) -> Int {
        let wordEnd = Self.wordEnd(line, from: start, end: end)
        guard wordEnd > start else { return start }
        var tagEnd = wordEnd
        let colon = line[wordEnd - 1] == UInt8(ascii: ":")
        if colon { tagEnd -= 1 }
        guard tagEnd > start else { return start }
        var bracket = start
        while bracket < tagEnd, line[bracket] != UInt8(ascii: "[") { bracket += 1 }
        if bracket < tagEnd {
            // `TAG[PID]`: one `[` after a name, the `]` last.
            guard bracket > start, line[tagEnd - 1] == UInt8(ascii: "]"), tagEnd - 1 > bracket else { return start }
            for index in bracket + 1..<tagEnd - 1 where line[index] == UInt8(ascii: "[") || line[index] == UInt8(ascii: "]") {
                return start
            }
            message.appName = SyslogField(start, bracket)
            if tagEnd - 1 > bracket + 1 { message.procID = SyslogField(bracket + 1, tagEnd - 1) }
        } else {
            guard colon else { return start }
            for index in start..<tagEnd where line[index] == UInt8(ascii: "]") { return start }
            message.appName = SyslogField(start, tagEnd)
        }
        return wordEnd < end && line[wordEnd] == UInt8(ascii: " ") ? wordEnd + 1 : wordEnd
    }

    /// Letters, digits, `.`, `-`, `_`, and `:` inside (an IPv6 address): a name
    /// or address, not a tag, which ends in `:` or holds `[`.
    @inline(__always)
    static func isHostname(_ line: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        guard end > start, line[end - 1] != UInt8(ascii: ":") else { return false }
        for index in start..<end {
            let byte = line[index]
            let isAlphanumeric = byte | 0x20 &- UInt8(ascii: "a") < 26 || byte &- UInt8(ascii: "0") < 10
            guard isAlphanumeric || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":")
            else { return false }
        }
        return true
    }

    @inline(__always)
    static func skipSpaces(_ line: UnsafeRawBufferPointer, from index: Int, end: Int) -> Int {
        var position = index
        while position < end, line[position] == UInt8(ascii: " ") { position += 1 }
        return position
    }
}
