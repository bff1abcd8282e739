import Foundation
#if canImport(Glibc)
import Glibc
#endif
import VGGTLTensors

/// Python's str ordering: by Unicode scalar values (Swift's `<` on String compares canonical
/// equivalents, which can differ for decomposed accents).
func pythonLess(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
}

/// `flow_from_directory`'s layout: one subfolder per class, classes sorted by name, images
/// found recursively within each class folder in Keras' order (os.walk directories sorted by
/// path, files sorted within each). Images are .jpg/.jpeg/.png (any case); other files are
/// counted in `ignoredFiles`. Differences from Keras: hidden top-level folders (".git",
/// ".ipynb_checkpoints") are not classes, and BMP/PPM/TIFF are not read; both are reported in
/// `warnings`.
public final class ClassFolderSource: ImageSource, @unchecked Sendable {
    public let root: URL
    public let classNames: [String]
    /// Full paths, class by class.
    public private(set) var files: [(path: String, label: Int)]
    /// Things a user should know (empty classes, ignored files); the CLI prints them.
    public var warnings: [String]
    /// Files skipped because they are not .jpg/.jpeg/.png.
    public var ignoredFiles: Int

    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    public init(directory: URL, minClasses: Int = 2) throws {
        root = directory
        let top = directory.path
        guard let kind = fileKind(top) else {
            throw VGGTLError.invalidArgument("image folder \(top) does not exist; pass a folder with one subfolder per class (\(top)/cats/*.jpg, \(top)/dogs/*.jpg)")
        }
        guard kind == .directory else {
            throw VGGTLError.invalidArgument("\(top) is a file, not a folder; pass a folder with one subfolder per class (DIR/cats/*.jpg, DIR/dogs/*.jpg)")
        }
        var warnings: [String] = []
        var classes: [String] = []
        var looseImages = 0
        for entry in try listDirectory(top).sorted(by: pythonLess) {
            if fileKind(top + "/" + entry) == .directory {
                if entry.hasPrefix(".") {
                    warnings.append("ignored hidden folder '\(entry)' in \(top) (Keras would count it as a class)")
                } else {
                    classes.append(entry)
                }
            } else if isImageName(entry) {
                looseImages += 1
            }
        }
        if looseImages > 0 {
            warnings.append("ignored \(looseImages) image\(looseImages == 1 ? "" : "s") directly in \(top): only images inside class subfolders are read")
        }
        guard !classes.isEmpty else {
            let loose = looseImages > 0 ? " (it holds \(looseImages) images directly; move them into one subfolder per class)" : ""
            throw VGGTLError.invalidArgument("\(top) has no class subfolders\(loose); flow_from_directory needs \(top)/<class>/*.jpg, e.g. \(top)/cats and \(top)/dogs")
        }
        guard classes.count >= minClasses else {
            let listed = classes.map { "'\($0)'" }.joined(separator: ", ")
            throw VGGTLError.invalidArgument("found \(classes.count) class\(classes.count == 1 ? "" : "es") \(listed) in \(top); need at least \(minClasses): add one subfolder of images per class")
        }

        var files: [(path: String, label: Int)] = []
        var ignored = 0
        var ignoredExamples: [String] = []
        var otherFormats = 0
        for (label, name) in classes.enumerated() {
            let before = files.count
            for dir in try walk(top + "/" + name).sorted(by: { pythonLess($0.path, $1.path) }) {
                for file in dir.files.sorted(by: pythonLess) {
                    if isImageName(file) {
                        files.append((dir.path + "/" + file, label))
                    } else {
                        ignored += 1
                        if ignoredExamples.count < 3 { ignoredExamples.append(file) }
                        let ext = (file as NSString).pathExtension.lowercased()
                        if ["bmp", "ppm", "tif", "tiff", "gif", "webp"].contains(ext) { otherFormats += 1 }
                    }
                }
            }
            if files.count == before {
                warnings.append("class '\(name)' has no .jpg/.jpeg/.png images (\(top)/\(name))")
            }
        }
        if ignored > 0 {
            let examples = ignoredExamples.map { "'\($0)'" }.joined(separator: ", ")
            var message = "ignored \(ignored) file\(ignored == 1 ? "" : "s") that \(ignored == 1 ? "is" : "are") not .jpg/.jpeg/.png (e.g. \(examples))"
            if otherFormats > 0 { message += "; \(otherFormats) of them are images in other formats: convert them to JPEG or PNG to use them" }
            warnings.append(message)
        }
        guard !files.isEmpty else {
            throw VGGTLError.invalidArgument("found \(classes.count) classes in \(top) (\(classes.joined(separator: ", "))) but no .jpg/.jpeg/.png images in them")
        }
        self.classNames = classes
        self.files = files
        self.warnings = warnings
        self.ignoredFiles = ignored
    }

    public var count: Int { files.count }
    public func label(_ i: Int) -> Int { files[i].label }
    public func name(_ i: Int) -> String { files[i].path }
    public func image(_ i: Int) throws -> RGBImage {
        try ImageCodec.decode(contentsOf: URL(fileURLWithPath: files[i].path))
    }
}

func isImageName(_ name: String) -> Bool {
    guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return false }
    return ClassFolderSource.imageExtensions.contains(name[name.index(after: dot)...].lowercased())
}

enum FileKind { case directory, other }

/// stat() (following links, as os.path.isdir and DirEntry.is_dir do); nil when missing.
func fileKind(_ path: String) -> FileKind? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return (st.st_mode & S_IFMT) == S_IFDIR ? .directory : .other
}

private func isSymlink(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
}

func listDirectory(_ path: String) throws -> [String] {
    do {
        return try FileManager.default.contentsOfDirectory(atPath: path)
    } catch {
        throw VGGTLError.invalidArgument("cannot list folder \(path): \(error.localizedDescription)")
    }
}

/// os.walk(top, followlinks=False): every folder under top with its non-folder entries.
/// Links to folders are not entered (Keras' follow_links=False), except `top` itself.
func walk(_ top: String) throws -> [(path: String, files: [String])] {
    var result: [(path: String, files: [String])] = []
    var pending = [top]
    while let dir = pending.popLast() {
        var files: [String] = []
        for entry in try listDirectory(dir) {
            let path = dir + "/" + entry
            if fileKind(path) == .directory {
                if !isSymlink(path) { pending.append(path) }
            } else {
                files.append(entry)
            }
        }
        result.append((dir, files))
    }
    return result
}
