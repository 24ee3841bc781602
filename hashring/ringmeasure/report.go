package ringmeasure

import (
	"fmt"
	"strings"
)

// Report is the standard set of measurements for one implementation: balance
// at 3 and 10 members and movement from 10 to 11.
type Report struct {
	Impl     string
	VNodes   int // as passed to Build; 0 = the implementation's default
	Balance  []Balance
	Movement Movement
}

// Measure runs the standard set for impl.
func Measure(impl Impl, vnodes int, cfg Config) Report {
	return Report{
		Impl:   impl.Name,
		VNodes: vnodes,
		Balance: []Balance{
			MeasureBalance(impl, 3, vnodes, cfg),
			MeasureBalance(impl, 10, vnodes, cfg),
		},
		Movement: MeasureMovement(impl, 10, 11, vnodes, cfg),
	}
}

func vnodesLabel(v int) string {
	if v == 0 {
		return "default"
	}
	return fmt.Sprint(v)
}

// Markdown formats reports as one table: max/avg load at 3 and 10 members
// (mean, p95, max over the member sets) and movement from 10 to 11 members.
func Markdown(reports []Report) string {
	var b strings.Builder
	b.WriteString("| implementation | vnodes | 3 members max/avg mean | p95 | max | 10 members max/avg mean | p95 | max | moved 10→11 mean | p95 | keys moved between old members |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range reports {
		fmt.Fprintf(&b, "| %s | %s |", r.Impl, vnodesLabel(r.VNodes))
		for _, bal := range r.Balance {
			fmt.Fprintf(&b, " %.3f | %.3f | %.3f |", bal.MaxAvg.Mean, bal.MaxAvg.P95, bal.MaxAvg.Max)
		}
		m := r.Movement
		fmt.Fprintf(&b, " %.2f%% | %.2f%% | %d |\n", m.Moved.Mean, m.Moved.P95, m.BetweenStayers)
	}
	return b.String()
}

// NamedBalance labels a Balance for ClaimMarkdown.
type NamedBalance struct {
	Impl string
	Balance
}

// ClaimMarkdown formats the quantities of the often quoted claim "3 members,
// 100,000 keys: 1 virtual node → max load 78.3%, stddev 22.1 points; 128 →
// max 34.6%, stddev 4.8": the most loaded member's share and the standard
// deviation of the shares, as median and range over the member sets.
func ClaimMarkdown(rows []NamedBalance) string {
	var b strings.Builder
	b.WriteString("| implementation | vnodes | members | max share median | p95 | min–max | stddev (points) median | p95 | min–max |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f%% | %.1f%% | %.1f–%.1f%% | %.1f | %.1f | %.1f–%.1f |\n",
			r.Impl, vnodesLabel(r.VNodes), r.Members,
			r.MaxShare.Median, r.MaxShare.P95, r.MaxShare.Min, r.MaxShare.Max,
			r.StdDev.Median, r.StdDev.P95, r.StdDev.Min, r.StdDev.Max)
	}
	return b.String()
}
