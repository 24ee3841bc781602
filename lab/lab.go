// Package lab holds experiments that measure widely repeated claims about the
// Go runtime (and about our own packages) on the machine at hand, instead of
// repeating them. Each experiment lives in a file of its own and registers
// itself; `orderflow lab` lists and runs them.
//
// Every result states the claim with the figure quoted for it, what this
// machine measured (median and spread of several runs) and a verdict that
// the experiment computes from those numbers, with the condition it depends
// on. [Main] is the command line; until cmd/orderflow wires it,
//
//	go run ./lab/cmd/labreport [--quick] [--json|--markdown] [--all | NAME...]
//
// does the same, and scripts/lab-report.sh regenerates docs/lab.md.
// Experiments comparing against third-party code live in bench/peers/lab.
package lab

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Verdict is what the measurements say of a claim.
type Verdict string

// The verdicts an experiment may reach. Each is computed from the
// measurements of the run that reports it, never written in by hand.
const (
	// Holds: this machine's numbers agree with the claim.
	Holds Verdict = "holds"
	// Refuted: this machine's numbers contradict the claim.
	Refuted Verdict = "refuted"
	// Depends: the claim holds under some of the measured conditions and not
	// under others; Result.Condition says which.
	Depends Verdict = "depends"
)

// Options tune a run.
type Options struct {
	// Quick asks for a run of a few seconds at most, for tests and smoke runs.
	Quick bool
}

// Measurement is one measured quantity: the median of Runs repetitions and
// their spread (max - min), in Unit.
type Measurement struct {
	Name   string  `json:"name"`
	Median float64 `json:"median"`
	Spread float64 `json:"spread"`
	Unit   string  `json:"unit"`
	Runs   int     `json:"runs"`
}

// Result is what one experiment found.
type Result struct {
	Name         string        `json:"name"`
	Claim        string        `json:"claim"` // the claim, with the figure quoted for it
	Measurements []Measurement `json:"measurements"`
	Verdict      Verdict       `json:"verdict"`
	Condition    string        `json:"condition"` // what the verdict depends on (GOMAXPROCS, sizes, Go version…)
	Notes        string        `json:"notes,omitempty"`
	Table        string        `json:"table,omitempty"` // optional preformatted table (Markdown)
}

// Experiment is one registered experiment. Run must restore every global
// runtime setting it changes (GOMAXPROCS, GC percent, memory limit, profile
// rates) before it returns, and take the lock of [Exclusive] while it has
// them changed, so that two such experiments never overlap.
type Experiment struct {
	Name  string
	Title string
	Run   func(ctx context.Context, opt Options) (Result, error)
}

var (
	mu          sync.Mutex
	experiments = map[string]Experiment{}
)

// Register adds an experiment; files of this package call it from init.
func Register(e Experiment) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := experiments[e.Name]; dup {
		panic(fmt.Sprintf("lab: experiment %q registered twice", e.Name))
	}
	experiments[e.Name] = e
}

// All returns the experiments sorted by name.
func All() []Experiment {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Experiment, 0, len(experiments))
	for _, e := range experiments {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the experiment with the given name.
func Lookup(name string) (Experiment, bool) {
	mu.Lock()
	defer mu.Unlock()
	e, ok := experiments[name]
	return e, ok
}
