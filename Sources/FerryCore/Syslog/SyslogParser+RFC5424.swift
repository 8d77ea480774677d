extension SyslogParser {
    /// The RFC 5424 header after `<PRI>1 ` (§6): TIMESTAMP HOSTNAME APP-NAME
    /// PROCID MSGID STRUCTURED-DATA [MSG], each field non-empty and followed
    /// by one space, `-` for none. Nil when the header is not that shape or
    /// its timestamp is not RFC 3339; the caller then keeps the whole line.
    func parseRFC5424(_ line: UnsafeRawBufferPointer, from start: Int, end: Int) -> SyslogMessage? {
        var message = SyslogMessage(outcome: .rfc5424, message: SyslogField(end, end))
        message.version = 1
        var position = start

        let timestampEnd = Self.wordEnd(line, from: position, end: end)
        guard timestampEnd > position, timestampEnd < end else { return nil }
        if !Self.isNil(line, position, timestampEnd) {
            guard let reading = SyslogTimestamp.rfc3339(line, at: position, end: timestampEnd, zone: timeZone), reading.end == timestampEnd
            else { return nil }
            message.timestamp = reading.nanoseconds
            message.timestampText = SyslogField(position, timestampEnd)
        }
        position = timestampEnd + 1

        var fields = InlineArray<4, SyslogField?>(repeating: nil)
        for index in 0..<4 {
            let fieldEnd = Self.wordEnd(line, from: position, end: end)
            guard fieldEnd > position, fieldEnd < end else { return nil }
            if !Self.isNil(line, position, fieldEnd) { fields[index] = SyslogField(position, fieldEnd) }
            position = fieldEnd + 1
        }
        message.hostname = fields[0]
        message.appName = fields[1]
        message.procID = fields[2]
        message.msgID = fields[3]

        guard position < end else { return nil }
        if line[position] == UInt8(ascii: "-") {
            position += 1
            guard position == end || line[position] == UInt8(ascii: " ") else { return nil }
        } else {
            let sdStart = position
            while position < end, line[position] == UInt8(ascii: "[") {
                guard let (_, next) = StructuredData.element(line, at: position, end: end) else { return nil }
                position = next
            }
            guard position > sdStart else { return nil }
            message.structuredData = SyslogField(sdStart, position)
        }
        if position < end, line[position] == UInt8(ascii: " ") { position += 1 }
        Self.setMessage(&message, line, from: position, end: end)
        return message
    }

    /// The field is RFC 5424's NILVALUE, `-`.
    @inline(__always)
    static func isNil(_ line: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        end == start + 1 && line[start] == UInt8(ascii: "-")
    }
}
