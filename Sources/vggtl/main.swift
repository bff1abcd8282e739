import Foundation
import VGGTLCLI

// The one place vggtl reads its environment: the knobs (VGGTLCLI/Knobs.swift) and the MPI
// launcher's rank variables come from it, and child processes get it.
runVGGTL(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
