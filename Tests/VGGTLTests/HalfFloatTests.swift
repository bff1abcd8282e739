import XCTest
import CHalf

/// The half-float conversions of fp16 gradient compression (Sources/CHalf) round as Swift's
/// Float16 does (to nearest, ties to even), on the F16C path and on the portable one.
final class HalfFloatTests: XCTestCase {
    func testEveryHalfConvertsToTheFloatSwiftGives() {
        let all = (0...UInt16.max).map { $0 }
        var fast = [Float](repeating: 0, count: all.count), scalar = fast
        vggtl_half_to_float(all, &fast, all.count)
        vggtl_half_to_float_scalar(all, &scalar, all.count)
        for (i, h) in all.enumerated() {
            let want = Float(Float16(bitPattern: h))
            if want.isNaN { XCTAssertTrue(fast[i].isNaN && scalar[i].isNaN, "\(h)"); continue }
            XCTAssertEqual(fast[i].bitPattern, want.bitPattern, "F16C path, half \(h)")
            XCTAssertEqual(scalar[i].bitPattern, want.bitPattern, "scalar path, half \(h)")
        }
    }

    func testFloatsRoundToTheNearestHalfTiesToEven() {
        var g = SystemRandomNumberGenerator()
        // Random bit patterns over every exponent, the midpoints between halves (ties), and the edges.
        var values: [Float] = (0..<200_000).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &g)) }.filter { !$0.isNaN }
        for h in stride(from: UInt16(0), to: 0x7bff, by: 7) {
            let a = Float(Float16(bitPattern: h)), b = Float(Float16(bitPattern: h + 1))
            values += [a, (a + b) / 2, -(a + b) / 2, b.nextDown, a.nextUp]
        }
        values += [0, -0, 65504, 65519.99, 65520, -65520, 1e-8, 2.98e-8, 2.99e-8, 6.1e-5, .infinity, -.infinity, .leastNonzeroMagnitude]
        var fast = [UInt16](repeating: 0, count: values.count), scalar = fast
        vggtl_float_to_half(values, &fast, values.count)
        vggtl_float_to_half_scalar(values, &scalar, values.count)
        for (i, v) in values.enumerated() {
            let want = Float16(v).bitPattern
            XCTAssertEqual(fast[i], want, "F16C path, \(v)")
            XCTAssertEqual(scalar[i], want, "scalar path, \(v)")
        }
        print("half conversions: F16C path \(vggtl_half_uses_f16c() == 1 ? "used" : "not available"), \(values.count) floats checked")
    }

    func testHalfSumsRoundOnceLikeFloat16Addition() {
        var g = SystemRandomNumberGenerator()
        let a = (0..<1003).map { _ in Float16(Float.random(in: -100...100, using: &g)).bitPattern }
        var acc = (0..<1003).map { _ in Float16(Float.random(in: -100...100, using: &g)).bitPattern }
        let want = zip(a, acc).map { Float16(Float(Float16(bitPattern: $0)) + Float(Float16(bitPattern: $1))).bitPattern }
        vggtl_half_sum(a, &acc, a.count)
        XCTAssertEqual(acc, want)
    }
}
