import FerryTestSupport
import Foundation
import Logging
import NIOCore
import Testing

@testable import FerryCore

/// The spool on real files: admission, the memory window, read-back, recovery
/// after a restart, damage of every kind, limits and deletion.
struct SpoolTests {
    private let logger = Logger(label: "spool-test")

    private func settings(_ dir: String, maxBytes: Int = 1 << 30, segmentBytes: Int = 64 << 20) -> SpoolSettings {
        SpoolSettings(directory: dir, maxBytes: maxBytes, segmentBytes: segmentBytes, sync: .interval, syncInterval: .milliseconds(50))
    }

    private func records(_ range: ClosedRange<Int>) -> [ByteBuffer] {
        range.map { ByteBuffer(string: "log \($0)") }
    }

    /// Admits `range` to shard 0 as one burst.
    @discardableResult
    private func admit(_ spool: Spool, _ range: ClosedRange<Int>, capacity: BufferCapacity) -> SpoolShard.Admission {
        let batch = records(range)
        return spool.shards[0].admit(batch, bytes: batch.reduce(0) { $0 + $1.readableBytes }, capacity: capacity, allOrNothing: false)
    }

    /// A route's own spool (id 3, under `routes/dead`) capped at 2,000 bytes that evicts its oldest:
    /// each "log N" record takes 16 + 5...7 bytes, and segments roll every ~230 bytes.
    private func deadRouteSpool() throws -> Spool {
        var routeSettings = settings(try scratchDirectory("spool"), maxBytes: 2_000, segmentBytes: 230)
        routeSettings.directory += "/routes/dead"
        return try Spool.open(settings: routeSettings, shardCount: 1, id: 3, evictsOldest: true, logger: logger)
    }

    /// Everything spilled, read back until the spill ends.
    private func readAll(_ spool: Spool, capacity: BufferCapacity) -> (texts: [String], lost: Int) {
        var texts: [String] = []
        var lost = 0
        for _ in 0..<1000 where spool.shards[0].isSpilling {
            let read = spool.shards[0].readSpilled(maxRecords: 64, capacity: capacity, allocator: ByteBufferAllocator())
            texts += read.records.map { String(buffer: $0) }
            lost += read.lost
            capacity.release(count: read.records.count, bytes: read.bytes)
        }
        return (texts, lost)
    }

    @Test func whatWasNotSettledIsSentAgainAfterARestartInOrder() throws {
        let dir = try scratchDirectory("spool")
        let capacity = BufferCapacity(logs: 10_000, bytes: 1 << 20)
        var spool = try Spool.open(settings: settings(dir), shardCount: 1, logger: logger)
        let first = admit(spool, 1...50, capacity: capacity)
        let second = admit(spool, 51...100, capacity: capacity)
        #expect(first.inMemory && second.inMemory && first.run == SpoolRun(first: 1, count: 50))
        // Settled out of order: 51...100 first, then 1...30. The watermark stops at 31.
        spool.settle(SpoolSpans(second.run))
        spool.settle(SpoolSpans(SpoolRun(first: 1, count: 30)))
        spool.close()

        spool = try Spool.open(settings: settings(dir), shardCount: 1, logger: logger)
        #expect(spool.recoveries[0].recovered == 70)  // 31...100: at least once, never lost
        let again = readAll(spool, capacity: BufferCapacity(logs: 10_000, bytes: 1 << 20))
        #expect(again.texts == records(31...100).map { String(buffer: $0) })
        // New logs follow the recovered ones, with later sequence numbers.
        #expect(admit(spool, 101...101, capacity: capacity).run?.first == 101)
        spool.close()
    }

    @Test func aFullMemoryWindowSpillsToDiskAndReadsBackInOrder() throws {
        let dir = try scratchDirectory("spool")
        let capacity = BufferCapacity(logs: 10, bytes: 1 << 20)
        let spool = try Spool.open(settings: settings(dir), shardCount: 1, logger: logger)
        #expect(admit(spool, 1...10, capacity: capacity).inMemory)
        let spilled = admit(spool, 11...20, capacity: capacity)
        #expect(spilled.run != nil && !spilled.inMemory && spool.shards[0].isSpilling)
        capacity.release(count: 10, bytes: capacity.usedBytes)
        // Room again, but the spill comes first: new logs stay on disk behind it.
        #expect(!admit(spool, 21...25, capacity: capacity).inMemory)
        let read = readAll(spool, capacity: capacity)
        #expect(read.texts == records(11...25).map { String(buffer: $0) } && read.lost == 0)
        #expect(!spool.shards[0].isSpilling)
        #expect(admit(spool, 26...26, capacity: capacity).inMemory)
        spool.close()
    }

    @Test func recordsGivenBackToTheDiskAreReadBackFirstAndSurviveARestart() throws {
        let dir = try scratchDirectory("spool")
        let capacity = BufferCapacity(logs: 20, bytes: 1 << 20)
        var spool = try Spool.open(settings: settings(dir), shardCount: 1, logger: logger)
        let held = admit(spool, 1...20, capacity: capacity)
        #expect(held.inMemory)
        // 6...15 leave memory (their route had more than its share): given back, not settled.
        let given = records(6...15)
        capacity.release(count: given.count, bytes: given.reduce(0) { $0 + $1.readableBytes })
        spool.shards[0].release(SpoolRun(first: 11, count: 5))
        spool.shards[0].release(SpoolRun(first: 6, count: 5))
        #expect(spool.shards[0].isSpilling)
        // New logs wait on disk behind them, and the given-back ones come back first, in order.
        #expect(!admit(spool, 21...22, capacity: capacity).inMemory)
        let first = spool.shards[0].readSpilled(maxRecords: 4, capacity: capacity, allocator: ByteBufferAllocator())
        #expect(first.records.map { String(buffer: $0) } == records(6...9).map { String(buffer: $0) } && first.lost == 0)
        #expect(first.spans == SpoolSpans(SpoolRun(first: 6, count: 4)))
        // Only as many as the buffer has room for: 10 of 20 are held, 4 read back, so 6 more.
        let second = spool.shards[0].readSpilled(maxRecords: 100, capacity: capacity, allocator: ByteBufferAllocator())
        #expect(second.records.map { String(buffer: $0) } == records(10...15).map { String(buffer: $0) })
        #expect(capacity.usedLogs == 20 && spool.shards[0].isSpilling)
        // Nothing was settled: a restart sends them all again.
        spool.close()
        spool = try Spool.open(settings: settings(dir), shardCount: 1, logger: logger)
        #expect(spool.recoveries[0].recovered == 22)
        spool.close()
    }

    /// Random give-backs, read-backs and settlements over small segments and a
    /// small buffer: every record is in memory at most once, comes back with
    /// its own payload and sequence, and none is lost, whatever the order.
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func givingBackAndReadingBackInAnyOrderLosesAndDoublesNothing(seed: UInt64) throws {
        let dir = try scratchDirectory("spool")
        let spool = try Spool.open(settings: settings(dir, segmentBytes: 300), shardCount: 1, logger: logger)
        let capacity = BufferCapacity(logs: 120, bytes: 1 << 20)
        var random = FastRandom(seed: seed)
        var inMemory: [UInt64: String] = [:]  // sequence -> payload
        var settled = Set<UInt64>()
        var next = 1
        func take(_ read: SpoolShard.ReadBack) {
            #expect(read.lost == 0)
            var sequences: [UInt64] = []
            for run in read.spans.runs { sequences += (run.first..<run.end).map { $0 } }
            #expect(sequences.count == read.records.count)
            for (sequence, record) in zip(sequences, read.records) {
                #expect(inMemory[sequence] == nil && !settled.contains(sequence), "\(sequence) twice")
                #expect(String(buffer: record) == "log \(sequence)", "\(sequence): \(String(buffer: record))")
                inMemory[sequence] = String(buffer: record)
            }
        }
        for _ in 0..<400 {
            switch random.next() % 4 {
            case 0:  // new logs, in memory or spilled
                let count = Int(random.next() % 20) + 1
                let admission = admit(spool, next...(next + count - 1), capacity: capacity)
                if admission.inMemory, let run = admission.run {
                    for sequence in run.first..<run.end { inMemory[sequence] = "log \(sequence)" }
                }
                next += count
            case 1:  // a run of what is in memory goes back to the disk
                guard let start = inMemory.keys.randomElement(using: &random) else { continue }
                var end = start
                while end - start < random.next() % 30, inMemory[end + 1] != nil { end += 1 }
                for sequence in start...end { inMemory[sequence] = nil }
                let count = Int(end - start + 1)
                capacity.release(count: count, bytes: (start...end).reduce(0) { $0 + "log \($1)".utf8.count })
                spool.shards[0].release(SpoolRun(first: start, count: count))
            case 2:  // read back
                take(spool.shards[0].readSpilled(maxRecords: Int(random.next() % 40) + 1, capacity: capacity, allocator: ByteBufferAllocator()))
            default:  // delivered
                guard let sequence = inMemory.keys.randomElement(using: &random) else { continue }
                inMemory[sequence] = nil
                settled.insert(sequence)
                capacity.release(count: 1, bytes: "log \(sequence)".utf8.count)
                spool.settle(SpoolSpans(SpoolRun(first: sequence, count: 1)))
            }
        }
        // Deliver everything in memory, then read back the rest until nothing waits.
        for _ in 0..<10_000 {
            for (sequence, payload) in inMemory {
                settled.insert(sequence)
                capacity.release(count: 1, bytes: payload.utf8.count)
                spool.settle(SpoolSpans(SpoolRun(first: sequence, count: 1)))
            }
            inMemory.removeAll()
            guard spool.shards[0].isSpilling else { break }
            take(spool.shards[0].readSpilled(maxRecords: 64, capacity: capacity, allocator: ByteBufferAllocator()))
        }
        #expect(settled == Set((1..<next).map { UInt64($0) }), "\(next - 1 - settled.count) of \(next - 1) never came back")
        #expect(capacity.usedLogs == 0)
        spool.close()
    }

    @Test func aGivenBackReadStartsAtTheIndexedRecordBeforeIt() {
        var segment = SpoolShard.Segment(first: 1, path: "", bytes: 0, end: 1, createdAt: 0)
        #expect(segment.readStart(for: 500) == SpoolRecordFormat.segmentHeaderBytes)
        segment.index = [(100, 70_000), (200, 140_000), (300, 210_000)]
        #expect(segment.readStart(for: 99) == SpoolRecordFormat.segmentHeaderBytes)
        #expect(segment.readStart(for: 100) == 70_000)
        #expect(segment.readStart(for: 250) == 140_000)
        #expect(segment.readStart(for: 10_000) == 210_000)
    }

    @Test func givenBackRecordsDeepInALargeSegmentComeBackWhole() throws {
        let dir = try scratchDirectory("spool")
        let spool = try Spool.open(settings: settings(dir, segmentBytes: 8 << 20), shardCount: 1, logger: logger)
        let capacity = BufferCapacity(logs: 200_000, bytes: 1 << 26)
        for start in stride(from: 1, through: 99_901, by: 100) { admit(spool, start...(start + 99), capacity: capacity) }
        let index = spool.shards[0].state.withLock { $0.segments.last?.index.map(\.sequence) ?? [] }
        #expect(index.count > 20, "\(index.count) index entries in one segment of ~2 MB")
        guard index.count > 20 else { return }
        // Runs given back at the head, across an indexed record, from one just before
        // another, from one exactly, and at the tail of the one segment.
        let runs = [
            SpoolRun(first: 3, count: 40), SpoolRun(first: index[5] - 3, count: 7), SpoolRun(first: index[10] - 1, count: 5),
            SpoolRun(first: index[15], count: 777), SpoolRun(first: 99_950, count: 51),
        ]
        for run in runs {
            spool.shards[0].release(run)
            capacity.release(count: run.count, bytes: (run.first..<run.end).reduce(0) { $0 + "log \($1)".utf8.count })
        }
        var texts: [String] = []
        while spool.shards[0].isSpilling {
            let read = spool.shards[0].readSpilled(maxRecords: 300, capacity: capacity, allocator: ByteBufferAllocator())
            #expect(read.lost == 0 && !read.records.isEmpty)
            if read.records.isEmpty { break }
            texts += read.records.map { String(buffer: $0) }
        }
        let wanted = runs.flatMap { run in (run.first..<run.end).map { "log \($0)" } }
        let firstDifference = zip(texts, wanted).first { $0 != $1 }.map { "\($0.0) for \($0.1)" } ?? "none"
        let same = texts == wanted
        #expect(same, "\(texts.count) read of \(wanted.count) given back, first difference \(firstDifference)")
        spool.close()
    }

    @Test func aRouteSpoolPastItsCapEvictsItsSpillAndKeepsWhatWasGivenBack() throws {
        let spool = try deadRouteSpool()
        let capacity = BufferCapacity(logs: 10_000, bytes: 1 << 20)
        let held = spool.shards[0].admit(records(1...10), bytes: 60, capacity: capacity, allOrNothing: false)
        #expect(held.inMemory)
        spool.shards[0].release(SpoolRun(spool: 3, shard: 0, first: 1, count: 10))
        // A run of another spool or shard is not this one's to take.
        spool.shards[0].release(SpoolRun(spool: 4, shard: 0, first: 100, count: 10))
        var evicted = 0
        for start in stride(from: 11, through: 291, by: 10) {
            let batch = records(start...(start + 9))
            let admission = spool.shards[0].admit(
                batch, bytes: batch.reduce(0) { $0 + $1.readableBytes }, capacity: capacity, allOrNothing: false, memory: false)
            #expect(admission.refused == 0)
            evicted += admission.evicted
        }
        // The given-back ten stay (as logs in memory would), the oldest of the spill went, the
        // rest comes back in order, and the books balance.
        let read = readAll(spool, capacity: capacity)
        #expect(read.lost == 0 && evicted > 100)
        let kept = records(1...10).map { String(buffer: $0) }
        #expect(Array(read.texts.prefix(10)) == kept, "\(read.texts.prefix(12))")
        #expect(read.texts.count + evicted == 300, "\(read.texts.count) read + \(evicted) evicted")
        #expect(Array(read.texts.dropFirst(10)) == records((301 - (read.texts.count - 10))...300).map { String(buffer: $0) })
        spool.close()
    }

    @Test func theByteLimitRefusesNewLogsAndDeletionFreesRoom() throws {
        let dir = try scratchDirectory("spool")
        let capacity = BufferCapacity(logs: 1_000_000, bytes: 1 << 30)
        let spool = try Spool.open(settings: settings(dir, maxBytes: 1 << 20, segmentBytes: 64 << 10), shardCount: 1, logger: logger)
        var taken: [SpoolRun] = []
        var refused = 0
        for burst in 0..<10_000 {
            let admission = admit(spool, (burst * 10 + 1)...(burst * 10 + 10), capacity: capacity)
            if let run = admission.run { taken.append(run) }
            refused += admission.refused
            if admission.refusal == .full { break }
        }
        #expect(refused > 0 && spool.bytes <= 1 << 20)
        let segments = try FileManager.default.contentsOfDirectory(atPath: dir + "/shard-0").filter { $0.hasSuffix(".seg") }
        #expect(segments.count > 10)
        for run in taken { spool.settle(SpoolSpans(run)) }
        // Every segment but the one being written is deleted, and its bytes are free again. A round of the
        // spool's own thread may interleave with ours (and delete them itself): rounds go on until they are
        // gone, bounded far above what a loaded machine needs (a few rounds).
        var left: [String] = []
        let deadline = ContinuousClock.now + .seconds(20)
        repeat {
            spool.maintain(sync: true)
            left = try FileManager.default.contentsOfDirectory(atPath: dir + "/shard-0").filter { $0.hasSuffix(".seg") }
            if left.count == 1 && spool.bytes < 64 << 10 { break }
            usleep(20_000)
        } while ContinuousClock.now < deadline
        #expect(left.count == 1 && spool.bytes < 64 << 10)
        #expect(admit(spool, 1...10, capacity: capacity).run != nil)
        spool.close()
    }

    /// Torn tail, flipped bits, a zero-filled stretch, a lost progress file and
    /// a foreign file: the spool opens, counts, and delivers every good record once.
    @Test func aDamagedSpoolOpensSkipsAndCountsAndDeliversTheRest() throws {
        let dir = try scratchDirectory("spool")
        let capacity = BufferCapacity(logs: 100_000, bytes: 1 << 24)
        let (shard, segments) = try spoolOf10000Logs(dir, capacity: capacity)
        #expect(segments.count >= 3)
        // Bits flipped in the first segment, a zeroed stretch in the second, the last torn.
        try mutate(shard + "/" + segments[0]) { bytes in
            for offset in stride(from: 1_000, to: 9_000, by: 1_000) { bytes[offset] ^= 0x5A }
        }
        try mutate(shard + "/" + segments[1]) { bytes in
            for offset in 2_000..<6_000 { bytes[offset] = 0 }
        }
        let lastPath = try segments.map { shard + "/" + $0 }.last {  // the newest with records
            try Data(contentsOf: URL(fileURLWithPath: $0)).count > SpoolRecordFormat.segmentHeaderBytes
        }!
        try mutate(lastPath) { bytes in bytes.append(contentsOf: [0x12, 0x34, 0x56]) }
        try Data("not ours".utf8).write(to: URL(fileURLWithPath: shard + "/notes.txt"))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: shard + "/progress-default"))

        let spool = try Spool.open(settings: settings(dir, segmentBytes: 64 << 10), shardCount: 1, logger: logger)
        let report = spool.recoveries[0]
        #expect(report.progressLost && report.foreignFiles == ["notes.txt"] && report.tornBytes == 3)
        #expect(report.damagedRecords > 0 && report.damagedBytes > 0)
        let read = readAll(spool, capacity: capacity)
        let expected = Set(records(1...10_000).map { String(buffer: $0) })
        #expect(read.texts.count + read.lost == 10_000)
        #expect(read.texts.count >= 9_000)
        #expect(Set(read.texts).count == read.texts.count && Set(read.texts).isSubset(of: expected))  // nothing twice, nothing corrupt
        #expect(read.lost == report.damagedRecords)
        #expect(FileManager.default.fileExists(atPath: shard + "/notes.txt"))  // left alone
        spool.close()
    }

    /// A whole segment zero-filled (a file system that lost its blocks) and
    /// the progress file deleted: the zeros are skipped, counted, and every
    /// other record is delivered (from the oldest on disk: at least once).
    @Test func aZeroFilledSegmentAndAMissingProgressFile() throws {
        let dir = try scratchDirectory("spool")
        let capacity = BufferCapacity(logs: 100_000, bytes: 1 << 24)
        let (shard, segments) = try spoolOf10000Logs(dir, capacity: capacity, settled: 500)
        let zeroed = shard + "/" + segments[1]
        let size = try Data(contentsOf: URL(fileURLWithPath: zeroed)).count
        try Data(count: size).write(to: URL(fileURLWithPath: zeroed))
        try FileManager.default.removeItem(atPath: shard + "/progress-default")

        let spool = try Spool.open(settings: settings(dir, segmentBytes: 64 << 10), shardCount: 1, logger: logger)
        #expect(spool.recoveries[0].progressLost)
        let read = readAll(spool, capacity: capacity)
        #expect(read.lost > 1_000 && read.lost == spool.recoveries[0].damagedRecords)
        #expect(read.texts.count + read.lost == 10_000)  // all of it again (the watermark was lost), the zeros counted
        #expect(Set(read.texts).count == read.texts.count)
        spool.close()
    }

    @Test func aSecondFerryOnTheSameSpoolIsRefused() throws {
        let dir = try scratchDirectory("spool")
        let spool = try Spool.open(settings: settings(dir), shardCount: 1, logger: logger)
        #expect(throws: SpoolError.inUse(path: dir)) { try Spool.open(settings: settings(dir), shardCount: 1, logger: logger) }
        spool.close()
    }

    /// A run with more loops left shards behind: they are scanned and read back too.
    @Test func shardsOfAnEarlierRunWithMoreLoopsAreRecovered() throws {
        let dir = try scratchDirectory("spool")
        let capacity = BufferCapacity(logs: 10_000, bytes: 1 << 20)
        var spool = try Spool.open(settings: settings(dir), shardCount: 3, logger: logger)
        let batch = records(1...5)
        _ = spool.shards[2].admit(batch, bytes: batch.reduce(0) { $0 + $1.readableBytes }, capacity: capacity, allOrNothing: true)
        spool.close()
        spool = try Spool.open(settings: settings(dir), shardCount: 1, logger: logger)
        #expect(spool.shards.count == 3 && spool.recoveries[2].recovered == 5)
        let read = spool.shards[2].readSpilled(maxRecords: 100, capacity: capacity, allocator: ByteBufferAllocator())
        #expect(read.records.map { String(buffer: $0) } == batch.map { String(buffer: $0) })
        spool.close()
    }

    /// A closed spool of logs 1...10,000 in 64 KiB segments (the first `settled` delivered): its shard directory and segment names.
    private func spoolOf10000Logs(_ dir: String, capacity: BufferCapacity, settled: Int = 0) throws -> (String, [String]) {
        let spool = try Spool.open(settings: settings(dir, segmentBytes: 64 << 10), shardCount: 1, logger: logger)
        for burst in 0..<100 { admit(spool, (burst * 100 + 1)...(burst * 100 + 100), capacity: capacity) }
        if settled > 0 { spool.settle(SpoolSpans(SpoolRun(first: 1, count: settled))) }
        spool.close()
        let shard = dir + "/shard-0"
        return (shard, try FileManager.default.contentsOfDirectory(atPath: shard).filter { $0.hasSuffix(".seg") }.sorted())
    }

    private func mutate(_ path: String, _ change: (inout [UInt8]) -> Void) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        change(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func aRouteSpoolPastItsCapDropsItsOldestWaitingOnDiskAndKeepsTheNewest() throws {
        let spool = try deadRouteSpool()
        let capacity = BufferCapacity(logs: 10_000, bytes: 1 << 20)
        var evicted = 0
        var taken = 0
        for start in stride(from: 1, through: 991, by: 10) {
            let batch = records(start...(start + 9))
            let admission = spool.shards[0].admit(
                batch, bytes: batch.reduce(0) { $0 + $1.readableBytes }, capacity: capacity, allOrNothing: false, memory: false)
            #expect(admission.refused == 0 && admission.run?.spool == 3)
            evicted += admission.evicted
            taken += admission.run?.count ?? 0
        }
        // Nothing refused: the oldest went, counted, and the spool stayed within its cap.
        #expect(taken == 1_000 && evicted > 800 && spool.bytes <= 2_000, "evicted \(evicted), bytes \(spool.bytes)")
        let read = readAll(spool, capacity: capacity)
        #expect(read.lost == 0)
        // What is left is the newest, in order, and with the evicted adds up to everything.
        #expect(read.texts == records((1_001 - read.texts.count)...1_000).map { String(buffer: $0) })
        #expect(read.texts.count + evicted == 1_000, "\(read.texts.count) read + \(evicted) evicted")
        spool.close()
    }

    /// The oldest segment still holds logs in memory (in flight to a dead
    /// peer), so its file stays: dropping the logs spilled behind them in it
    /// would free no room. They are kept (read back first) and newer segments
    /// go instead; before, they were dropped and the next segment went too,
    /// so the route held up to a segment fewer than its cap had room for.
    @Test func aRouteSpoolAtItsCapKeepsTheSpilledLogsOfASegmentItCannotDelete() throws {
        let spool = try deadRouteSpool()
        let capacity = BufferCapacity(logs: 10_000, bytes: 1 << 20)
        let inMemory = records(1...3)
        let held = spool.shards[0].admit(
            inMemory, bytes: inMemory.reduce(0) { $0 + $1.readableBytes }, capacity: capacity, allOrNothing: false, memory: true)
        #expect(held.inMemory && held.run?.count == 3)
        var evicted = 0
        for start in stride(from: 4, through: 994, by: 10) {
            let batch = records(start...(start + 9))
            let admission = spool.shards[0].admit(
                batch, bytes: batch.reduce(0) { $0 + $1.readableBytes }, capacity: capacity, allOrNothing: false, memory: false)
            evicted += admission.evicted
        }
        #expect(evicted > 800 && spool.bytes <= 2_000, "evicted \(evicted), bytes \(spool.bytes)")
        let read = readAll(spool, capacity: capacity)
        #expect(read.lost == 0)
        // The spilled logs of the first segment (4, 5, ...) are there, then the newest; nothing twice.
        #expect(read.texts.prefix(2) == ["log 4", "log 5"], "\(read.texts.prefix(5))")
        #expect(Set(read.texts).count == read.texts.count)
        #expect(read.texts.count + evicted == 1_000, "\(read.texts.count) read + \(evicted) evicted")
        #expect(read.texts.suffix(1) == ["log 1003"])
        spool.close()
    }

    /// Segments a route spool evicted (counted `route_overflow` then) are no
    /// damage after a restart: recovery neither reports their gap as damaged
    /// records nor does the read-back count it lost (`spool_corrupt`) again.
    @Test func anEvictionGapIsNotCountedAgainAfterARestart() throws {
        let dir = try scratchDirectory("spool")
        var routeSettings = settings(dir, maxBytes: 2_000, segmentBytes: 230)
        routeSettings.directory += "/routes/dead"
        var spool = try Spool.open(settings: routeSettings, shardCount: 1, id: 3, evictsOldest: true, logger: logger)
        let capacity = BufferCapacity(logs: 10_000, bytes: 1 << 20)
        let inMemory = records(1...3)
        _ = spool.shards[0].admit(inMemory, bytes: inMemory.reduce(0) { $0 + $1.readableBytes }, capacity: capacity, allOrNothing: false)
        var evicted = 0
        for start in stride(from: 4, through: 394, by: 10) {
            let batch = records(start...(start + 9))
            evicted +=
                spool.shards[0].admit(
                    batch, bytes: batch.reduce(0) { $0 + $1.readableBytes }, capacity: capacity, allOrNothing: false, memory: false
                ).evicted
        }
        #expect(evicted > 200)
        spool.close()  // 1...3 still unsettled (in flight to a dead peer): the watermark stays below the evicted segments
        spool = try Spool.open(settings: routeSettings, shardCount: 1, id: 3, evictsOldest: true, logger: logger)
        #expect(spool.recoveries[0].damagedRecords == 0, "\(spool.recoveries[0])")
        let read = readAll(spool, capacity: capacity)
        #expect(read.lost == 0, "the evicted were counted lost again: \(read.lost) (evicted \(evicted))")
        #expect(read.texts.count + evicted == 403, "\(read.texts.count) read + \(evicted) evicted")
        #expect(read.texts.prefix(3) == ["log 1", "log 2", "log 3"])
        spool.close()
    }

    @Test func aRegistryKeepsEachRoutesSpoolApartAndSettlesEachRunInItsOwn() throws {
        let dir = try scratchDirectory("spool")
        let routes = [
            RouteSettings(name: "archive", upstreams: [UpstreamURL(parsing: "file:/tmp/a")!]),
            RouteSettings(name: "siem", upstreams: [UpstreamURL(parsing: "file:/tmp/b")!]),
        ]
        var registry = try SpoolRegistry.open(settings: settings(dir), routes: routes, shardCount: 1, logger: logger)
        let capacity = BufferCapacity(logs: 10_000, bytes: 1 << 20)
        let archive = try #require(registry.spool(forRoute: "archive"))
        let siem = try #require(registry.spool(forRoute: "siem"))
        #expect(archive.settings.directory == dir + "/routes/archive" && siem.id != archive.id)
        let batch = records(1...20)
        let bytes = batch.reduce(0) { $0 + $1.readableBytes }
        let inArchive = try #require(archive.shards[0].admit(batch, bytes: bytes, capacity: capacity, allOrNothing: false).run)
        let inSiem = try #require(siem.shards[0].admit(batch, bytes: bytes, capacity: capacity, allOrNothing: false).run)
        // The archive delivered everything, the siem nothing: one settlement call, each run to its own spool.
        var spans = SpoolSpans(inArchive)
        spans.append(SpoolRun(spool: inSiem.spool, shard: 0, first: 1, count: 0))
        registry.settle(spans)
        #expect(archive.snapshot.logs == 0 && siem.snapshot.logs == 20)
        #expect(registry.snapshot.logs == 20 && registry.snapshot.routes?.map(\.route) == ["archive", "siem"])
        registry.close()
        // After a restart, each route resumes at its own position: the siem has its 20 again, the archive none.
        registry = try SpoolRegistry.open(settings: settings(dir), routes: routes, shardCount: 1, logger: logger)
        let recovered = registry.spools.map { ($0.route, $0.spool.recoveries[0].recovered) }
        #expect(recovered.map(\.0) == ["archive", "siem"] && recovered.map(\.1) == [0, 20])
        // A route of the configuration in force (or of the one a reload is applying) is pinned:
        // its spool is not removed, so a reload that brings a route back never loses its spool to
        // the retirement of the earlier removal.
        #expect(!registry.remove(route: "siem"))
        #expect(registry.spool(forRoute: "siem")?.snapshot.logs == 20)
        registry.pin(["archive"])
        #expect(registry.remove(route: "siem"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/routes/siem") && registry.spool(forRoute: "siem") == nil)
        registry.close()
    }
}
