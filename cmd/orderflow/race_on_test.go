//go:build race

package main

// raceEnabled says the race detector is on: SQLite (transpiled C) runs many
// times slower under it, so end-to-end tests give the pipeline more time per
// callback attempt instead of measuring the detector.
const raceEnabled = true
