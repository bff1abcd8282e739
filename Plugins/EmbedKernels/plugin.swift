import PackagePlugin
import Foundation

/// Embeds every `Kernels/*.cl` and `Kernels/*.h` file of the package, and the geometry-specialised
/// sources in `Kernels/conv/*.cl`, into the target as a Swift string table keyed by the path
/// under Kernels/ ("conv.cl", "conv/implicit_gemm.cl"), so the binary carries its OpenCL sources
/// and needs no resource files at run time.
@main
struct EmbedKernels: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let kernels = context.package.directoryURL.appending(path: "Kernels")
        func sources(_ dir: URL) throws -> [URL] {
            guard FileManager.default.fileExists(atPath: dir.path) else { return [] }
            return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "cl" || $0.pathExtension == "h" }
        }
        let files = try (sources(kernels) + sources(kernels.appending(path: "conv")))
            .sorted { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedKernels.swift")
        return [.buildCommand(
            displayName: "Embedding \(files.count) OpenCL kernel files",
            executable: try context.tool(named: "EmbedKernelsTool").url,
            arguments: [output.path, kernels.path] + files.map(\.path),
            inputFiles: files,
            outputFiles: [output])]
    }
}
