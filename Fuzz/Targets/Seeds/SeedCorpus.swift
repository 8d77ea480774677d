import FuzzSupport
import NIOCore

@testable import FerryCore

#if canImport(Glibc)
    import Glibc
#endif

/// Writes the seed corpora (`Fuzz/Corpus/<Target>/`): valid inputs of each
/// target, made with Ferry's own encoders, from which the fuzzers mutate.
/// `Fuzz/run.sh seeds` runs it; the output is committed.
@main
enum SeedCorpus {
    static func main() {
        let root = CommandLine.arguments.dropFirst().first ?? "Fuzz/Corpus"
        var seeds: [String: [(String, [UInt8])]] = [:]
        seeds["Frame"] = frames()
        seeds["Ack"] = acks()
        seeds["SpoolScanner"] = spoolRecords(rawMode: 1)
        seeds["SegmentReader"] = spoolRecords(rawMode: 1).map { ($0.0, [$0.1[0], 0x3F, 0x02] + $0.1.dropFirst()) }
        seeds["SpoolRecovery"] = spoolDirectories()
        seeds["ProgressFile"] = progressFiles()
        seeds["FrameJournal"] = journals()
        seeds["StreamFramer"] = streams()
        seeds["SyslogPriority"] = [
            "<34>1 2026-12-07T10:00:00Z host app - - - hi", "<0>", "<191>x", "<192>", "<13>Oct 11 22:14:15 host su: x", "<01>", "<1a>",
        ]
        .enumerated().map { ("pri-\($0.offset)", [0] + Array($0.element.utf8)) }
        seeds["LineSplitter"] = [("lines", [0] + Array("<14>one\n<14>two\r\n\n\r\nthree".utf8)), ("offset", [3] + Array("a\nb\n".utf8))]
        seeds["SyslogParser"] = syslogLines()
        seeds["Configuration"] = configurations()
        seeds["KeyFile"] = keyFiles()
        seeds["AdminToken"] = [
            ("token", [0, 66, 8] + Array("0123456789abcdef0123456789abcdef0\n".utf8) + Array("Bearer 0123456789abcdef0123456789abcdef0".utf8))
        ]
        seeds["EvictedRuns"] = evictedRuns()
        seeds["DedupeJournal"] = dedupeJournals()
        for (target, files) in seeds {
            let directory = root + "/" + target
            ScratchDirectory.remove(directory)
            _ = mkdir(directory, 0o755)
            for (name, bytes) in files { ScratchDirectory.write(bytes, to: directory + "/" + name, mode: 0o644) }
            print("\(target): \(files.count) seeds")
        }
    }

    static func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

    /// Syslog lines in the shapes senders write (RFC 5424 and 3164 examples, `logger`, devices, broken ones),
    /// after the target's three choice bytes (offset, receive time, time zone).
    static func syslogLines() -> [(String, [UInt8])] {
        let lines: [[UInt8]] = [
            Array(#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" "#.utf8)
                + Array(#"eventSource="App\"lic\]ation"][examplePriority@32473 class="high"] "#.utf8) + [0xEF, 0xBB, 0xBF]
                + Array("An application event log entry".utf8),
            Array("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.\n".utf8),
            Array("<13>1 - vm app - - - no time".utf8),
            Array("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8".utf8),
            Array("<13>Dec 31 23:59:59 myapp[123]: hello".utf8) + [0, 0],
            Array("<189>Jan  1 2027 00:00:01.123: %SYS-5-CONFIG_I: Configured".utf8),
            Array("<30>2026-12-07T18:42:41.123456+01:00 web-01 nginx[812]: GET /".utf8),
            Array("Feb 29 16:48:11 2001:db8::1 auditd[38707]: bad ".utf8) + [0xFF, 0xC3, 0xE2, 0x82],
            Array("<189>date=2026-12-07 time=18:42:41 devname=\"FG\"".utf8),
        ]
        return lines.enumerated().map { ("line-\($0.offset)", [UInt8($0.offset), UInt8($0.offset), UInt8($0.offset)] + $0.element) }
    }

    /// An evicted-runs file (raw) and a few runs to build (see the target's layout).
    static func evictedRuns() -> [(String, [UInt8])] {
        var runs = EvictedRuns()
        runs.add(1..<65)
        runs.add(100..<300)
        return [("file", [1] + bytes(runs.encode())), ("built", [0, 0, 0, 0, 0, 0, 0, 0, 9, 4, 20, 30, 10, 50, 39, 1, 200, 99, 7])]
    }

    /// A saved dedupe table (raw) and frames to mark (see the target's layout).
    static func dedupeJournals() -> [(String, [UInt8])] {
        var table = SenderWindows(capacity: 8)
        for sequence in UInt32(1)...40 where sequence % 3 != 0 { table.mark(sender: 0xA00, sequence: sequence, sentAt: 1_000, now: 2_000) }
        table.mark(sender: 0xB00, sequence: 7, sentAt: 3_000, now: 4_000)
        return [
            ("file", [1] + bytes(DedupeJournal.encode(table, generation: 3))),
            ("built", [0, 3, 1, 0, 5, 0, 9, 2, 0, 6, 1, 4, 1, 0, 6, 2, 9, 2, 4, 0, 200, 2, 5]),
        ]
    }

    static func frames() -> [(String, [UInt8])] {
        let header = FrameCodec.DataHeader(
            senderID: 0x1234_5678_9ABC_DE00, sequence: 42, ttlMilliseconds: 10_000, sentAtMilliseconds: 1_765_000_000_000,
            traceID: TraceID(high: 1, low: 2), flags: FrameCodec.DataHeader.acceptsBatchedAcks)
        let logs = ["<14>1 2026-12-07T10:00:00.000Z web-01 app 4242 ID47 - hello", "", "second"].map { ByteBuffer(string: $0) }
        var result: [(String, [UInt8])] = []
        for (name, count) in [("empty", 0), ("one", 1), ("three", 3)] {
            var plain = ByteBuffer()
            FrameCodec.encodeData(header: header, records: logs.prefix(count), into: &plain)
            result.append(("\(name)-unkeyed", [0x00] + bytes(plain)))
            var keyed = ByteBuffer()
            FrameCodec.encodeData(header: header, records: logs.prefix(count), into: &keyed, key: count == 3 ? FuzzKeys.second : FuzzKeys.first)
            result.append(("\(name)-keyed", [0x01] + bytes(keyed)))
        }
        var traced = header
        traced.flags |= FrameCodec.DataHeader.traced
        var buffer = ByteBuffer()
        FrameCodec.encodeData(header: traced, records: logs[...], into: &buffer)
        result.append(("traced-sealed-offset", [0x32] + bytes(buffer)))
        return result
    }

    static func acks() -> [(String, [UInt8])] {
        let ack = FrameCodec.Ack(senderID: 0x1234_5678_9ABC_DE00, sequence: 42, traceID: TraceID(high: 3, low: 4))
        var result: [(String, [UInt8])] = []
        for keyed in [false, true] {
            let key = keyed ? FuzzKeys.first : nil
            let mode: UInt8 = keyed ? 1 : 0
            var single = ByteBuffer()
            FrameCodec.encodeAck(ack, into: &single, key: key)
            result.append(("ack-\(keyed)", [mode] + bytes(single)))
            for count in [1, 3, 256] {
                var batched = ByteBuffer()
                FrameCodec.encodeBatchedAck(senderID: ack.senderID, sequences: Array(1...UInt32(count))[...], into: &batched, key: key)
                result.append(("batched-\(count)-\(keyed)", [mode] + bytes(batched)))
            }
        }
        return result
    }

    /// Descriptions of records for ``SpoolBytes`` (mode 0), and one real segment's bytes (raw mode).
    static func spoolRecords(rawMode: UInt8) -> [(String, [UInt8])] {
        let clean: [UInt8] = [0x00, 0x08] + [0x01, 5] + Array("log 1".utf8) + [0x01, 5] + Array("log 2".utf8) + [0x03, 0]
        let damaged: [UInt8] =
            [0x00, 0x10] + [0x01, 5] + Array("log 1".utf8) + [0x21, 5] + Array("log 2".utf8) + [3] + [0x81, 4, 7] + Array("log 3".utf8)
        let torn: [UInt8] = [0x02, 0x20, 0x05] + [0x01, 3] + Array("abc".utf8) + [0x41, 9] + Array("cut short".utf8) + [12]
        var segment = ByteBuffer()
        for sequence in 1...4 {
            SpoolRecordFormat.encodeRecord(sequence: UInt64(sequence), payload: ByteBuffer(string: "log \(sequence)"), into: &segment)
        }
        return [("clean", clean), ("damaged", damaged), ("torn", torn), ("raw", [rawMode, 0x40] + bytes(segment))]
    }

    static func spoolDirectories() -> [(String, [UInt8])] {
        func file(_ kind: UInt8, _ body: [UInt8]) -> [UInt8] { [kind, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body }
        let records: [UInt8] = [0x00, 5] + Array("log 1".utf8) + [0x01, 5] + Array("log 2".utf8) + [0x01, 5] + Array("log 3".utf8)
        let segment = file(0, [0] + records)
        let second = file(0, [3] + [0x00, 5] + Array("log 4".utf8) + [0x01, 5] + Array("log 5".utf8))
        let progress = file(2, [1, 2])
        let journal = file(3, [1, 7, 9, 0, 100, 1, 2, 2, 2])
        let foreign = file(4, [5] + Array("notes".utf8) + Array("not ours".utf8))
        let fifo = file(5, [0, 1])
        let shard1 = file(0x80, [0] + records)
        return [
            ("one-segment", segment), ("two-segments-progress", segment + second + progress), ("journal", segment + journal),
            ("foreign-fifo", segment + foreign + fifo), ("two-shards", segment + shard1),
        ]
    }

    static func progressFiles() -> [(String, [UInt8])] {
        let path = ScratchDirectory.path + "/progress-seed"
        var progress = ProgressFile(path: path)
        _ = progress.write(100)
        _ = progress.write(250)
        progress.close()
        return [("built", [0x00, 3, 100, 4, 250, 7, 9]), ("raw", [0x01] + ScratchDirectory.read(path))]
    }

    static func journals() -> [(String, [UInt8])] {
        let runs = [SpoolRun(first: 10, count: 5), SpoolRun(first: 20, count: 1)]
        let entries = [
            FrameJournal.Identity(sender: 0x1234_5678_9ABC_DE00, sequence: 7): FrameJournal.Entry(
                sentAtMilliseconds: 1_765_000_000_000, ttlMilliseconds: 10_000, runs: runs),
            FrameJournal.Identity(sender: 0x1234_5678_9ABC_DE00, sequence: 8): FrameJournal.Entry(
                sentAtMilliseconds: 1_765_000_000_100, ttlMilliseconds: 10_000, runs: [SpoolRun(first: 21, count: 3)]),
        ]
        let raw = bytes(FrameJournal.encode(generation: 5, entries: entries))
        let built: [UInt8] = [0x00, 9, 5, 2, 7, 1, 0, 10, 1, 10, 5, 4, 2, 0, 10, 1, 3, 2]
        return [("raw", [0x01, 0, 0] + raw), ("built", built), ("built-v1", [0x04] + built.dropFirst())]
    }

    static func streams() -> [(String, [UInt8])] {
        let octets = Array("33 <14>1 2026-12-07T10:00:00Z h a -5 hello7 <13>x y".utf8)
        let lines = Array("<14>one\n\n<14>two\r\n<14>unterminated".utf8)
        return [
            ("octet", [0x01 | 4 << 2, 0] + octets), ("octet-split", [0x01 | 5 << 2, 3, 1, 7, 30] + octets),
            ("lf", [0x02 | 3 << 2, 0] + lines), ("detect-small", [0x00 | 2 << 2, 2, 2, 5] + lines),
            ("oversize", [0x01 | 3 << 2, 1, 4] + Array("20 01234567890123456789".utf8)),
        ]
    }

    static func configurations() -> [(String, [UInt8])] {
        let yaml = """
            instance: edge
            listen: "127.0.0.1:5514"
            http:
              address: "127.0.0.1:9514"
            upstreams:
              - udp://127.0.0.1:9001
              - file:/tmp/fuzz-fallback.log
            queue:
              capacity-logs: 100000
              capacity-bytes: 32MiB
            forward:
              ack-timeout: 500ms
            routes:
              archive:
                upstreams: [ "file:/tmp/fuzz-archive.log" ]
                match: { severity: warning }
            """
        let json = """
            {"listen": "127.0.0.1:5514", "upstreams": ["udp://127.0.0.1:9001"], "queue": {"capacity-logs": 1000},
             "breaker": {"failure-rate": 0.5, "open-duration": "1s"}, "http": {"max-body-bytes": "1MiB"}}
            """
        return [
            ("yaml", [0] + Array(yaml.utf8)), ("json", [1] + Array(json.utf8)),
            ("json-duplicate", [1] + Array(#"{"listen": "127.0.0.1:1", "queue": {"capacity-logs": 1, "capacity-logs": 2}}"#.utf8)),
        ]
    }

    static func keyFiles() -> [(String, [UInt8])] {
        let first = String(repeating: "0123456789abcdef", count: 4)
        let second = String(repeating: "FEDCBA9876543210", count: 5)
        return [
            ("raw", [0x00] + Array("# keys\n\(first)\n\n  \(second)\r\n".utf8)),
            ("built", [0x01] + [0x00] + (0..<32).map { UInt8($0 * 5) } + [0x02, 3] + Array("abc".utf8) + [0x41] + (0..<32).map { UInt8($0 + 9) }),
        ]
    }
}

/// Never called: libFuzzer's runtime, linked into every fuzz build, needs the symbol.
@_cdecl("LLVMFuzzerTestOneInput")
public func unusedTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { 0 }
