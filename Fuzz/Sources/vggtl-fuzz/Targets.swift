import Foundation
import VGGTL

/// One libFuzzer entry point for every reader; `FUZZ_TARGET` picks the reader:
/// jpeg, png, hdf5, safetensors, npy, idx, cifar10. A reader may throw (any error is a
/// correct answer to bad bytes); it must not crash, hang or read out of bounds.
enum Target: String, CaseIterable {
    case jpeg, png, hdf5, safetensors, npy, idx, cifar10
}

let target: Target = {
    guard let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"], let t = Target(rawValue: name) else {
        FileHandle.standardError.write(Data("set FUZZ_TARGET to one of \(Target.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return t
}()

/// Scratch files in memory (/dev/shm when there is one): the file readers take paths.
let scratch: URL = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let u = URL(fileURLWithPath: base).appendingPathComponent("vggtl-fuzz-\(getpid())")
    try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(at: scratch) }
    return u
}()

func file(_ name: String, _ bytes: some Collection<UInt8>) -> URL {
    let u = scratch.appendingPathComponent(name)
    FileManager.default.createFile(atPath: u.path, contents: Data(bytes))
    return u
}

/// Bytes with `magic` forced at the start, so mutations keep reaching the decoder.
func withMagic(_ magic: [UInt8], _ bytes: [UInt8]) -> [UInt8] {
    bytes.count >= magic.count ? magic + bytes.dropFirst(magic.count) : magic + bytes
}

func run(_ bytes: [UInt8]) {
    switch target {
    case .jpeg:
        _ = try? ImageCodec.decode(data: withMagic([0xFF, 0xD8, 0xFF], bytes), name: "fuzz.jpg")
    case .png:
        _ = try? ImageCodec.decode(data: withMagic([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], bytes), name: "fuzz.png")
    case .hdf5:
        let u = file("w.h5", bytes)
        _ = try? WeightFile.describe(u)
        _ = try? KerasH5.read(u)
    case .safetensors:
        let u = file("w.safetensors", bytes)
        _ = try? Safetensors.describe(u)
        _ = try? Safetensors.read(u)
    case .npy:
        _ = try? NPY.read(file("a.npy", bytes))
    case .idx:
        // The first two bytes split the rest into an images file and a labels file.
        guard bytes.count >= 2 else { return }
        let body = bytes.dropFirst(2)
        let split = min(body.count, Int(bytes[0]) << 8 | Int(bytes[1]))
        let images = file("images-idx3-ubyte", body.prefix(split))
        let labels = file("labels-idx1-ubyte", body.dropFirst(split))
        _ = try? IDX.load(images: images, labels: labels, classNames: [])
    case .cifar10:
        // The same bytes as every batch file (the reader checks each one the same way).
        let dir = scratch.appendingPathComponent("cifar")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let data = Data(bytes)
        for name in (1...5).map({ "data_batch_\($0).bin" }) + ["test_batch.bin"] {
            _ = FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: data)
        }
        _ = try? CIFAR10.load(directory: dir)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    run(size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// libFuzzer's driver (from libclang_rt.fuzzer_no_main, linked by run.sh).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM names an executable's entry point after its module; libFuzzer runs from here.
@_cdecl("vggtl_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    if let dir = ProcessInfo.processInfo.environment["FUZZ_MAKE_SEEDS"] {
        do { try makeSeeds(in: URL(fileURLWithPath: dir)); return 0 } catch { print("\(error)"); return 1 }
    }
    _ = target
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { fuzzOneInput($0, $1) }
}
