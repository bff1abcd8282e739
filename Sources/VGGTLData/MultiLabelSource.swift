import Foundation
import VGGTLTensors

/// Images with several labels each (`--labels labels.csv` beside `--data DIR`), as Keras'
/// flow_from_dataframe with class_mode="categorical" on a list column.
///
/// The file: a header line, then one row per image: its path relative to DIR, a comma, and its
/// labels separated by `|` (`photos/1.jpg,red|striped`). The path ends at the row's last comma
/// (labels hold no commas, paths may). Spaces around the path and labels are trimmed; an empty
/// label field is an image with no label (all targets 0, a negative for every label). Blank
/// lines are skipped. The labels are the sorted union of all rows' labels; images come in the
/// file's order. A malformed row, a path listed twice, a listed file that does not exist or is
/// not a .jpg/.jpeg/.png is an error naming the file and line. Images under DIR that the file
/// does not list are skipped with one warning (`warnings`).
public final class MultiLabelSource: ImageSource, @unchecked Sendable {
    public let root: URL
    public let labelsFile: URL
    /// The labels, sorted (Python's str order).
    public let classNames: [String]
    /// Full paths, in the file's order, with each image's label indices.
    public let files: [(path: String, labels: [Int])]
    public var warnings: [String]

    public init(directory: URL, labels file: URL) throws {
        root = directory; labelsFile = file
        let top = directory.path, csv = file.path
        guard fileKind(top) == .directory else {
            throw VGGTLError.invalidArgument("image folder \(top) does not exist or is not a folder; --labels lists paths relative to it")
        }
        guard let data = FileManager.default.contents(atPath: csv) else {
            throw VGGTLError.invalidArgument("labels file \(csv) does not exist or cannot be read; it needs a header line, then one row per image: PATH,LABEL|LABEL...")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw VGGTLError.invalidArgument("labels file \(csv) is not UTF-8 text")
        }
        var rows: [(line: Int, path: String, labels: [String])] = []
        var header = true, seen: [String: Int] = [:]
        // "\r\n" is one Character in Swift: Windows line ends split here too.
        for (k, row) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = k + 1
            if row.allSatisfy(\.isWhitespace) { continue }
            if header { header = false; continue }
            guard let comma = row.lastIndex(of: ",") else {
                throw VGGTLError.invalidArgument("\(csv) line \(line): expected PATH,LABEL|LABEL... (a comma after the image's path), got '\(row)'")
            }
            var path = row[..<comma].trimmingCharacters(in: .whitespaces)
            while path.hasPrefix("./") { path.removeFirst(2) }
            guard !path.isEmpty else { throw VGGTLError.invalidArgument("\(csv) line \(line): the image's path before the comma is empty") }
            guard !path.hasPrefix("/") else {
                throw VGGTLError.invalidArgument("\(csv) line \(line): \(path) is an absolute path; paths are relative to the image folder \(top)")
            }
            if let first = seen[path] { throw VGGTLError.invalidArgument("\(csv) line \(line): \(path) is listed again (first on line \(first))") }
            seen[path] = line
            let labels = row[row.index(after: comma)...].split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            // "a||b" or "a|" is a typo, not an empty label; a field with nothing at all is no label.
            if labels.count > 1, labels.contains(where: \.isEmpty) {
                throw VGGTLError.invalidArgument("\(csv) line \(line): an empty label between '|' separators in '\(row[row.index(after: comma)...])'")
            }
            let full = top + "/" + path
            guard let kind = fileKind(full) else {
                throw VGGTLError.invalidArgument("\(csv) line \(line): \(full) does not exist (paths are relative to the image folder \(top))")
            }
            guard kind == .other, isImageName(path) else {
                throw VGGTLError.invalidArgument("\(csv) line \(line): \(full) is not a .jpg/.jpeg/.png image")
            }
            rows.append((line, path, Array(Set(labels.filter { !$0.isEmpty }))))
        }
        guard !rows.isEmpty else {
            throw VGGTLError.invalidArgument("labels file \(csv) lists no images; after a header line, one row per image: PATH,LABEL|LABEL...")
        }
        let names = Set(rows.flatMap(\.labels)).sorted(by: pythonLess)
        guard !names.isEmpty else {
            throw VGGTLError.invalidArgument("labels file \(csv) gives no image any label; list each image's labels after its path, separated by '|'")
        }
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        classNames = names
        files = rows.map { (top + "/" + $0.path, $0.labels.map { index[$0]! }.sorted()) }
        var unlisted = 0
        for dir in try walk(top) {
            for f in dir.files where isImageName(f) {
                var rel = String((dir.path + "/" + f).dropFirst(top.count))
                while rel.hasPrefix("/") { rel.removeFirst() }
                if seen[rel] == nil { unlisted += 1 }
            }
        }
        warnings = unlisted == 0 ? [] : ["skipped \(unlisted) image\(unlisted == 1 ? "" : "s") under \(top) that \(csv) does not list"]
    }

    public var count: Int { files.count }
    public var isMultiLabel: Bool { true }
    public func label(_ i: Int) -> Int { 0 }
    public func targets(_ i: Int) -> [Float] {
        var row = [Float](repeating: 0, count: classNames.count)
        for j in files[i].labels { row[j] = 1 }
        return row
    }
    public func name(_ i: Int) -> String { files[i].path }
    public func image(_ i: Int) throws -> RGBImage {
        try ImageCodec.decode(contentsOf: URL(fileURLWithPath: files[i].path))
    }
    /// Images carrying each label.
    public var labelCounts: [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for f in files { for j in f.labels { counts[j] += 1 } }
        return counts
    }
}
