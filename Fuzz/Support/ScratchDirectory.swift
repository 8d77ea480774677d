#if canImport(Glibc)
    import Glibc
#endif

/// One private temporary directory per fuzzing process, emptied for each
/// input: targets that read files (spool, key files, configuration) get
/// their bytes there.
public enum ScratchDirectory {
    /// The directory, made on first use and removed when the process exits.
    public static let path: String = {
        var template = Array("/tmp/ferry-fuzz-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: errno \(errno)")
        atexit { ScratchDirectory.remove(ScratchDirectory.path) }
        return String(cString: made!)
    }()

    /// An empty directory `name` inside ``path``.
    public static func fresh(_ name: String) -> String {
        let directory = path + "/" + name
        remove(directory)
        invariant(mkdir(directory, 0o700) == 0, "mkdir \(directory): errno \(errno)")
        return directory
    }

    /// Writes `bytes` to `path` with `mode`, replacing what was there.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) {
        remove(path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        invariant(descriptor >= 0, "open \(path): errno \(errno)")
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            invariant(count > 0, "write \(path): errno \(errno)")
            written += count
        }
        _ = fchmod(descriptor, mode)
    }

    /// The bytes of a file (empty when it cannot be read).
    public static func read(_ path: String) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return [] }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        return bytes
    }

    /// Removes `path` and everything under it.
    public static func remove(_ path: String) {
        if let directory = opendir(path) {
            var names: [String] = []
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(directory)
            for name in names { remove(path + "/" + name) }
            _ = rmdir(path)
        } else {
            _ = unlink(path)
        }
    }
}
