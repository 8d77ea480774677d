import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The pipeline's side of the spool: reading spilled logs back into the
/// memory window, and counting what the spool refused.
extension LoopPipeline {
    /// Most logs read back from disk per drain step.
    static let readBackBurst = 4_096

    /// Refills the memory window from the spool while logs wait on disk only,
    /// the memory shard is nearly empty and an upstream can take traffic:
    /// oldest first (a previous run's shards before this run's), as many as
    /// the buffer has room for.
    func readBackSpilled() {
        guard shard.count < 4, firstAvailableLane() != nil else { return }
        for source in readShards where source.isSpilling {
            let read = source.readSpilled(maxRecords: Self.readBackBurst, capacity: capacity, allocator: allocator)
            if read.lost > 0 { drops.drop(.spoolCorrupt, logs: read.lost, detail: source.index) }
            guard !read.records.isEmpty else { return }
            shard.append(RecordBatch(copying: read.records, bytes: read.bytes, receivedAt: .now(), spans: read.spans, allocator: allocator))
            return
        }
    }

    /// Counts the logs an admission did not take.
    func noteRefused(_ admission: SpoolShard.Admission, offered: Int) {
        guard admission.refused > 0 else { return }
        switch admission.refusal {
        case .writeFailed(let code):
            drops.drop(.spoolWriteFailed, logs: admission.refused, detail: Int(code), error: String(cString: strerror(code)))
        case .full, nil:
            drops.drop(.spoolFull, logs: admission.refused, detail: spool?.bytes ?? 0)
        }
    }
}
