import Foundation

// Usage: EmbedKernelsTool OUTPUT.swift FILE.cl...
// Writes `let embeddedKernelSources: [String: String]` keyed by file name. Sources are
// emitted as raw string literals with enough '#' that no kernel text can end them early.
let args = CommandLine.arguments
guard args.count >= 2 else { fatalError("usage: EmbedKernelsTool OUTPUT FILE...") }
var out = "// Generated from Kernels/ at build time. Do not edit.\n"
out += "let embeddedKernelSources: [String: String] = [\n"
if args.count == 2 { out += ":" }
for path in args.dropFirst(2) {
    let url = URL(fileURLWithPath: path)
    let text = try String(contentsOf: url, encoding: .utf8)
    var hashes = "#"
    while text.contains("\"" + hashes) { hashes += "#" }
    out += "    \"\(url.lastPathComponent)\": \(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes),\n"
}
out += "]\n"
let target = URL(fileURLWithPath: args[1])
if (try? String(contentsOf: target, encoding: .utf8)) != out {
    try out.write(to: target, atomically: true, encoding: .utf8)
}
