import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

/// Why a TLS handshake failed, as counted and logged (`reason` label): the
/// few causes an operator can act on, and `other` for the rest.
public enum TLSFailureReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// The peer sent no certificate where one is required.
    case noCertificate
    /// The peer's certificate does not chain to a trusted CA.
    case unknownCA
    /// The peer's certificate has expired.
    case expired
    /// The peer's certificate is not valid yet.
    case notYetValid
    /// The certificate does not name the host that was dialled.
    case wrongName
    /// No common protocol version or cipher, or not TLS at all.
    case `protocol`
    case other

    public var description: String {
        switch self {
        case .noCertificate: return "no_certificate"
        case .unknownCA: return "unknown_ca"
        case .expired: return "expired"
        case .notYetValid: return "not_yet_valid"
        case .wrongName: return "wrong_name"
        case .protocol: return "protocol"
        case .other: return "other"
        }
    }

    /// Classifies a handshake error; `verification` is what the certificate
    /// check found, when it ran and failed (BoringSSL's error alone says only
    /// "certificate verify failed").
    static func classify(_ error: any Error, verification: TLSFailureReason?) -> TLSFailureReason {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname { return .wrongName }
        let text = String(describing: error).uppercased()
        if text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") || text.contains("CERTIFICATE_REQUIRED") { return .noCertificate }
        if let verification { return verification }
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return .unknownCA }
        if text.contains("CERTIFICATE_EXPIRED") { return .expired }
        if text.contains("UNKNOWN_CA") || text.contains("TLSV1_ALERT_UNKNOWN_CA") { return .unknownCA }
        if text.contains("WRONG_VERSION") || text.contains("UNSUPPORTED_PROTOCOL") || text.contains("NO_SHARED_CIPHER")
            || text.contains("HTTP_REQUEST") || text.contains("PROTOCOL_VERSION") || text.contains("WRONG_VERSION_NUMBER")
        {
            return .protocol
        }
        return .other
    }

    /// Why `certificate` failed verification, judged from its validity dates:
    /// expired, not yet valid, or (neither) an unknown CA.
    static func verificationFailure(of certificate: NIOSSLCertificate, now: time_t = time(nil)) -> TLSFailureReason {
        if certificate.notValidAfter < now { return .expired }
        if certificate.notValidBefore > now { return .notYetValid }
        return .unknownCA
    }
}
