import Foundation
import Testing

/// Every relative link in the README, docs/ and the benchmark pages points at a
/// file that exists, and at a heading that exists when it names one, so moving
/// a section or renaming a heading cannot leave a dead link behind.
struct DocumentationLinksTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Pages other branches add in parallel (issue 33): linked already, checked as soon as they exist.
    static let pagesOnTheirWay: Set<String> = []

    @Test func everyRelativeLinkPointsAtAFileAndHeadingThatExist() throws {
        let root = Self.repositoryRoot.path
        let docs = try FileManager.default.subpathsOfDirectory(atPath: root + "/docs").filter { $0.hasSuffix(".md") }.map { "docs/" + $0 }
        let pages = ["README.md", "Benchmarks/README.md", "Benchmarks/HISTORY.md"] + docs.sorted()
        let problems = try DocumentationLinks.problems(root: root, pages: pages, pending: Self.pagesOnTheirWay)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        #expect(pages.count >= 10)
    }

    /// The check finds what it is for: a missing file, a missing heading in another page and in its own page.
    @Test func aDeadLinkIsFound() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("links-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/docs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try """
        # Page
        ## Resilient forwarding (`ferry://`)
        [ok](#resilient-forwarding-ferry) [ok](docs/other.md#the-heading) [web](https://example.com/none)
        [gone](docs/missing.md) [no heading](docs/other.md#nowhere) [not here](#nowhere)
        ```
        [inside code](not-checked.md)
        ```
        """.write(toFile: root + "/README.md", atomically: true, encoding: .utf8)
        try "# Other\n\n## The heading\n\n[back](../README.md#page)\n".write(toFile: root + "/docs/other.md", atomically: true, encoding: .utf8)
        let problems = try DocumentationLinks.problems(root: root, pages: ["README.md", "docs/other.md"], pending: [])
        #expect(
            problems == [
                "README.md: docs/missing.md: no such file",
                "README.md: docs/other.md#nowhere: no heading 'nowhere' in docs/other.md",
                "README.md: #nowhere: no heading 'nowhere' in README.md",
            ])
    }

    @Test func anchorsAreGitHubs() {
        #expect(DocumentationLinks.anchor(of: "Resilient forwarding (`ferry://`)") == "resilient-forwarding-ferry")
        #expect(DocumentationLinks.anchor(of: "Trust: keys, allowlists, rate limits") == "trust-keys-allowlists-rate-limits")
        #expect(DocumentationLinks.anchor(of: "`ferry trace TRACE_ID FILE…`") == "ferry-trace-trace_id-file")
        #expect(DocumentationLinks.anchor(of: "See [the spool](spool.md) here") == "see-the-spool-here")
    }
}

/// Reads markdown links and headings the way GitHub renders them.
enum DocumentationLinks {
    /// `path: link: what is wrong`, one per dead link, in page order.
    static func problems(root: String, pages: [String], pending: Set<String>) throws -> [String] {
        var anchorsByPage: [String: Set<String>] = [:]
        func anchors(_ page: String) throws -> Set<String> {
            if let known = anchorsByPage[page] { return known }
            let found = headingAnchors(try String(contentsOfFile: root + "/" + page, encoding: .utf8))
            anchorsByPage[page] = found
            return found
        }
        var problems: [String] = []
        for page in pages {
            let text = try String(contentsOfFile: root + "/" + page, encoding: .utf8)
            let directory = (page as NSString).deletingLastPathComponent
            for link in links(in: text) where link.range(of: "^[a-zA-Z][a-zA-Z+.-]*:", options: .regularExpression) == nil {
                let parts = link.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let path = parts[0]
                let anchor = parts.count > 1 ? parts[1] : nil
                let target = path.isEmpty ? page : normalized((directory as NSString).appendingPathComponent(path))
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: root + "/" + target, isDirectory: &isDirectory) else {
                    if !pending.contains(target) { problems.append("\(page): \(link): no such file") }
                    continue
                }
                if let anchor, !isDirectory.boolValue, target.hasSuffix(".md"), try !anchors(target).contains(anchor) {
                    problems.append("\(page): \(link): no heading '\(anchor)' in \(target)")
                }
            }
        }
        return problems
    }

    /// Link targets of `[text](target)` outside code blocks and inline code (images included).
    static func links(in text: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: #"\]\(([^)\s]+)(?:\s+"[^"]*")?\)"#)
        return proseLines(text).flatMap { line -> [String] in
            let prose = line.replacingOccurrences(of: "`[^`]*`", with: "``", options: .regularExpression)
            return pattern.matches(in: prose, range: NSRange(prose.startIndex..., in: prose)).map {
                String(prose[Range($0.range(at: 1), in: prose)!])
            }
        }
    }

    /// The anchors GitHub gives a page's headings (a repeated heading gets `-1`, `-2`, …).
    static func headingAnchors(_ text: String) -> Set<String> {
        var seen: [String: Int] = [:]
        var anchors: Set<String> = []
        for line in proseLines(text) {
            guard let match = line.range(of: #"^#{1,6}\s+"#, options: .regularExpression) else { continue }
            let base = anchor(of: String(line[match.upperBound...]))
            let count = seen[base, default: 0]
            seen[base] = count + 1
            anchors.insert(count == 0 ? base : "\(base)-\(count)")
        }
        return anchors
    }

    /// GitHub's anchor of a heading: link text kept, lower case, punctuation dropped, spaces as hyphens.
    static func anchor(of heading: String) -> String {
        let text = heading.replacingOccurrences(of: #"\[([^\]]*)\]\([^)]*\)"#, with: "$1", options: .regularExpression)
            .trimmingCharacters(in: .whitespaces).lowercased()
        let kept = text.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) || "-_ ".unicodeScalars.contains($0) }
        return String(String.UnicodeScalarView(kept)).replacingOccurrences(of: " ", with: "-")
    }

    /// The page's lines with fenced code blocks blanked out.
    private static func proseLines(_ text: String) -> [Substring] {
        var inFence = false
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") {
                inFence.toggle()
                return ""
            }
            return inFence ? "" : line
        }
    }

    private static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == "..", !parts.isEmpty, parts.last != ".." { parts.removeLast() } else { parts.append(part) }
        }
        return parts.joined(separator: "/")
    }
}
