import XCTest
import Foundation
import VGGTL
@testable import VGGTLCLI

/// The README's shell lines as a user copies them: its first command leaves `vggtl` on PATH,
/// and every `vggtl ...` line is one the tool accepts (the ones that need no data run).
final class ReadmeCommandTests: BinaryTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func readme() throws -> String {
        try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    }

    /// The lines of the README's ```sh blocks, with `\` continuations joined.
    static func shellLines() throws -> [String] {
        var lines: [String] = []
        for block in try readme().components(separatedBy: "```sh\n").dropFirst() {
            let body = block.components(separatedBy: "\n```").first ?? ""
            var pending = ""
            for raw in body.split(separator: "\n", omittingEmptySubsequences: false) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasSuffix("\\") { pending += line.dropLast() + " "; continue }
                lines.append(pending + line); pending = ""
            }
        }
        return lines
    }

    /// The arguments after `vggtl` in a line (also under `mpirun ...`), without its comment.
    static func vggtlArguments(_ line: String) -> [String]? {
        let command = line.components(separatedBy: " #").first ?? line
        let words = command.split(separator: " ").map(String.init)
        guard !line.hasPrefix("#"), let at = words.firstIndex(of: "vggtl"), at == 0 || words[0] == "mpirun" else { return nil }
        return Array(words[(at + 1)...])
    }

    func testTheFirstCommandInstallsVggtlOnPath() throws {
        let lines = try Self.shellLines()
        let first = try XCTUnwrap(lines.first { !$0.hasPrefix("#") && !$0.isEmpty })
        let install = try XCTUnwrap(first.range(of: "bash scripts/install.sh"), "the README's first command does not install vggtl: \(first)")
        let demo = try XCTUnwrap(first.range(of: "vggtl demo"), first)
        XCTAssertLessThan(install.lowerBound, demo.lowerBound, "vggtl runs before it is installed: \(first)")
        // The script as the README runs it (given the test's build, so that it skips the release
        // build): vggtl then runs by its name from PATH.
        let prefix = url("prefix")
        let r = try run([], env: ["PREFIX": prefix.path],
                        shell: "bash '\(Self.root.appendingPathComponent("scripts/install.sh").path)' '\(Self.binary.path)' && PATH='\(prefix.path)/bin':/usr/bin:/bin vggtl --version")
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("installed \(prefix.path)/bin/vggtl"), r.output)
        XCTAssertTrue(r.output.contains("\(prefix.path)/bin is not on your PATH"), r.output)
        XCTAssertTrue(r.output.hasSuffix("vggtl \(VGGTLVersion.current)\n"), r.output)
    }

    func testCIRunsTheREADMEsTestCommand() throws {
        let second = try XCTUnwrap(Self.shellLines().filter { !$0.hasPrefix("#") && !$0.isEmpty }.dropFirst().first)
        let ci = try String(contentsOf: Self.root.appendingPathComponent(".ci/run"), encoding: .utf8)
        XCTAssertEqual(ci.split(separator: "\n").last.map(String.init), second, ".ci/run must run the README's test command")
    }

    func testEveryVggtlLineIsAcceptedAndTheOnesWithoutDataRun() throws {
        let commands = try Self.shellLines().compactMap(Self.vggtlArguments)
        XCTAssertGreaterThan(commands.count, 20, "the README's examples were not found")
        for args in commands {
            XCTAssertNoThrow(try parseCommand(args),
                             "README: vggtl \(args.joined(separator: " "))")
        }
        // Lines that read no data or weights run as written, and print what their comment says.
        for line in try Self.shellLines() {
            guard let args = Self.vggtlArguments(line), ["summary", "devices"].contains(args.first),
                  !line.hasPrefix("mpirun") else { continue }
            let r = try run(args)
            XCTAssertEqual(r.status, 0, "\(line)\n\(r.output)")
            let comment = line.components(separatedBy: " #").dropFirst().first ?? ""
            let numbers = comment.split(separator: " ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ",:;.")) }
                .filter { $0.contains(",") && $0.allSatisfy { $0.isNumber || $0 == "," } }
            for number in numbers {
                XCTAssertTrue(r.output.contains(number), "\(line): \(number) not in\n\(r.output)")
            }
        }
    }
}
