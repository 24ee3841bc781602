package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/synth"
)

// report prints the held-out evaluation of v2.1 and v3 as Markdown.
func report(w io.Writer, args []string, samples []Sample) error {
	champion, challenger := risk.V21(), risk.V3()
	ds := labelled(samples, champion, challenger)
	fraud := 0
	patterns := map[synth.Pattern][2]int{} // orders, fraud
	for _, s := range samples {
		c := patterns[s.Pattern]
		c[0]++
		if s.Fraud {
			fraud++
			c[1]++
		}
		patterns[s.Pattern] = c
	}
	fmt.Fprintf(w, "Produced by `go run ./risk/cmd/train %s`.\n\n", strings.Join(args, " "))
	fmt.Fprintf(w, "Held-out orders (after the warm-up): %d, of which fraud %d (%.2f %%).\n\n", len(samples), fraud, pct(fraud, len(samples)))

	fmt.Fprintln(w, "| version | thresholds (review / reject) | AUC | accuracy | fraud: approve / review / reject | legit: approve / review / reject | fraud stopped | legit stopped |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, m := range risk.Evaluate(ds, champion, challenger) {
		th := risk.ThresholdsOf(champion)
		if m.Version == challenger.Version() {
			th = risk.ThresholdsOf(challenger)
		}
		fmt.Fprintf(w, "| %s | %.4g / %.4g | %.4f | %.4f | %d / %d / %d | %d / %d / %d | %.1f %% | %.2f %% |\n",
			m.Version, th.Review, th.Reject, deref(m.AUC), deref(m.Accuracy),
			m.OnFraud.Approve, m.OnFraud.Review, m.OnFraud.Reject,
			m.OnLegit.Approve, m.OnLegit.Review, m.OnLegit.Reject,
			pct(m.OnFraud.Review+m.OnFraud.Reject, m.OnFraud.Total()),
			pct(m.OnLegit.Review+m.OnLegit.Reject, m.OnLegit.Total()))
	}

	// The same comparison at one operating point: v3 allowed to stop only as
	// many legitimate orders as v2.1 does.
	var legitStopped, n int
	for _, d := range ds {
		if !d.Fraud {
			n++
			if d.Decision != orderflow.DecisionApprove {
				legitStopped++
			}
		}
	}
	scores, labels := scoreAll(challenger, samples)
	same := risk.ThresholdsForFPR(scores, labels, float64(legitStopped)/float64(n), 0)
	caught, stopped := 0, 0
	for i, s := range scores {
		if s >= same.Review {
			if labels[i] {
				caught++
			} else {
				stopped++
			}
		}
	}
	fmt.Fprintf(w, "\nAt v2.1's share of legitimate orders stopped (%.2f %%), v3 (cut-off %.4g) stops %.1f %% of fraud and %.2f %% of legitimate orders.\n",
		pct(legitStopped, n), same.Review, pct(caught, len(samples)-n), pct(stopped, n))

	// Where the versions disagree on fraud, per-order routing would let a
	// retrying fraudster reach the version that approves.
	onlyV21, onlyV3 := 0, 0
	for _, d := range ds {
		if !d.Fraud {
			continue
		}
		a21 := d.Decision == orderflow.DecisionApprove
		a3 := risk.ThresholdsOf(challenger).Decide(d.ShadowScore) == orderflow.DecisionApprove
		switch {
		case a21 && !a3:
			onlyV21++
		case a3 && !a21:
			onlyV3++
		}
	}
	fmt.Fprintf(w, "\nFraud orders the versions disagree on: approved by v2.1 and stopped by v3 %d (%.1f %% of fraud), approved by v3 and stopped by v2.1 %d (%.1f %%).\n",
		onlyV21, pct(onlyV21, len(samples)-n), onlyV3, pct(onlyV3, len(samples)-n))

	fmt.Fprintln(w, "\nOrders not approved (reviewed or rejected), by pattern:")
	fmt.Fprintln(w, "\n| pattern | orders | fraud | v2.1 stops | v3 stops |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	names := make([]synth.Pattern, 0, len(patterns))
	for p := range patterns {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		stopped := [2]int{}
		for i, s := range samples {
			if s.Pattern != p {
				continue
			}
			if ds[i].Decision != orderflow.DecisionApprove {
				stopped[0]++
			}
			if risk.ThresholdsOf(challenger).Decide(ds[i].ShadowScore) != orderflow.DecisionApprove {
				stopped[1]++
			}
		}
		c := patterns[p]
		fmt.Fprintf(w, "| %s | %d | %d | %.1f %% | %.1f %% |\n", p, c[0], c[1], pct(stopped[0], c[0]), pct(stopped[1], c[0]))
	}
	fmt.Fprintln(w)
	return adversaryTable(w)
}

// labelled scores every sample with both versions, champion routed.
func labelled(samples []Sample, champion, challenger risk.Scorer) []orderflow.LabelledDecision {
	ds := make([]orderflow.LabelledDecision, len(samples))
	for i, s := range samples {
		score := champion.Score(s.Features)
		ds[i] = orderflow.LabelledDecision{Fraud: s.Fraud, RiskDecision: orderflow.RiskDecision{
			ModelVersion: champion.Version(), Score: score, Decision: risk.ThresholdsOf(champion).Decide(score),
			ShadowVersion: challenger.Version(), ShadowScore: challenger.Score(s.Features),
		}}
	}
	return ds
}

// AdversaryStarts are the adversary's first attempts in the report: 02:00
// and 22:00 in east-china.
var AdversaryStarts = []time.Time{
	time.Date(2026, 2, 1, 18, 0, 0, 0, time.UTC),
	time.Date(2026, 2, 1, 14, 0, 0, 0, time.UTC),
}

// AdversaryAttempts is how many attempts the adversary makes in the table.
const AdversaryAttempts = 12

// AdversaryRow is one attempt of the adversary, scored by both versions
// against counters that saw all earlier attempts.
type AdversaryRow struct {
	Order    orderflow.Order
	Features risk.Features
	Decision map[string]orderflow.Decision
	Score    map[string]float64
}

// Adversary plays synth.Adversary from start against the Assessor with the
// user routed to each version in turn (split 0 and Buckets), and returns the
// attempts.
func Adversary(ctx context.Context, start time.Time) ([]AdversaryRow, error) {
	rows := make([]AdversaryRow, AdversaryAttempts)
	for _, split := range []int{0, risk.Buckets} {
		r, err := risk.NewRouter("rollout", split)
		if err != nil {
			return nil, err
		}
		// Assess, spelled out, to show the features it used.
		c := risk.NewMemoryCounters(risk.MemoryConfig{})
		a := &risk.Assessor{Counters: c, Router: r, Champion: risk.V21(), Challenger: risk.V3()}
		adv := synth.NewAdversary(7, "u_adversary", 600_000, start)
		for i := range rows {
			o := adv.Attempt()
			snap, err := c.Observe(ctx, risk.Observation{
				OrderID: o.ID, UserID: o.UserID, DeviceID: o.DeviceID, AmountMinor: o.AmountMinor, At: o.CreatedAt,
			})
			if err != nil {
				return nil, err
			}
			f := risk.Extract(&o.Order, snap)
			d, err := a.Decide(ctx, o.Order, f)
			if err != nil {
				return nil, err
			}
			if rows[i].Decision == nil {
				rows[i] = AdversaryRow{Order: o.Order, Features: f, Decision: map[string]orderflow.Decision{}, Score: map[string]float64{}}
			}
			rows[i].Decision[d.ModelVersion], rows[i].Score[d.ModelVersion] = d.Decision, d.Score
		}
	}
	return rows, nil
}

func adversaryTable(w io.Writer) error {
	for _, start := range AdversaryStarts {
		rows, err := Adversary(context.Background(), start)
		if err != nil {
			return err
		}
		local := start.Add(risk.RegionOffset("east-china")).Format("15:04")
		fmt.Fprintf(w, "Adversarial retries, synth.NewAdversary(7, \"u_adversary\", 600000, %s) (%s local), the user routed to one version throughout:\n",
			start.Format(time.RFC3339), local)
		fmt.Fprintln(w, "\n| attempt | minutes | amount (CNY) | orders in 1 h | v2.1 score | v2.1 | v3 score | v3 |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for i, r := range rows {
			fmt.Fprintf(w, "| %d | %.1f | %.2f | %d | %.3f | %s | %.3f | %s |\n", i+1,
				r.Order.CreatedAt.Sub(rows[0].Order.CreatedAt).Minutes(), float64(r.Order.AmountMinor)/100, r.Features.Orders1h,
				r.Score["v2.1"], r.Decision["v2.1"], r.Score["v3"], r.Decision["v3"])
		}
		fmt.Fprintln(w)
	}
	return nil
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
