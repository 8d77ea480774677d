import Foundation

/// Certificates a TLS test makes for itself with `openssl` (never checked in):
/// a CA; a server certificate for `localhost` and 127.0.0.1; a client
/// certificate; one for another host; an expired one; a self-signed one for
/// `localhost` that no CA vouches for.
public struct TestCertificates: Sendable {
    public let directory: String
    public var ca: String { "\(directory)/ca.pem" }
    public func certificate(_ name: String) -> String { "\(directory)/\(name).pem" }
    public func key(_ name: String) -> String { "\(directory)/\(name).key" }

    /// The test process's certificates, made once (RSA key generation is slow on small machines).
    public static func make() throws -> TestCertificates {
        try made.get()
    }

    private static let made = Result { try generate() }

    private static func generate() throws -> TestCertificates {
        let directory = try scratchDirectory("ferry-certs")
        let script = """
            set -e
            cd '\(directory)'
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj "/CN=Ferry Test CA" 2>/dev/null
            make() {
              openssl req -newkey rsa:2048 -nodes -keyout $1.key -out $1.csr -subj "/CN=$2" 2>/dev/null
              printf "subjectAltName=$3\\nbasicConstraints=CA:FALSE\\n" > $1.ext
              openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $1.pem -days ${4:-10} -extfile $1.ext 2>/dev/null
            }
            make server localhost "DNS:localhost,IP:127.0.0.1"
            make server2 localhost "DNS:localhost,IP:127.0.0.1" 20
            make client client "DNS:client"
            make other other.test "DNS:other.test"
            openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj "/CN=localhost" 2>/dev/null
            : > index.txt; echo 1000 > serial
            printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=index.txt\\nnew_certs_dir=.\\nserial=serial\\ndefault_md=sha256\\npolicy=p\\nunique_subject=no\\n[p]\\ncommonName=supplied\\n' > ca.cnf
            openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \\
              -startdate 20200101000000Z -enddate 20200201000000Z -extfile server.ext 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 5 -subj "/CN=localhost" \\
              -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
            chmod 600 *.key
            """
        let (status, output) = try ExternalTool.run("bash", ["-c", script])
        guard status == 0 else { throw ExternalToolError.failed("openssl", output) }
        return TestCertificates(directory: directory)
    }
}
