import Foundation

/// The sweep as fastai plots it: loss against the learning rate on a log axis (each step's loss
/// faint, the smoothed loss bold), the suggested rates marked with dashed lines. The same
/// frame and style as curves.svg.
public func learningRateSVG(_ finding: LearningRateFinding, title: String) -> String {
    let pw = 640.0, ph = 360.0, margin = 50.0
    let x0 = margin + 10, y0 = 1.3 * margin
    var svg = svgStart(width: Int(pw + 2 * margin + 20), height: Int(ph + 2.4 * margin), title: title, margin: margin)
    let points = finding.points.filter { $0.loss.isFinite && $0.smoothedLoss.isFinite }
    // The smoothed loss sets the range: a single exploding step would flatten the rest.
    let smoothed = points.map(\.smoothedLoss)
    let lo = min(smoothed.min() ?? 0, points.map(\.loss).min() ?? 0)
    var hi = smoothed.max() ?? 1
    if hi - lo < 1e-9 { hi = lo + 1 }
    let a = log10(finding.sweep.startRate), b = max(log10(finding.sweep.endRate), a + 1e-9)
    func px(_ rate: Double) -> Double { x0 + (log10(rate) - a) / (b - a) * pw }
    func py(_ v: Double) -> Double { y0 + ph - (min(max(v, lo), hi) - lo) / (hi - lo) * ph }
    svg += svgFrame(x0: x0, y0: y0, width: pw, height: ph, name: "loss", lo: lo, hi: hi, py: py)
    // A tick per power of ten.
    for e in Int(a.rounded(.up))...max(Int(a.rounded(.up)), Int(b.rounded(.down))) {
        let x = px(pow(10, Double(e)))
        svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(y0 + ph)\" y2=\"\(y0 + ph + 4)\" stroke=\"#444\"/>"
        svg += "<text x=\"\(x - 12)\" y=\"\(y0 + ph + 18)\">1e\(e)</text>\n"
    }
    svg += "<text x=\"\(x0 + pw / 2 - 60)\" y=\"\(y0 + ph + 38)\">learning rate (log scale)</text>\n"
    func polyline(_ values: [Double], color: String, width: Double) {
        guard !points.isEmpty else { return }
        let pts = zip(points, values).map { "\(px($0.rate)),\(py($1))" }.joined(separator: " ")
        svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(width)\" points=\"\(pts)\"/>\n"
    }
    polyline(points.map(\.loss), color: "#aec7e8", width: 1)
    polyline(smoothed, color: "#1f77b4", width: 2)
    var legend: [(String, String, String)] = [("#aec7e8", "", "loss"), ("#1f77b4", "", "smoothed loss")]
    for (rate, color, label) in [(finding.steepest, "#d62728", "steepest"), (finding.minimumOverTen, "#2ca02c", "minimum/10")] {
        guard let rate else { continue }
        let x = px(rate)
        svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(y0)\" y2=\"\(y0 + ph)\" stroke=\"\(color)\" stroke-width=\"1.5\" stroke-dasharray=\"5,4\"/>\n"
        legend.append((color, "5,4", "\(label) \(String(format: "%.2e", rate))"))
    }
    for (row, (color, dash, label)) in legend.enumerated() {
        let ly = y0 + 14 + Double(row) * 16, lx = x0 + pw - 170
        svg += "<line x1=\"\(lx)\" x2=\"\(lx + 20)\" y1=\"\(ly - 4)\" y2=\"\(ly - 4)\" stroke=\"\(color)\" stroke-width=\"2\""
            + (dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"") + "/>"
        svg += "<text x=\"\(lx + 25)\" y=\"\(ly)\">\(escapeXML(label))</text>\n"
    }
    return svg + "</svg>\n"
}
