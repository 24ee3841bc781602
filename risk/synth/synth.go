// Package synth generates synthetic orders with a hidden fraud label, for
// training and evaluating the risk models and for load generation. The
// stream is deterministic for a seed: the same Config gives the same orders,
// byte for byte, on every machine.
//
// # The generative model
//
// Time runs from Config.Start; orders come out in creation-time order.
//
// Legitimate users (Config.Users at the start, Config.NewUsersPerDay signing
// up later) each have habits drawn once: a region (east-, north-, south-china
// in CNY, us-east in USD, eu-west in EUR), a habitual amount (ln of the
// amount lognormal around 200 major units, σ 0.8 across users, σ 0.35 for one
// user's orders), one to three devices, a home IP, an order rate (lognormal,
// median 0.5 a day) and a habitual local hour (uniform 9–22, σ 1.5 h). Each
// order is placed at the habitual hour of a day an exponential gap later.
// Noise keeps the problem honest: 4 % of orders are a follow-up 2–20 minutes
// after the previous one, 3 % a splurge (amount × e^N(1.5, 0.5)), 1 % on a new
// device, 2 % at night, and 2 % of users are employees (internal). A legit
// order is fraud with hidden probability 0.002 (friendly fraud).
//
// Fraud comes in episodes, Config.FraudEpisodesPerDay of them on average (a
// Poisson process), each one pattern:
//
//   - velocity burst (25 %): an existing user's account is taken over; 4–12
//     orders a few minutes apart from one new device, amounts about twice the
//     victim's habit, at any hour; fraud probability 0.9 per order.
//   - unusual amount (20 %): a takeover with one or two orders at about 12×
//     the victim's habit, new device, any hour; 0.85.
//   - device churn (20 %): a new account placing 3–8 orders about 40 minutes
//     apart, each from a new device; 0.9.
//   - night (15 %): a new account placing 2–4 orders between 01:00 and 05:00
//     local time; 0.8.
//   - adversarial retry (20 %): a new account that places a large order and
//     retries 4–15 times, 30 s–3 min apart, each time lowering the amount by
//     1–7 % hoping to slip under a threshold; 0.95. Adversary plays the same
//     pattern interactively, retrying until approved.
//
// Each order's label Fraud is drawn from its pattern's hidden probability,
// which is also exposed (FraudProb) for analysis; a model sees neither.
//
// # Time when replaying against the service
//
// The features are computed in order time. Training replays CreatedAt as
// generated. The order API stamps created_at itself, so a load generator
// that sends the stream faster than its synthetic clock compresses every
// user's history into less time: velocity counts grow and the fraud patterns
// blur into the legitimate ones. To keep the features as trained, pace the
// orders by the differences of CreatedAt (divided by a speed-up only as far
// as the windows allow: a 1 h window tolerates little), or use more users
// (Config.Users) so each one orders rarely even at a high total rate.
package synth

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/orderflow/orderflow"
)

// Pattern names how an order was generated.
type Pattern string

// The patterns of the generative model (see the package documentation).
const (
	Legit         Pattern = "legit"
	Burst         Pattern = "velocity_burst"
	UnusualAmount Pattern = "unusual_amount"
	DeviceChurn   Pattern = "device_churn"
	Night         Pattern = "night"
	Adversarial   Pattern = "adversarial_retry"
)

// Order is a synthetic order with its hidden truth. Order.ID is unique within
// a stream ("ord_s<seed>_<seq>"); Order.Status is pending_review and
// CreatedAt the synthetic creation time.
type Order struct {
	orderflow.Order
	// Seq numbers the stream's orders from 1.
	Seq int64
	// Pattern is how the order was generated, FraudProb the hidden
	// probability its label was drawn with, Fraud the label.
	Pattern   Pattern
	FraudProb float64
	Fraud     bool
}

// NewOrder returns the request that creates o through the API.
func (o *Order) NewOrder() orderflow.NewOrder {
	return orderflow.NewOrder{
		UserID: o.UserID, AmountMinor: o.AmountMinor, Currency: o.Currency, Region: o.Region,
		Items: o.Items, Internal: o.Internal, IP: o.IP, DeviceID: o.DeviceID,
	}
}

// Config configures a Generator. The zero value works.
type Config struct {
	// Seed selects the stream.
	Seed uint64
	// Users is the number of legitimate users at the start; 0 means 10,000.
	Users int
	// NewUsersPerDay is the rate of legitimate sign-ups; 0 means Users/50.
	NewUsersPerDay float64
	// FraudEpisodesPerDay is the rate of fraud episodes; 0 means Users/250,
	// which makes about 4 % of orders fraud.
	FraudEpisodesPerDay float64
	// Start is the time of the stream's beginning; zero means
	// 2026-01-01T00:00:00Z.
	Start time.Time
	// UserPrefix starts every user id (default "u"), so streams sent to one
	// service by separate runs need not share users.
	UserPrefix string
}

// Generator produces the stream of a Config. It is not safe for concurrent
// use.
type Generator struct {
	cfg    Config
	rng    *rand.Rand
	queue  actorQueue
	users  []*legitUser
	seq    int64
	nextID int64 // actor and user numbering
}

// New returns the generator of cfg's stream.
func New(cfg Config) *Generator {
	if cfg.Users <= 0 {
		cfg.Users = 10_000
	}
	if cfg.NewUsersPerDay <= 0 {
		cfg.NewUsersPerDay = float64(cfg.Users) / 50
	}
	if cfg.FraudEpisodesPerDay <= 0 {
		cfg.FraudEpisodesPerDay = float64(cfg.Users) / 250
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if cfg.UserPrefix == "" {
		cfg.UserPrefix = "u"
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))}
	for range cfg.Users {
		u := g.newLegit()
		// Spread first orders over one mean gap so the start is not a wave.
		u.next = u.habitualTime(g.rng, cfg.Start.Add(time.Duration(g.rng.Float64()/u.rate*float64(day))))
		g.push(u)
	}
	su, ep := &signups{}, &episodes{}
	su.next = cfg.Start.Add(g.expGap(cfg.NewUsersPerDay))
	ep.next = cfg.Start.Add(g.expGap(cfg.FraudEpisodesPerDay))
	g.push(su)
	g.push(ep)
	return g
}

// Generate returns the first n orders of cfg's stream.
func Generate(cfg Config, n int) []Order {
	g := New(cfg)
	out := make([]Order, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// Next returns the next order of the stream, in creation-time order. The
// stream never ends.
func (g *Generator) Next() Order {
	for {
		a := heap.Pop(&g.queue).(actor)
		o, ok := a.step(g)
		if !a.done() {
			heap.Push(&g.queue, a)
		}
		if ok {
			g.seq++
			o.Seq = g.seq
			o.ID = "ord_s" + strconv.FormatUint(g.cfg.Seed, 10) + "_" + strconv.FormatInt(g.seq, 10)
			o.Status = orderflow.StatusPendingReview
			o.Version = 1
			o.UpdatedAt = o.CreatedAt
			o.Fraud = g.rng.Float64() < o.FraudProb
			return o
		}
	}
}

const day = 24 * time.Hour

// expGap returns an exponential gap for a Poisson process of rate per day.
func (g *Generator) expGap(perDay float64) time.Duration {
	return time.Duration(g.rng.ExpFloat64() / perDay * float64(day))
}

func (g *Generator) push(a actor) {
	g.nextID++
	a.setID(g.nextID)
	heap.Push(&g.queue, a)
}

func (g *Generator) newUserID() string {
	g.nextID++
	return g.cfg.UserPrefix + strconv.FormatInt(g.nextID, 10)
}

// region is where a user lives: its name, currency, and the ln of a typical
// order in minor units.
type region struct {
	name, currency string
	typical        float64
}

var regions = []struct {
	region
	weight float64
}{
	{region{"east-china", "CNY", math.Log(200 * 100)}, 0.4},
	{region{"north-china", "CNY", math.Log(200 * 100)}, 0.2},
	{region{"south-china", "CNY", math.Log(200 * 100)}, 0.2},
	{region{"us-east", "USD", math.Log(40 * 100)}, 0.1},
	{region{"eu-west", "EUR", math.Log(35 * 100)}, 0.1},
}

var regionOffset = map[string]time.Duration{
	"east-china": 8 * time.Hour, "north-china": 8 * time.Hour, "south-china": 8 * time.Hour,
	"us-east": -5 * time.Hour, "eu-west": 0,
}

func (g *Generator) region() region {
	x := g.rng.Float64()
	for _, r := range regions {
		if x < r.weight {
			return r.region
		}
		x -= r.weight
	}
	return regions[0].region
}

func (g *Generator) device() string { return fmt.Sprintf("d-%012x", g.rng.Uint64()>>16) }

func (g *Generator) ip() string {
	v := g.rng.Uint32()
	return fmt.Sprintf("%d.%d.%d.%d", 1+v>>24%223, v>>16&0xff, v>>8&0xff, 1+v&0xff%254)
}

// items returns 1–lines lines of quantity 1–qty.
func (g *Generator) items(lines, qty int) []orderflow.Item {
	its := make([]orderflow.Item, 1+g.rng.IntN(lines))
	for i := range its {
		its[i] = orderflow.Item{SKU: "sku-" + strconv.Itoa(1+g.rng.IntN(500)), Qty: int64(1 + g.rng.IntN(qty))}
	}
	return its
}

// amount returns e^N(mu, sigma) minor units, within the API's limits.
func (g *Generator) amount(mu, sigma float64) int64 {
	a := math.Exp(mu + sigma*g.rng.NormFloat64())
	return int64(min(max(a, 1), orderflow.MaxAmountMinor))
}

// atLocalHour returns the first time after t at local hour h (fractional)
// in the region.
func atLocalHour(t time.Time, regionName string, h float64) time.Time {
	off := regionOffset[regionName]
	local := t.Add(off)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
	at := midnight.Add(time.Duration(h * float64(time.Hour))).Add(-off)
	if !at.After(t) {
		at = at.Add(day)
	}
	return at
}
