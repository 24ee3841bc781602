// Package ringmeasure measures key-to-member placement schemes — load balance
// and movement on membership change — by one method, so that our ring (in
// `orderflow lab ring`) and peer libraries (in bench/peers/hashring) are judged
// by the same numbers. An implementation is seen only through a Locate
// function, so anything that maps a key to a member can be measured: rings,
// jump hash, rendezvous hashing.
//
// Keys are "order-1" … "order-N"; member sets are deterministic address-like
// names (MemberSet), different for each set so that results do not hinge on
// one lucky choice of names.
package ringmeasure

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Locate maps a key to a member name.
type Locate func(key string) string

// Impl is a placement scheme under measurement.
type Impl struct {
	// Name labels the implementation in tables.
	Name string
	// Build returns a Locate over members, with vnodes virtual nodes per
	// member; 0 asks for the implementation's own default. Schemes without
	// virtual nodes ignore vnodes. Build may be called many times; each call
	// must return an independent placement.
	Build func(members []string, vnodes int) Locate
	// VirtualNodes reports whether vnodes means anything to Build.
	VirtualNodes bool
}

// Config sizes a measurement.
type Config struct {
	Keys int // keys per set ("order-1" … "order-Keys")
	Sets int // different member sets
}

// Full is the measurement of record: 100,000 keys over 50 member sets.
var Full = Config{Keys: 100_000, Sets: 50}

// Quick is a smoke-sized measurement for tests and `orderflow lab -quick`.
var Quick = Config{Keys: 20_000, Sets: 8}

// Keys returns "order-1" … "order-n". The keys are substrings of one
// contiguous string, in order, so walking them streams through memory the
// way a batch of parsed ids would, instead of chasing n separate
// allocations: a lookup benchmark then measures the ring's memory traffic,
// not the key slice's, and charges every implementation the same.
func Keys(n int) []string {
	var b strings.Builder
	ends := make([]int, n)
	for i := range ends {
		b.WriteString("order-")
		b.WriteString(strconv.Itoa(i + 1))
		ends[i] = b.Len()
	}
	all := b.String()
	ks := make([]string, n)
	start := 0
	for i, end := range ends {
		ks[i], start = all[start:end], end
	}
	return ks
}

// MemberSet returns the n member names of set number set: address-like names
// such as "10.3.0.7:8080" (set 3, member 7). Sets differ in every name; the
// first k names of a set are the same whatever n is, so a larger set extends a
// smaller one.
func MemberSet(set, n int) []string {
	ms := make([]string, n)
	for i := range ms {
		ms[i] = fmt.Sprintf("10.%d.%d.%d:8080", set, i/256, i%256)
	}
	return ms
}

// Summary describes one quantity over the member sets: mean, median, 95th
// percentile (nearest rank), minimum and maximum, and the values themselves.
type Summary struct {
	Mean, Median, P95, Min, Max float64
	Values                      []float64 // one per member set, ascending
}

// AtLeast returns the fraction of member sets whose value is >= v: where a
// quoted figure falls among the sets.
func (s Summary) AtLeast(v float64) float64 {
	if len(s.Values) == 0 {
		return 0
	}
	i, _ := slices.BinarySearch(s.Values, v)
	return float64(len(s.Values)-i) / float64(len(s.Values))
}

func summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	rank := int(math.Ceil(0.95*float64(len(s)))) - 1
	return Summary{
		Mean:   sum / float64(len(s)),
		Median: median(s),
		P95:    s[rank],
		Min:    s[0],
		Max:    s[len(s)-1],
		Values: s,
	}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Balance is how evenly keys spread over Members members.
type Balance struct {
	Members int
	VNodes  int
	// MaxAvg is the most loaded member's keys divided by the average.
	MaxAvg Summary
	// MaxShare is the most loaded member's share of the keys, in percent.
	MaxShare Summary
	// StdDev is the population standard deviation of the members' shares,
	// in percentage points.
	StdDev Summary
}

// MeasureBalance places cfg.Keys keys on cfg.Sets member sets of the given
// size and summarizes the spread.
func MeasureBalance(impl Impl, members, vnodes int, cfg Config) Balance {
	keys := Keys(cfg.Keys)
	loads := make([][]int, 0, cfg.Sets)
	for set := range cfg.Sets {
		names := MemberSet(set, members)
		loc := impl.Build(names, vnodes)
		count := make(map[string]int, members)
		for _, k := range keys {
			count[loc(k)]++
		}
		l := make([]int, members)
		for i, n := range names {
			l[i] = count[n]
		}
		loads = append(loads, l)
	}
	return BalanceFromLoads(members, vnodes, cfg.Keys, loads)
}

// BalanceFromLoads summarizes placements made elsewhere exactly as
// MeasureBalance would: loads[set][i] is how many of keys keys member i of
// MemberSet(set, members) holds. It lets a caller that places keys anyway
// (a stateful scheme measured for movement too) take the balance from the
// same placement instead of placing every key a second time.
func BalanceFromLoads(members, vnodes, keys int, loads [][]int) Balance {
	var maxAvg, maxShare, std []float64
	for _, l := range loads {
		most, sq := 0, 0.0
		for _, c := range l {
			most = max(most, c)
			d := 100*float64(c)/float64(keys) - 100/float64(members)
			sq += d * d
		}
		avg := float64(keys) / float64(members)
		maxAvg = append(maxAvg, float64(most)/avg)
		maxShare = append(maxShare, 100*float64(most)/float64(keys))
		std = append(std, math.Sqrt(sq/float64(members)))
	}
	return Balance{
		Members:  members,
		VNodes:   vnodes,
		MaxAvg:   summarize(maxAvg),
		MaxShare: summarize(maxShare),
		StdDev:   summarize(std),
	}
}

// Movement is what happens to placements when a set of From members grows
// (or shrinks) to To members that share the first min(From, To) names.
type Movement struct {
	From, To int
	VNodes   int
	// Moved is the fraction of keys whose member changed, in percent.
	Moved Summary
	// Ideal is the least movement any scheme can achieve, in percent:
	// |To-From| / max(From, To).
	Ideal float64
	// BetweenStayers counts, over all sets, keys that moved from one member
	// present before and after to another such member. Consistent hashing
	// promises zero.
	BetweenStayers int
}

// MeasureMovement places keys before and after the membership change on each
// member set and counts what moved.
func MeasureMovement(impl Impl, from, to, vnodes int, cfg Config) Movement {
	keys := Keys(cfg.Keys)
	stay := min(from, to)
	mv := Movement{From: from, To: to, VNodes: vnodes}
	mv.Ideal = 100 * float64(max(from, to)-stay) / float64(max(from, to))
	var moved []float64
	for set := range cfg.Sets {
		names := MemberSet(set, max(from, to))
		before := impl.Build(names[:from], vnodes)
		after := impl.Build(names[:to], vnodes)
		stayers := make(map[string]bool, stay)
		for _, n := range names[:stay] {
			stayers[n] = true
		}
		n := 0
		for _, k := range keys {
			a, b := before(k), after(k)
			if a == b {
				continue
			}
			n++
			if stayers[a] && stayers[b] {
				mv.BetweenStayers++
			}
		}
		moved = append(moved, 100*float64(n)/float64(len(keys)))
	}
	mv.Moved = summarize(moved)
	return mv
}
