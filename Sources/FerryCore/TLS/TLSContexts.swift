import Logging
import NIOSSL
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why TLS could not be set up from the configured files.
public enum TLSSetupError: Error, CustomStringConvertible {
    case cannotLoad(key: String, path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotLoad(let key, let path, let reason):
            return "cannot load \(key) from \(path): \(reason) (expected a PEM file readable by Ferry)"
        }
    }
}

/// The server side of `tls://` listeners: the `NIOSSLContext` built from
/// `tls.cert`, `tls.key` and `tls.ca`, rebuilt when one of those files changes
/// (cert-manager and ACME clients replace them in place). New connections get
/// the current context; open ones keep theirs. A file that fails to load
/// leaves the previous context in use, and says so.
final class TLSServerContextSource: Sendable {
    private struct Loaded: Sendable {
        var context: NIOSSLContext
        var stamps: [FileStamp]
        var summary: String
    }

    let settings: TLSListenerSettings
    private let loaded: Mutex<Loaded>

    init(settings: TLSListenerSettings) throws {
        self.settings = settings
        self.loaded = Mutex(try Self.load(settings))
    }

    /// The context a new connection uses.
    var current: NIOSSLContext { loaded.withLock { $0.context } }

    /// The certificate in use, for status: its expiry.
    var summary: String { loaded.withLock { $0.summary } }

    /// Rebuilds the context if a file changed; logs what happened. Returns whether it changed.
    @discardableResult
    func reloadIfChanged(logger: Logger) -> Bool {
        let stamps = Self.paths(settings).map { FileStamp(path: $0.path) }
        guard stamps != loaded.withLock({ $0.stamps }) else { return false }
        do {
            let fresh = try Self.load(settings)
            loaded.withLock { $0 = fresh }
            logger.notice(
                "tls certificate reloaded", metadata: ["tls.cert": "\(settings.certificatePath ?? "")", "tls.certificate": "\(fresh.summary)"])
            return true
        } catch {
            // Keep serving with the old one, and do not retry until the files change again.
            loaded.withLock { $0.stamps = stamps }
            logger.error(
                "tls certificate reload failed, the previous one stays in use",
                metadata: ["error": "\(error)", "tls.cert": "\(settings.certificatePath ?? "")"])
            return false
        }
    }

    private static func paths(_ settings: TLSListenerSettings) -> [(key: String, path: String)] {
        [("tls.cert", settings.certificatePath), ("tls.key", settings.keyPath), ("tls.ca", settings.caPath)].compactMap { key, path in
            path.map { (key, $0) }
        }
    }

    private static func load(_ settings: TLSListenerSettings) throws -> Loaded {
        let stamps = paths(settings).map { FileStamp(path: $0.path) }
        let chain = try TLSFiles.certificates("tls.cert", settings.certificatePath ?? "")
        let key = try TLSFiles.privateKey("tls.key", settings.keyPath ?? "")
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if let ca = settings.caPath {
            configuration.trustRoots = .certificates(try TLSFiles.certificates("tls.ca", ca))
        }
        switch settings.clientAuth {
        case .none: configuration.certificateVerification = .none
        case .optional: configuration.certificateVerification = .optionalVerification
        case .required: configuration.certificateVerification = .noHostnameVerification
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError.cannotLoad(
                key: "tls.key", path: settings.keyPath ?? "", reason: "certificate and key do not make a TLS context: \(error)")
        }
        return Loaded(context: context, stamps: stamps, summary: TLSFiles.summary(chain.first))
    }
}

/// The client side of `tls://` upstreams: `upstream-tls.*` as one context.
enum TLSClientContext {
    static func make(_ settings: TLSUpstreamSettings) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let ca = settings.caPath {
            configuration.trustRoots = .certificates(try TLSFiles.certificates("upstream-tls.ca", ca))
        }
        if let certificate = settings.certificatePath, let key = settings.keyPath {
            configuration.certificateChain = try TLSFiles.certificates("upstream-tls.cert", certificate).map { .certificate($0) }
            configuration.privateKey = .privateKey(try TLSFiles.privateKey("upstream-tls.key", key))
        }
        if settings.insecure { configuration.certificateVerification = .none }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError.cannotLoad(
                key: "upstream-tls.cert", path: settings.certificatePath ?? "", reason: "no TLS client context from these files: \(error)")
        }
    }
}

/// Reading PEM files with errors that name the key and the file.
enum TLSFiles {
    static func certificates(_ key: String, _ path: String) throws -> [NIOSSLCertificate] {
        guard access(path, R_OK) == 0 else { throw TLSSetupError.cannotLoad(key: key, path: path, reason: String(cString: strerror(errno))) }
        do {
            let certificates = try NIOSSLCertificate.fromPEMFile(path)
            guard !certificates.isEmpty else { throw TLSSetupError.cannotLoad(key: key, path: path, reason: "no certificate in the file") }
            return certificates
        } catch let error as TLSSetupError {
            throw error
        } catch {
            throw TLSSetupError.cannotLoad(key: key, path: path, reason: "not a PEM certificate (\(error))")
        }
    }

    static func privateKey(_ key: String, _ path: String) throws -> NIOSSLPrivateKey {
        guard access(path, R_OK) == 0 else { throw TLSSetupError.cannotLoad(key: key, path: path, reason: String(cString: strerror(errno))) }
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            // Never the key's bytes: only that it is not one.
            throw TLSSetupError.cannotLoad(key: key, path: path, reason: "not a PEM private key")
        }
    }

    /// "expires 2027-01-01T00:00:00Z" of a certificate.
    static func summary(_ certificate: NIOSSLCertificate?) -> String {
        guard let certificate else { return "none" }
        var time = certificate.notValidAfter
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "expires \(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}

/// What identifies a file's content cheaply: inode, size and change time.
struct FileStamp: Equatable, Sendable {
    var inode: UInt64 = 0
    var size: Int64 = -1
    var changed: Int64 = 0

    init(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        changed = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }
}
