import Foundation
import VGGTL
import VGGTLCLI

// vggtl-faults: vggtl with faults put in through the CLI's seams, for the tests that need a
// real process to fail (ReliabilityTests, VerifyTests, DistributedTests). It reads its own
// environment; unset, it is vggtl. vggtl itself reads none of these.
//
//   VGGTL_TEST_INTERRUPT_AFTER_BATCHES=N[:TERM|:WAIT]  after this process's N-th training batch,
//       raise SIGINT (SIGTERM) through the real handler, or print "vggtl-test: waiting for a
//       signal" and wait (up to a minute) for one from outside
//   VGGTL_TEST_CRASH_AT=checkpoint-arrays[:N] | checkpoint-json[:N]   SIGKILL the N-th time
//       (default 1st) a checkpoint save reaches that stage
//   VGGTL_TEST_DEVICE_FAIL_AFTER=N   the device call after the N-th fails as a lost OpenCL
//       device's does (CL_OUT_OF_RESOURCES); later work is skipped, reads give NaN
//   VGGTL_TEST_SCALE_BIAS_GRAD=F     every bias gradient is F times too large (a planted wrong
//       kernel for --verify to catch)
//   VGGTL_TEST_MPI_FAIL=RANK:STEP:die|hang   under mpirun, rank RANK at its STEP-th training
//       step (from 1) kills itself with SIGKILL, or stops answering
//   VGGTL_TEST_SAMPLE_LOG=FILE       every training sample this process trains on is appended
//       to FILE as "epoch index" (O_APPEND: ranks may share the file)

let environment = ProcessInfo.processInfo.environment
var seams = Seams()

if let text = environment["VGGTL_TEST_DEVICE_FAIL_AFTER"], let calls = Int(text) {
    seams.wrapDevice = { LostDevice($0, after: calls) }
} else if let text = environment["VGGTL_TEST_SCALE_BIAS_GRAD"], let factor = Float(text) {
    seams.wrapDevice = { BiasScalingDevice($0, factor: factor) }
}
if let text = environment["VGGTL_TEST_INTERRUPT_AFTER_BATCHES"], let hook = InterruptAfterBatches(parsing: text) {
    seams.trainingCallbacks.append(hook)
}
if let text = environment["VGGTL_TEST_CRASH_AT"], let hook = CrashAtCheckpointStage(parsing: text) {
    seams.trainingCallbacks.append(hook)
}
if let text = environment["VGGTL_TEST_MPI_FAIL"],
   let hook = RankFailure(parsing: text, rank: MPILaunch.fromEnvironment(environment)?.rank ?? 0) {
    seams.trainingCallbacks.append(hook)
}
if let path = environment["VGGTL_TEST_SAMPLE_LOG"], let hook = SampleLog(path: path) {
    seams.trainingCallbacks.append(hook)
}

runVGGTL(arguments: Array(CommandLine.arguments.dropFirst()), environment: environment, seams: seams)
