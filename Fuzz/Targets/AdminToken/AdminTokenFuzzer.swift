import FerryCore
import FuzzSupport

/// The `admin.token-file` reader (``AdminToken``) and its check of an
/// `Authorization` header.
///
/// First byte: bit 0 makes the file group-readable (it must be refused);
/// second: where the file's bytes end and a presented header begins; third:
/// how many bytes to add after the token in a second header. Checks: a token
/// loads exactly when an independent reading finds one (32+ printable
/// characters, trailing CR, LF and spaces removed); `Bearer <token>` is
/// authorized and anything else is not, the fuzzer's header and the token
/// with bytes added included.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAdminToken(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let split = Int(input.byte())
    let extra = Int(input.byte()) + 1
    let rest = input.rest()
    let file = Array(rest.prefix(split))
    let header = String(decoding: rest.dropFirst(split), as: UTF8.self)
    let path = ScratchDirectory.path + "/token"
    ScratchDirectory.write(file, to: path, mode: mode & 1 != 0 ? 0o640 : 0o600)

    var expected = file[...]
    while let last = expected.last, last == 0x0A || last == 0x0D || last == 0x20 { expected.removeLast() }
    let valid = expected.count >= 32 && expected.allSatisfy { (0x21...0x7E).contains($0) }
    do {
        let token = try AdminToken.load(path)
        invariant(mode & 1 == 0 && valid, "loaded a token from \(file.count) bytes (mode \(mode & 1))")
        let secret = String(decoding: expected, as: UTF8.self)
        invariant(token.authorizes("Bearer " + secret), "the token itself is refused")
        invariant(!token.authorizes(secret) && !token.authorizes(nil) && !token.authorizes("Bearer "), "a header without the token is authorized")
        invariant(!token.authorizes("Bearer " + secret + String(repeating: "x", count: extra)), "the token with \(extra) bytes added is authorized")
        invariant(!token.authorizes("Bearer " + secret.dropLast()), "the token less its last byte is authorized")
        invariant(token.authorizes(header) == (Array(header.utf8) == Array("Bearer ".utf8) + expected), "header '\(header)' judged wrongly")
    } catch {
        switch error {
        case .readableByOthers: invariant(mode & 1 != 0, "a private token file refused as readable by others")
        case .badToken: invariant(!valid && mode & 1 == 0, "a valid token refused")
        case .unreadable(_, let reason): invariant(false, "unreadable: \(reason)")
        }
    }
    return 0
}

@main
enum AdminTokenFuzzer {
    static func main() { FuzzDriver.run(fuzzAdminToken) }
}
