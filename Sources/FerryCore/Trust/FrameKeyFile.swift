#if canImport(Glibc)
    import Glibc
#endif

/// Reads `auth.key-file` / `auth.key-files`: each file holds one key per line
/// as 64 or more hex characters (32+ random bytes, e.g. `openssl rand -hex 32`);
/// blank lines and lines starting with `#` are skipped. The first key of the
/// first file signs; every key verifies.
///
/// A file group or others can read is refused: the key is what makes a frame
/// trusted, so it must be readable by Ferry's user only (`chmod 600`).
public enum FrameKeyFile {
    /// Largest key file read (a file of keys is a few hundred bytes).
    static let maximumBytes = 64 << 10
    /// Most keys in one ring (a rotation needs two; a few more for overlap).
    static let maximumKeys = 16

    /// Loads every key of `paths`, in order.
    public static func load(_ paths: [String]) throws(FrameKeyError) -> FrameKeyRing {
        var keys: [FrameKey] = []
        for path in paths {
            for key in try keysOf(path) {
                if let clash = keys.first(where: { $0.id == key.id }) {
                    throw .duplicateKey(path: path, id: String(clash.id, radix: 16))
                }
                keys.append(key)
            }
        }
        guard !keys.isEmpty else { throw .noKey(path: paths.joined(separator: ",")) }
        guard keys.count <= maximumKeys else { throw .tooManyKeys(count: keys.count, maximum: maximumKeys) }
        return FrameKeyRing(keys: keys)
    }

    /// The keys of one file, after checking who may read it.
    static func keysOf(_ path: String) throws(FrameKeyError) -> [FrameKey] {
        var bytes: [UInt8]
        do throws(SecretFile.ReadError) {
            bytes = try SecretFile.read(path, maximumBytes: maximumBytes)
        } catch {
            switch error {
            case .unreadable(let path, let reason): throw .unreadable(path: path, reason: reason)
            case .readableByOthers(let path, let mode): throw .readableByOthers(path: path, mode: mode)
            }
        }
        defer { for index in bytes.indices { bytes[index] = 0 } }
        return try parse(bytes[...], path: path)
    }

    /// Parses the text of a key file; `path` only names it in errors.
    static func parse(_ text: ArraySlice<UInt8>, path: String) throws(FrameKeyError) -> [FrameKey] {
        var keys: [FrameKey] = []
        var lineNumber = 0
        for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let trimmed = line.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }.reversed()
            guard let first = trimmed.first, first != UInt8(ascii: "#") else { continue }
            guard trimmed.count % 2 == 0, trimmed.count >= FrameKey.minimumSecretBytes * 2 else {
                throw .badKey(path: path, line: lineNumber, reason: "\(trimmed.count) characters; a key is 64 or more hex characters (an even count)")
            }
            var secret: [UInt8] = []
            secret.reserveCapacity(trimmed.count / 2)
            var high: UInt8?
            for character in trimmed {
                guard let nibble = hexValue(character) else {
                    throw .badKey(path: path, line: lineNumber, reason: "not a hex character in it (allowed: 0-9, a-f, A-F)")
                }
                if let top = high {
                    secret.append(top << 4 | nibble)
                    high = nil
                } else {
                    high = nibble
                }
            }
            if Set(secret).count == 1 {
                throw .badKey(path: path, line: lineNumber, reason: "every byte is the same: not a random key (make one with: openssl rand -hex 32)")
            }
            keys.append(FrameKey(secret: secret))
            for index in secret.indices { secret[index] = 0 }
        }
        return keys
    }

    private static func hexValue(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Why a key file cannot be used; never quotes a key.
public enum FrameKeyError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case readableByOthers(path: String, mode: String)
    case badKey(path: String, line: Int, reason: String)
    case noKey(path: String)
    case duplicateKey(path: String, id: String)
    case tooManyKeys(count: Int, maximum: Int)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "auth key file '\(path)' cannot be read: \(reason)"
        case .readableByOthers(let path, let mode):
            return "auth key file '\(path)' has mode \(mode): group or others can read it; allowed: readable by its owner only (chmod 600 '\(path)')"
        case .badKey(let path, let line, let reason):
            return "auth key file '\(path)' line \(line) is not a key: \(reason)"
        case .noKey(let path):
            return "auth key file '\(path)' holds no key; allowed: one key per line, 64 or more hex characters (openssl rand -hex 32)"
        case .duplicateKey(let path, let id):
            return "auth key file '\(path)' repeats key \(id), already read from an earlier line or file"
        case .tooManyKeys(let count, let maximum):
            return "auth key files hold \(count) keys; allowed: at most \(maximum)"
        }
    }
}
