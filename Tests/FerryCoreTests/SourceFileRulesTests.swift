import Foundation
import Testing

/// The house rules on source files that a linter does not check: no hand-written file under
/// `Sources/` is over 400 lines (split a large type into `Type+Feature.swift`). Generated code
/// lives in folders named `Generated` (docs/design.md, "Generated code"): this rule skips them,
/// and `swift format lint` skips their files through the `// swift-format-ignore-file` line the
/// generator writes at the top of each, which the second test keeps true.
struct SourceFileRulesTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let maximumLines = 400
    static let generatedFolder = "Generated"

    /// Every `.swift` file under `Sources/`, relative to the repository, and whether it is generated.
    static func sourceFiles() throws -> [(path: String, isGenerated: Bool)] {
        let root = repositoryRoot.path
        return try FileManager.default.subpathsOfDirectory(atPath: root + "/Sources").filter { $0.hasSuffix(".swift") }.sorted().map {
            ("Sources/" + $0, $0.split(separator: "/").contains { $0 == Self.generatedFolder })
        }
    }

    static func contents(_ path: String) throws -> String {
        try String(contentsOfFile: repositoryRoot.path + "/" + path, encoding: .utf8)
    }

    @Test func noHandWrittenSourceFileIsOver400Lines() throws {
        let files = try Self.sourceFiles()
        let tooLong = try files.filter { !$0.isGenerated }.compactMap { file -> String? in
            let lines = try Self.contents(file.path).reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
            return lines > Self.maximumLines ? "\(file.path): \(lines) lines" : nil
        }
        #expect(tooLong.isEmpty, "over \(Self.maximumLines) lines: \(tooLong.joined(separator: ", "))")
        #expect(files.count(where: { !$0.isGenerated }) > 100)
    }

    @Test func everyGeneratedFileOptsOutOfLint() throws {
        let generated = try Self.sourceFiles().filter(\.isGenerated)
        let linted = try generated.filter { file in
            !(try Self.contents(file.path).split(separator: "\n").prefix(5).contains("// swift-format-ignore-file"))
        }
        #expect(linted.isEmpty, "generated files without '// swift-format-ignore-file': \(linted.map(\.path))")
        #expect(generated.count >= 4, "the OTLP types in Sources/FerryOTLP/Generated")
    }
}
