import XCTest
import VGGTL
@testable import VGGTLCLI

/// One CPU device shared by the tests (OpenBLAS loads once per process anyway).
/// nonisolated(unsafe), here and on the other shared test state: XCTest runs the tests of one
/// process one after another on one thread (`swift test --parallel` runs several processes).
nonisolated(unsafe) let cpuDevice: CPUDevice = try! CPUDevice()

func randomArray(_ count: Int, seed: UInt64, range: ClosedRange<Float> = -1...1) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in g.uniform(range.lowerBound, range.upperBound) }
}

/// Values with |v| >= margin, so ReLU and max-pool kinks stay further than a finite-difference step.
func awayFromZero(_ count: Int, seed: UInt64, margin: Float = 0.05) -> [Float] {
    randomArray(count, seed: seed).map { $0 >= 0 ? $0 + margin : $0 - margin }
}

/// max |a - b| / max |b|: the error relative to the tensor's magnitude.
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "sizes differ: \(a.count) vs \(b.count)")
    var num: Float = 0, den: Float = 1e-20
    for i in a.indices { num = max(num, abs(a[i] - b[i])); den = max(den, abs(b[i])) }
    return num / den
}

func assertClose(_ a: [Float], _ b: [Float], tol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): sizes", file: file, line: line)
    guard a.count == b.count else { return }
    XCTAssertFalse(a.contains { !$0.isFinite }, "\(what): non-finite values", file: file, line: line)
    let e = relativeError(a, b)
    XCTAssertLessThanOrEqual(e, tol, "\(what): relative error \(e) > \(tol)", file: file, line: line)
}

/// A binary built next to the test bundle (the test target depends on its target).
func builtBinary(_ name: String) -> URL {
    var dir = Bundle.main.bundleURL
    if dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
    for candidate in [dir, Bundle(for: ParityTests.self).bundleURL.deletingLastPathComponent()] {
        let u = candidate.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: u.path) { return u }
    }
    return dir.appendingPathComponent(name)
}

/// The vggtl binary.
let vggtlBinary = builtBinary("vggtl")

/// vggtl with faults put in through its seams, chosen by VGGTL_TEST_* variables
/// (Tests/FaultHarness/main.swift lists them): for tests that need a real process to fail.
let faultHarnessBinary = builtBinary("vggtl-faults")

/// How long one vggtl command in a test may run before it is killed and the test fails.
let childTimeLimit: Double = ProcessInfo.processInfo.environment["VGGTL_TEST_CHILD_SECONDS"].flatMap(Double.init) ?? 600

/// The base of every test class: starts the watchdog.
class VGGTLTestCase: XCTestCase {
    override class func setUp() {
        super.setUp()
        TestWatchdog.shared.start()
    }
}

/// A test that hangs must not hold CI until its overall time limit: after
/// `VGGTL_TEST_MINUTES` (default 20) in one test, the watchdog names the test and ends the run
/// with a failure status.
final class TestWatchdog: NSObject, XCTestObservation, @unchecked Sendable {
    static let shared = TestWatchdog()
    private let lock = NSLock()
    private var current: (name: String, since: Date)?
    private var started = false
    private let limit = 60 * (ProcessInfo.processInfo.environment["VGGTL_TEST_MINUTES"].flatMap(Double.init) ?? 20)

    func start() {
        lock.lock(); defer { lock.unlock() }
        guard !started else { return }
        started = true
        XCTestObservationCenter.shared.addTestObserver(self)
        let t = Thread { [self] in
            while true {
                sleep(10)
                lock.lock()
                let c = current
                lock.unlock()
                if let c, Date().timeIntervalSince(c.since) > limit {
                    FileHandle.standardError.write(Data("test watchdog: \(c.name) has run for more than \(Int(limit)) s; stopping the test run (VGGTL_TEST_MINUTES changes the limit)\n".utf8))
                    exit(1)
                }
            }
        }
        t.start()
    }

    func testCaseWillStart(_ testCase: XCTestCase) {
        lock.lock(); current = (testCase.name, Date()); lock.unlock()
    }

    func testCaseDidFinish(_ testCase: XCTestCase) {
        lock.lock(); current = nil; lock.unlock()
    }
}

/// Tests run a single layer through a one-layer network (the network owns the layer's memory);
/// these give layers the forward/backward of a standalone layer. (One test at a time: see cpuDevice.)
nonisolated(unsafe) private var singleLayerNetworks: [ObjectIdentifier: Graph] = [:]
extension Layer {
    var network: Graph {
        if let g = singleLayerNetworks[ObjectIdentifier(self)] { return g }
        let g = Graph([self])
        g.computesInputGradient = true
        singleLayerNetworks[ObjectIdentifier(self)] = g
        return g
    }
    func forward(_ x: Tensor, _ context: StepContext) throws -> Tensor { try network.forward(x, context) }
    /// Fills the parameter gradients and returns dL/dx.
    func backward(_ dy: Tensor, inputGradient: Bool) throws -> Tensor? {
        try network.backward(dy)
        return inputGradient ? network.inputGradient : nil
    }
}

/// An error as the CLI prints it: the library's errors name no flags, the CLI's words do.
func cliMessage(_ error: Error) -> String {
    (error as? VGGTLError).map(FlagWording.message) ?? "\(error)"
}

extension XCTestCase {
    /// The VGGTLError `body` throws as the CLI prints it; a test failure when it throws nothing
    /// or something else.
    func cliError(_ what: String = "", file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) -> String {
        do {
            try body()
            XCTFail("expected a VGGTLError \(what)", file: file, line: line)
        } catch let e as VGGTLError {
            return FlagWording.message(e)
        } catch {
            XCTFail("expected a VGGTLError \(what), got \(error)", file: file, line: line)
        }
        return ""
    }

    /// The VGGTLError message `body` throws; a test failure when it throws nothing or something else.
    @discardableResult
    func vggtlError(_ what: String = "", file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) -> String {
        do {
            try body()
            XCTFail("expected a VGGTLError \(what)", file: file, line: line)
        } catch let e as VGGTLError {
            return e.description
        } catch {
            XCTFail("expected a VGGTLError \(what), got \(error)", file: file, line: line)
        }
        return ""
    }
}
