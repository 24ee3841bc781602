package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrUnknown is returned by Main for an experiment name that is not
// registered.
var ErrUnknown = errors.New("lab: unknown experiment")

// Main is `orderflow lab`: args are the arguments after "lab".
//
//	orderflow lab                       list the experiments
//	orderflow lab NAME...               run them, text output
//	orderflow lab --all                 run every experiment
//	orderflow lab --json NAME           JSON for machines
//	orderflow lab --markdown --all      the report in docs/lab.md
//	orderflow lab --quick ...           a few seconds per experiment
//
// Experiments run one after another: several of them change process-wide
// runtime settings and would disturb each other.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print a JSON report")
	asMD := fs.Bool("markdown", false, "print a Markdown report (docs/lab.md)")
	all := fs.Bool("all", false, "run every experiment")
	quick := fs.Bool("quick", false, "small, fast runs (seconds)")
	// Names and flags may be interleaved: `lab gc-pacing --quick`.
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("lab: %w (usage: lab [--json|--markdown] [--quick] [--all | NAME...])", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		names = append(names, rest[0])
		args = rest[1:]
	}
	if *asJSON && *asMD {
		return errors.New("lab: --json and --markdown exclude each other")
	}

	var exps []Experiment
	switch {
	case *all:
		exps = All()
	case len(names) == 0:
		return list(stdout)
	default:
		for _, n := range names {
			e, ok := Lookup(n)
			if !ok {
				return fmt.Errorf("%w %q; known: %s", ErrUnknown, n, strings.Join(experimentNames(), ", "))
			}
			exps = append(exps, e)
		}
	}

	opt := Options{Quick: *quick}
	env := CurrentEnv(opt)
	var results []Result
	for _, e := range exps {
		r, err := RunOne(ctx, e, opt)
		if err != nil {
			return err
		}
		results = append(results, r)
		if !*asJSON && !*asMD {
			if err := WriteText(stdout, r); err != nil {
				return err
			}
		}
	}
	switch {
	case *asJSON:
		return WriteJSON(stdout, Report{Env: env, Results: results})
	case *asMD:
		if err := WriteMarkdownHeader(stdout, env, results); err != nil {
			return err
		}
		for _, r := range results {
			if err := WriteMarkdown(stdout, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// RunOne runs an experiment and fills in its name when the experiment left
// it empty, so that every result says where it came from.
func RunOne(ctx context.Context, e Experiment, opt Options) (Result, error) {
	r, err := e.Run(ctx, opt)
	if err != nil {
		return r, fmt.Errorf("lab: %s: %w", e.Name, err)
	}
	if r.Name == "" {
		r.Name = e.Name
	}
	return r, nil
}

func list(w io.Writer) error {
	ew := &errWriter{w: w}
	for _, e := range All() {
		ew.printf("%-16s %s\n", e.Name, e.Title)
	}
	ew.printf("\nrun one with `orderflow lab NAME` (--quick, --json, --markdown, --all)\n")
	return ew.err
}

func experimentNames() []string {
	var out []string
	for _, e := range All() {
		out = append(out, e.Name)
	}
	return out
}
