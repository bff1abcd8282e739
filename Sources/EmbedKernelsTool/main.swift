import Foundation

// Usage: EmbedKernelsTool OUTPUT.swift KERNELS_DIR FILE.cl...
// Writes `let embeddedKernelSources: [String: String]` keyed by each file's path under
// KERNELS_DIR ("conv.cl", "conv/implicit_gemm.cl"). Sources are emitted as raw string literals
// with enough '#' that no kernel text can end them early.
let args = CommandLine.arguments
guard args.count >= 3 else { fatalError("usage: EmbedKernelsTool OUTPUT KERNELS_DIR FILE...") }
let root = URL(fileURLWithPath: args[2]).standardizedFileURL.path + "/"
var out = "// Generated from Kernels/ at build time. Do not edit.\n"
out += "let embeddedKernelSources: [String: String] = [\n"
if args.count == 3 { out += ":" }
for path in args.dropFirst(3) {
    let url = URL(fileURLWithPath: path).standardizedFileURL
    let key = url.path.hasPrefix(root) ? String(url.path.dropFirst(root.count)) : url.lastPathComponent
    let text = try String(contentsOf: url, encoding: .utf8)
    var hashes = "#"
    while text.contains("\"" + hashes) { hashes += "#" }
    out += "    \"\(key)\": \(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes),\n"
}
out += "]\n"
let target = URL(fileURLWithPath: args[1])
if (try? String(contentsOf: target, encoding: .utf8)) != out {
    try out.write(to: target, atomically: true, encoding: .utf8)
}
