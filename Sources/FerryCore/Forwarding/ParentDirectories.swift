#if canImport(Glibc)
    import Glibc
#endif

/// Creates the missing directories above a file path, as `mkdir -p` would,
/// so `file:` upstreams and `log.file` treat a missing directory alike.
enum ParentDirectories {
    /// Returns nil on success, else the `errno` of the directory that could not be made.
    static func create(for path: String) -> CInt? {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return nil }
        var current = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { components = components.dropFirst() }
        for component in components where !component.isEmpty && component != "." {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                return errno
            }
        }
        return nil
    }
}
