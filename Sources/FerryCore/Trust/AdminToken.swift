/// The bearer token of the state-changing HTTP endpoints (`admin.token-file`):
/// one line of at least 32 printable characters in a file only its owner can
/// read. Compared in constant time; never logged.
public struct AdminToken: Sendable, CustomStringConvertible {
    private let secret: [UInt8]
    static let minimumLength = 32

    /// Reads and checks the token file.
    public static func load(_ path: String) throws(AdminTokenError) -> AdminToken {
        let bytes: [UInt8]
        do throws(SecretFile.ReadError) {
            bytes = try SecretFile.read(path, maximumBytes: 4096)
        } catch {
            switch error {
            case .unreadable(let path, let reason): throw .unreadable(path: path, reason: reason)
            case .readableByOthers(let path, let mode): throw .readableByOthers(path: path, mode: mode)
            }
        }
        var token = bytes[...]
        while let last = token.last, last == 0x0A || last == 0x0D || last == 0x20 { token.removeLast() }
        guard token.count >= minimumLength, token.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw .badToken(path: path)
        }
        return AdminToken(secret: Array(token))
    }

    init(secret: [UInt8]) {
        self.secret = secret
    }

    /// Whether `header` is `Bearer <this token>`, in time that does not depend on where they differ.
    public func authorizes(_ header: String?) -> Bool {
        guard let header, header.hasPrefix("Bearer ") else { return false }
        let presented = Array(header.utf8.dropFirst("Bearer ".count))
        // A length that differs is a difference, whatever its low byte (256 bytes added used to pass).
        var difference: UInt8 = presented.count == secret.count ? 0 : 1
        for index in 0..<secret.count {
            difference |= secret[index] ^ (index < presented.count ? presented[index] : 0)
        }
        return difference == 0
    }

    public var description: String { "admin token (\(secret.count) characters)" }
}

/// Why the admin token file cannot be used; never quotes the token.
public enum AdminTokenError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case readableByOthers(path: String, mode: String)
    case badToken(path: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "admin token file '\(path)' cannot be read: \(reason)"
        case .readableByOthers(let path, let mode):
            return
                "admin token file '\(path)' has mode \(mode): group or others can read it; allowed: readable by its owner only (chmod 600 '\(path)')"
        case .badToken(let path):
            return
                "admin token file '\(path)' holds no usable token; allowed: one line of \(AdminToken.minimumLength) or more printable characters without spaces (openssl rand -hex 32)"
        }
    }
}
