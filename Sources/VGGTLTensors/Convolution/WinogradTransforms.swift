/// The math of Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray, 2015), shared by the
/// backends: each m x m output tile costs (m+2)^2 multiplies per input/output channel pair
/// instead of 9 m^2 (2.25x fewer for F(2x2), 4x fewer for F(4x4)). The transforms: V = B^T d B
/// of an (m+2)^2 input tile, U = G g G^T of the 3x3 kernel, Y = A^T M A of the products M = U V.
package enum Winograd {
    /// Coefficients of one transform, stored sparse by rows: out[r] = sum coef * in[idx].
    package struct Transform {
        let outSize: Int, inSize: Int
        package let rows: [[(Int, Float)]]
        init(_ dense: [[Float]]) {
            outSize = dense.count; inSize = dense[0].count
            rows = dense.map { row in row.enumerated().compactMap { $0.element == 0 ? nil : ($0.offset, $0.element) } }
        }
    }

    package struct Variant {
        package let m: Int
        package var alpha: Int { m + 2 }
        package let bt: Transform   // alpha x alpha, applied to input tiles
        package let g: Transform    // alpha x 3, applied to kernels
        package let at: Transform   // m x alpha, applied to products
        package let a: Transform    // alpha x m: the output transform's adjoint (gradients of outputs -> products)
        package let gt: Transform   // 3 x alpha: the kernel transform's adjoint (product gradients -> kernel gradients)
        var name: String { Winograd.name(m) }

        init(m: Int, bt: [[Float]], g: [[Float]], at: [[Float]]) {
            func transpose(_ d: [[Float]]) -> [[Float]] { d[0].indices.map { j in d.map { $0[j] } } }
            self.m = m
            self.bt = Transform(bt); self.g = Transform(g); self.at = Transform(at)
            self.a = Transform(transpose(at)); self.gt = Transform(transpose(g))
        }
    }

    static let f2 = Variant(m: 2,
        bt: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
        g: ([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
        at: ([[1, 1, 1, 0], [0, 1, -1, -1]]))

    static let f4 = Variant(m: 4,
        bt: ([[4, 0, -5, 0, 1, 0],
                       [0, -4, -4, 1, 1, 0],
                       [0, 4, -4, -1, 1, 0],
                       [0, -2, -1, 2, 1, 0],
                       [0, 2, -1, -2, 1, 0],
                       [0, 4, 0, -5, 0, 1]]),
        g: ([[1.0 / 4, 0, 0],
                      [-1.0 / 6, -1.0 / 6, -1.0 / 6],
                      [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                      [1.0 / 24, 1.0 / 12, 1.0 / 6],
                      [1.0 / 24, -1.0 / 12, 1.0 / 6],
                      [0, 0, 1]]),
        at: ([[1, 1, 1, 1, 1, 0],
                       [0, 1, -1, 2, -2, 0],
                       [0, 1, 1, 4, 4, 0],
                       [0, 1, -1, 8, -8, 1]]))

    /// The variant of output tile size m (2 or 4).
    package static func variant(m: Int) -> Variant { m == 4 ? f4 : f2 }

    /// "winograd-F(4x4,3x3)".
    package static func name(_ m: Int) -> String { "winograd-F(\(m)x\(m),3x3)" }

    /// Transformed-domain multiplies per channel pair of F(m x m) over an outH x outW output:
    /// tiles x (m+2)^2.
    static func multiplies(m: Int, outH: Int, outW: Int) -> Int {
        ((outH + m - 1) / m) * ((outW + m - 1) / m) * (m + 2) * (m + 2)
    }

    /// The output tile size with the fewest multiplies for this output size: 4 unless F(2x2)
    /// wastes less on the border tiles of a small image.
    package static func fewestMultiplies(outH: Int, outW: Int) -> Int {
        multiplies(m: 4, outH: outH, outW: outW) <= multiplies(m: 2, outH: outH, outW: outW) ? 4 : 2
    }
}
