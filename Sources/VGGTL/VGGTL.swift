// The whole engine under one name, for Swift users and the packages beside this one
// (Benchmarks/, Fuzz/). Code in this package imports the rooms it needs instead.
@_exported import VGGTLTensors
@_exported import VGGTLCPU
@_exported import VGGTLOpenCL
@_exported import VGGTLBackends
@_exported import VGGTLNN
@_exported import VGGTLOptim
@_exported import VGGTLData
@_exported import VGGTLIO
@_exported import VGGTLModels
@_exported import VGGTLTrain
@_exported import VGGTLDistributed
@_exported import VGGTLBench
