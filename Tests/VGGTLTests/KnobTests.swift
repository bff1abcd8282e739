import XCTest
import Foundation
@testable import VGGTL
@testable import VGGTLCLI

/// The knob table: every tuning environment variable read in one place by the CLI and handed
/// down as options (ConvolutionPlanTests checks that the device knobs take effect), listed by
/// `vggtl devices --knobs`; and variables that are not knobs change nothing.
final class KnobTests: BinaryTestCase {
    func testEveryKnobIsDeclaredOnceWithTypeDefaultAndHelp() {
        let names = Knobs.table.map(\.name)
        XCTAssertEqual(Set(names).count, names.count, "declared once: \(names)")
        // The names scripts/gpu/run.sh, scripts/bench and the docs use.
        for name in ["VGGTL_CONV", "VGGTL_WINOGRAD_CHUNK", "OPENBLAS_CORETYPE", "VGGTL_OCL_CONV", "VGGTL_OCL_AUTOTUNE", "VGGTL_OCL_TILE",
                     "VGGTL_OCL_WORKSPACE_MB", "VGGTL_CLBLAST_XGEMM", "VGGTL_OCL_TUNE_REPORT", "VGGTL_KERNEL_CACHE", "VGGTL_MPI_LIBRARY",
                     "VGGTL_HDF5_CHECK_SECONDS", "KERAS_HOME"] {
            XCTAssertTrue(names.contains(name), name)
        }
        for knob in Knobs.table {
            XCTAssertFalse(knob.type.isEmpty || knob.defaultValue.isEmpty || knob.help.isEmpty, knob.name)
        }
    }

    func testFoldersMPIAndHDF5Knobs() throws {
        var k = Knobs(environment: ["HOME": "/home/u"]).settings
        XCTAssertEqual(k.kerasHome.path, "/home/u/.keras")
        XCTAssertEqual(ImageNetWeights.cacheDirectory(kerasHome: k.kerasHome).path, "/home/u/.keras/models")
        XCTAssertEqual(k.opencl.kernelCache?.path, "/home/u/.cache/vggtl/kernels")
        XCTAssertNil(k.mpiLibrary)
        XCTAssertNil(k.hdf5CheckSeconds)
        XCTAssertNil(k.cpu.openblasCoreType)

        k = Knobs(environment: ["HOME": "/home/u", "KERAS_HOME": "/data/k", "XDG_CACHE_HOME": "/xdg", "VGGTL_MPI_LIBRARY": "/opt/mpi/libmpi.so",
                                "VGGTL_HDF5_CHECK_SECONDS": "5", "OPENBLAS_CORETYPE": "Haswell"]).settings
        XCTAssertEqual(ImageNetWeights.cacheDirectory(kerasHome: k.kerasHome).path, "/data/k/models")
        XCTAssertEqual(k.opencl.kernelCache?.path, "/xdg/vggtl/kernels")
        XCTAssertEqual(k.mpiLibrary, "/opt/mpi/libmpi.so")
        XCTAssertEqual(k.hdf5CheckSeconds, 5)
        XCTAssertEqual(k.cpu.openblasCoreType, "Haswell")

        XCTAssertEqual(Knobs(environment: ["VGGTL_KERNEL_CACHE": "/tmp/kc", "XDG_CACHE_HOME": "/xdg"]).settings.opencl.kernelCache?.path, "/tmp/kc")
        XCTAssertNil(Knobs(environment: ["VGGTL_KERNEL_CACHE": "off"]).settings.opencl.kernelCache)
        XCTAssertNil(Knobs(environment: ["VGGTL_KERNEL_CACHE": "0"]).settings.opencl.kernelCache)
        // Not a number: the time limit grows with the file, as without the variable.
        XCTAssertNil(Knobs(environment: ["VGGTL_HDF5_CHECK_SECONDS": "soon"]).settings.hdf5CheckSeconds)
    }

    func testAnInvalidValueIsKeptUntilTheKnobsAreNeededAndEmptyMeansUnset() throws {
        let knobs = Knobs(environment: ["VGGTL_OCL_TILE": "128x64", "VGGTL_CONV": "fastest", "VGGTL_WINOGRAD_CHUNK": "1000", "VGGTL_OCL_CONV": ""])
        // The other knobs still apply (`summary` or `--help` work with a bad value set)...
        XCTAssertEqual(knobs.settings.cpu.winogradChunkFloats, 1000)
        XCTAssertEqual(knobs.settings.opencl.convolution, .auto)
        XCTAssertNil(knobs.values["VGGTL_OCL_CONV"])
        // ...and opening a device reports the first bad one in table order.
        XCTAssertThrowsError(try knobs.validated()) { e in
            XCTAssertEqual("\(e)", "invalid value 'fastest' for VGGTL_CONV (environment variable): expected auto, im2col, im2colWholeTile, winograd2, winograd4")
        }
    }

    func testDevicesKnobsListsEveryKnobWithItsValueAndDefault() throws {
        let r = try run(["devices", "--knobs"], env: ["VGGTL_OCL_WORKSPACE_MB": "64", "VGGTL_CONV": "fastest"])
        XCTAssertEqual(r.status, 0, r.output)
        for knob in Knobs.table { XCTAssertTrue(r.output.contains("\(knob.name)=\(knob.type)"), "\(knob.name):\n\(r.output)") }
        XCTAssertTrue(r.output.contains("now 64; default 128"), r.output)
        XCTAssertTrue(r.output.contains("now fastest (invalid: "), r.output)
        XCTAssertTrue(r.output.contains("VGGTL_OCL_TILE=TMxTNxTK/WMxWN") && r.output.contains("now unset; default the device's tile table"), r.output)
    }

    /// The test harness's fault switches are read by vggtl-faults alone: in vggtl's environment
    /// (a stray variable in a user's shell) they change nothing.
    func testFaultSwitchesDoNothingInVGGTL() throws {
        let feat = try writeFeatures("feat")
        let env = ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "1", "VGGTL_TEST_CRASH_AT": "checkpoint-json", "VGGTL_TEST_DEVICE_FAIL_AFTER": "1",
                   "VGGTL_TEST_SCALE_BIAS_GRAD": "2", "VGGTL_TEST_MPI_FAIL": "0:1:die", "VGGTL_TEST_SAMPLE_LOG": path("samples.log")]
        let r = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "2"] + headFlags, env: env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).epoch, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("samples.log")))
    }
}
