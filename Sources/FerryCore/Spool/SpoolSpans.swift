/// A run of consecutive spool sequence numbers of one shard: `count` records from `first`.
package struct SpoolRun: Sendable, Equatable, CustomStringConvertible {
    /// Which spool the shard belongs to (``SpoolRegistry``): 0 with one route; with
    /// `routes` and a spool, each route's own.
    package var spool: Int
    package var shard: Int
    package var first: UInt64
    package var count: Int

    package init(spool: Int = 0, shard: Int = 0, first: UInt64, count: Int) {
        self.spool = spool
        self.shard = shard
        self.first = first
        self.count = count
    }

    /// One past the last sequence of the run.
    package var end: UInt64 { first + UInt64(count) }

    package var description: String { spool == 0 ? "\(shard):\(first)..<\(end)" : "\(spool)/\(shard):\(first)..<\(end)" }
}

/// Where the records of a batch sit in the spool, in record order: the
/// identity a lane hands back when it settles them, so the spool knows which
/// records are delivered whatever order settlements come in.
///
/// Empty when Ferry runs without a spool (no allocation then). A burst is one
/// run; batches merged from several bursts keep one run per burst, merged
/// where they are consecutive.
package struct SpoolSpans: Sendable, Equatable {
    package private(set) var runs: [SpoolRun] = []

    package init() {}

    package init(_ run: SpoolRun?) {
        if let run, run.count > 0 { runs = [run] }
    }

    package var isEmpty: Bool { runs.isEmpty }

    /// Records covered.
    package var count: Int { runs.reduce(0) { $0 + $1.count } }

    package mutating func append(_ run: SpoolRun) {
        guard run.count > 0 else { return }
        if let last = runs.last, last.shard == run.shard, last.spool == run.spool, last.end == run.first {
            runs[runs.count - 1].count += run.count
        } else {
            runs.append(run)
        }
    }

    package mutating func append(contentsOf other: SpoolSpans) {
        for run in other.runs { append(run) }
    }

    /// The spans of the first `count` records.
    package func prefix(_ count: Int) -> SpoolSpans {
        var result = SpoolSpans()
        var left = count
        for run in runs where left > 0 {
            result.append(SpoolRun(spool: run.spool, shard: run.shard, first: run.first, count: min(left, run.count)))
            left -= min(left, run.count)
        }
        return result
    }

    /// The spans of the records after the first `count`.
    package func dropFirst(_ count: Int) -> SpoolSpans {
        var result = SpoolSpans()
        var skip = count
        for run in runs {
            if skip >= run.count {
                skip -= run.count
                continue
            }
            result.append(SpoolRun(spool: run.spool, shard: run.shard, first: run.first + UInt64(skip), count: run.count - skip))
            skip = 0
        }
        return result
    }

    /// The spans of records `start..<start+count`.
    package func slice(from start: Int, count: Int) -> SpoolSpans {
        dropFirst(start).prefix(count)
    }
}
