#if canImport(Glibc)
    import Glibc
#endif

/// Reads a file that holds a secret (auth keys, the admin token): a regular
/// file (no symlink followed), readable by its owner only, of bounded size.
enum SecretFile {
    enum ReadError: Error, Equatable {
        case unreadable(path: String, reason: String)
        case readableByOthers(path: String, mode: String)
    }

    static func read(_ path: String, maximumBytes: Int) throws(ReadError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .unreadable(path: path, reason: "not a regular file") }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else { throw .readableByOthers(path: path, mode: String(mode, radix: 8)) }
        guard info.st_size <= maximumBytes else { throw .unreadable(path: path, reason: "larger than \(maximumBytes) bytes") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            guard count > 0 else { break }
            filled += count
        }
        return Array(bytes[..<filled])
    }
}
