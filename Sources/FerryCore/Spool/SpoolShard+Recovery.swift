import DequeModule
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What a shard's start-up scan found.
package struct SpoolRecovery: Sendable, Equatable {
    /// Logs the spool held undelivered, by sequence (some may turn out damaged when read: dropped `spool_corrupt`).
    package var recovered = 0
    /// Of those, sequences with no good record (damage, a deleted file), found by the scan.
    package var damagedRecords = 0
    /// Bytes skipped because they were not records.
    package var damagedBytes = 0
    /// Bytes cut from the end of the last segment (a write cut short by a crash).
    package var tornBytes = 0
    /// Segments deleted at start because every record in them was delivered (or they were empty).
    package var segmentsRemoved = 0
    /// Files in the shard's directory that are not Ferry's: reported, left alone.
    package var foreignFiles: [String] = []
    /// The progress file could not be read: everything on disk is sent again.
    package var progressLost = false
}

extension SpoolShard {
    static let progressName = "progress-default"

    /// Scans the shard's directory: finds the segments, reads the progress file,
    /// cuts a torn tail, deletes what was delivered, and marks what was not as
    /// spilled, to be sent first. Any byte pattern is survivable: the worst a
    /// damaged file does is lose its own damaged records.
    func recover(progress: inout ProgressFile) -> SpoolRecovery {
        var report = SpoolRecovery()
        var found: [(first: UInt64, name: String)] = []
        for name in Self.directoryEntries(directory) {
            if name == Self.progressName || name == EvictedRuns.fileName || name == EvictedRuns.fileName + ".new" || name == "." || name == ".." {
                continue
            }
            if name.hasPrefix("frames-"), name.hasSuffix(".0") || name.hasSuffix(".1") { continue }  // frame journals (FrameJournal)
            if name == "dedupe.0" || name == "dedupe.1" { continue }  // the receiver's dedupe windows (DedupeJournal)
            if name.hasSuffix(".seg"), name.count == 20, let first = UInt64(name.dropLast(4), radix: 16), first > 0,
                first < SpoolRecordFormat.sequenceLimit
            {
                found.append((first, name))
            } else {
                report.foreignFiles.append(name)
            }
        }
        found.sort { $0.first < $1.first }
        var watermark: UInt64
        switch progress.read() {
        case .watermark(let value) where value < SpoolRecordFormat.sequenceLimit: watermark = value
        case .missing:
            watermark = found.first?.first ?? 1
            report.progressLost = !found.isEmpty
        case .unreadable, .watermark:  // past the sequence limit: damage
            watermark = found.first?.first ?? 1
            report.progressLost = true
        }
        // Segments are deleted oldest first once delivered: one missing below the oldest left was delivered.
        if let oldest = found.first?.first, oldest > watermark { watermark = oldest }

        // Gaps a route's spool left by evicting at its cap were counted then (`route_overflow`): not damage.
        var evictedRuns = EvictedRuns.read(directory: directory)
        evictedRuns.forget(below: watermark)
        var segments: Deque<Segment> = []
        var lastGood: UInt64 = 0
        var expected = watermark
        var spill: Spill?
        let allocator = ByteBufferAllocator()
        // The newest segment that holds anything: only its end can be a write cut short.
        let lastWithRecords = found.lastIndex { entry in
            var status = stat()
            return stat("\(directory)/\(entry.name)", &status) == 0 && Int(status.st_size) > SpoolRecordFormat.segmentHeaderBytes
        }
        for (position, entry) in found.enumerated() {
            let path = "\(directory)/\(entry.name)"
            let descriptor = open(path, O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else {
                report.foreignFiles.append(entry.name)
                continue
            }
            defer { close(descriptor) }
            var status = stat()
            guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
                report.foreignFiles.append(entry.name)
                continue
            }
            let size = Int(status.st_size)
            let isLast = position == lastWithRecords
            var segment = Segment(
                first: entry.first, path: path, bytes: size, end: entry.first, createdAt: Double(status.st_mtim.tv_sec))
            if size > SpoolRecordFormat.segmentHeaderBytes {
                var reader = SegmentReader(
                    descriptor: descriptor, scanner: SpoolRecordScanner(lowestSequence: entry.first, lastSequence: lastGood == 0 ? nil : lastGood))
                let outcome = reader.read(from: SpoolRecordFormat.segmentHeaderBytes, to: size, allocator: allocator) { sequence, _, offset in
                    if sequence >= watermark {
                        if spill == nil { spill = Spill(sequence: watermark, segmentFirst: entry.first, offset: offset) }
                        let gap = max(expected, watermark)..<max(sequence, max(expected, watermark))
                        report.damagedRecords += gap.count - evictedRuns.overlap(gap)
                        expected = sequence + 1
                    }
                    lastGood = sequence
                    segment.end = sequence + 1
                    if offset - (segment.index.last?.offset ?? 0) >= Self.indexStride { segment.index.append((sequence, offset)) }
                    return true
                }
                report.damagedBytes += outcome.damagedBytes
                if let torn = outcome.tornFrom {
                    if isLast {
                        // A write cut short: cut it off so appends and reads never meet it.
                        if ftruncate(descriptor, off_t(torn)) == 0 {
                            report.tornBytes += size - torn
                            segment.bytes = torn
                        }
                    } else {
                        report.damagedBytes += size - torn
                    }
                }
            }
            if segment.end <= watermark || segment.end == entry.first {
                // Delivered, or no record in it can be read (it never held one, or all of it is damaged):
                // kept, it would sit past the next sequence and a new segment could take its name.
                if unlink(path) == 0 { report.segmentsRemoved += 1 }
                continue
            }
            segments.append(segment)
        }
        let next = max(lastGood &+ 1, watermark, 1)
        report.recovered = spill == nil ? 0 : Int(next - watermark)
        let budgetBytes = segments.reduce(0) { $0 + $1.bytes }
        addToBudget(budgetBytes)
        state.withLock { state in
            state.segments = segments
            state.nextSequence = next
            state.ledger = DeliveryLedger(watermark: spill == nil ? next : watermark)
            state.spill = spill
            state.recovered = report.recovered
            state.evicted = evictedRuns
        }
        if spill == nil { _ = progress.write(next) }
        return report
    }

    static func directoryEntries(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            names.append(name)
            if names.count > 100_000 { break }  // bounded: a directory that large is not a spool
        }
        return names
    }
}
