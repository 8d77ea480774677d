#if canImport(Glibc)
    import Glibc
#endif

/// Why an upstream could not be set up.
public enum ForwardingError: Error, CustomStringConvertible {
    case cannotOpenFile(path: String, errno: CInt)
    case cannotResolve(upstream: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpenFile(let path, let code):
            return "cannot open file upstream 'file:\(path)': \(String(cString: strerror(code)))"
        case .cannotResolve(let upstream, let reason):
            return "cannot resolve upstream '\(upstream)': \(reason)"
        }
    }
}
