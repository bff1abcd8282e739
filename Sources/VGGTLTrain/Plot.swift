import Foundation

/// Accuracy and loss curves (train and validation) as one SVG picture, like the tutorials'
/// matplotlib plots. SVG needs no library and opens in any browser.
public func historySVG(_ history: History, title: String) -> String {
    let epochs = history.records.map { Double($0.epoch) }
    let panels: [(String, [Double], [Double?])] = [
        ("accuracy", history.records.map(\.accuracy), history.records.map(\.valAccuracy)),
        ("loss", history.records.map(\.loss), history.records.map(\.valLoss)),
    ]
    let pw = 420.0, ph = 300.0, margin = 50.0
    var svg = svgStart(width: Int(2 * pw + 3 * margin), height: Int(ph + 2.2 * margin), title: title, margin: margin)
    for (p, (name, train, val)) in panels.enumerated() {
        let x0 = margin + Double(p) * (pw + margin), y0 = 1.3 * margin
        let values = train + val.compactMap { $0 }
        var lo = values.min() ?? 0, hi = values.max() ?? 1
        if name == "accuracy" { lo = min(lo, 0.5); hi = max(hi, 1) }
        if hi - lo < 1e-9 { hi = lo + 1 }
        let emax = max(epochs.last ?? 1, 2), emin = epochs.first ?? 1
        func px(_ e: Double) -> Double { x0 + (e - emin) / max(emax - emin, 1) * pw }
        func py(_ v: Double) -> Double { y0 + ph - (v - lo) / (hi - lo) * ph }
        svg += svgFrame(x0: x0, y0: y0, width: pw, height: ph, name: name, lo: lo, hi: hi, py: py)
        let step = max(1, Int((emax - emin) / 8))
        for e in stride(from: Int(emin), through: Int(emax), by: step) {
            svg += "<text x=\"\(px(Double(e)) - 4)\" y=\"\(y0 + ph + 16)\">\(e)</text>"
        }
        svg += "<text x=\"\(x0 + pw / 2 - 15)\" y=\"\(y0 + ph + 34)\">epoch</text>\n"
        func polyline(_ ys: [Double?], color: String, label: String, row: Int) {
            let pts = zip(epochs, ys).compactMap { e, v in v.map { "\(px(e)),\(py($0))" } }
            guard !pts.isEmpty else { return }
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>\n"
            for pt in pts { let c = pt.split(separator: ","); svg += "<circle cx=\"\(c[0])\" cy=\"\(c[1])\" r=\"2.5\" fill=\"\(color)\"/>" }
            let ly = y0 + 14 + Double(row) * 16
            svg += "\n<line x1=\"\(x0 + pw - 95)\" x2=\"\(x0 + pw - 75)\" y1=\"\(ly - 4)\" y2=\"\(ly - 4)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(x0 + pw - 70)\" y=\"\(ly)\">\(label)</text>\n"
        }
        polyline(train, color: "#1f77b4", label: "train", row: 0)
        polyline(val, color: "#ff7f0e", label: "validation", row: 1)
    }
    return svg + "</svg>\n"
}

/// An SVG document's start as the curves draw it: white, a title at the top left.
func svgStart(width: Int, height: Int, title: String, margin: Double) -> String {
    """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="12">
    <rect width="100%" height="100%" fill="white"/>
    <text x="\(margin)" y="20" font-size="14">\(escapeXML(title))</text>

    """
}

/// A panel's frame, its name above it, and five horizontal grid lines labelled with the values
/// from `lo` to `hi` (`py` places a value).
func svgFrame(x0: Double, y0: Double, width pw: Double, height ph: Double, name: String, lo: Double, hi: Double, py: (Double) -> Double) -> String {
    var svg = "<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#444\"/>\n"
    svg += "<text x=\"\(x0 + pw / 2 - 20)\" y=\"\(y0 - 8)\">\(name)</text>\n"
    for i in 0...4 {
        let v = lo + (hi - lo) * Double(i) / 4
        svg += "<line x1=\"\(x0)\" x2=\"\(x0 + pw)\" y1=\"\(py(v))\" y2=\"\(py(v))\" stroke=\"#ddd\"/>"
        svg += "<text x=\"\(x0 - 45)\" y=\"\(py(v) + 4)\">\(String(format: "%.3f", v))</text>\n"
    }
    return svg
}

func escapeXML(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}
