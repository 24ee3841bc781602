//go:build !race

package lab

// raceEnabled tells reports that the numbers come from a -race build, where
// every memory access is instrumented and timings mean little.
const raceEnabled = false
