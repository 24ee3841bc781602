package synth

import (
	"math"
	"strconv"
	"time"

	"github.com/orderflow/orderflow"
)

// actor is anything that places orders over time: a user, a fraud episode,
// or a process that spawns them.
type actor interface {
	// when is the time of the actor's next step.
	when() time.Time
	// step performs it: an order (ok) or only a change of state. It sets the
	// next step's time.
	step(g *Generator) (o Order, ok bool)
	// done reports whether the actor will never step again.
	done() bool
	id() int64
	setID(int64)
}

type base struct {
	next time.Time
	n    int64
	fin  bool
}

func (b *base) when() time.Time { return b.next }
func (b *base) done() bool      { return b.fin }
func (b *base) id() int64       { return b.n }
func (b *base) setID(n int64)   { b.n = n }

// actorQueue is a min-heap of actors by next step time, ties by id, so the
// stream does not depend on anything but the seed.
type actorQueue []actor

func (q actorQueue) Len() int { return len(q) }
func (q actorQueue) Less(i, j int) bool {
	a, b := q[i].when(), q[j].when()
	if a.Equal(b) {
		return q[i].id() < q[j].id()
	}
	return a.Before(b)
}
func (q actorQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *actorQueue) Push(x any)   { *q = append(*q, x.(actor)) }
func (q *actorQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return x
}

// legitUser orders by habit; see the package documentation.
type legitUser struct {
	base
	userID   string
	region   region
	mu       float64 // ln of the habitual amount
	devices  []string
	ip       string
	rate     float64 // orders per day
	hour     float64 // habitual local hour
	internal bool
}

func (g *Generator) newLegit() *legitUser {
	r := g.region()
	u := &legitUser{
		userID:   g.newUserID(),
		region:   r,
		mu:       r.typical + 0.8*g.rng.NormFloat64(),
		ip:       g.ip(),
		rate:     math.Exp(math.Log(0.5) + 0.7*g.rng.NormFloat64()),
		hour:     9 + 13*g.rng.Float64(),
		internal: g.rng.Float64() < 0.02,
	}
	nd := 1
	switch x := g.rng.Float64(); {
	case x < 0.05:
		nd = 3
	case x < 0.30:
		nd = 2
	}
	for range nd {
		u.devices = append(u.devices, g.device())
	}
	g.users = append(g.users, u)
	return u
}

// habitualTime returns the user's next habitual time after t.
func (u *legitUser) habitualTime(rng interface{ NormFloat64() float64 }, t time.Time) time.Time {
	h := math.Mod(u.hour+1.5*rng.NormFloat64()+48, 24)
	return atLocalHour(t, u.region.name, h)
}

func (u *legitUser) step(g *Generator) (Order, bool) {
	at := u.next
	o := Order{Pattern: Legit, FraudProb: 0.002}
	o.UserID, o.Region, o.Currency, o.Internal, o.IP = u.userID, u.region.name, u.region.currency, u.internal, u.ip
	o.CreatedAt = at
	o.AmountMinor = g.amount(u.mu, 0.35)
	if g.rng.Float64() < 0.03 { // a splurge
		o.AmountMinor = g.amount(u.mu+1.5, 0.5)
	}
	if g.rng.Float64() < 0.01 { // a new phone
		u.devices = append(u.devices, g.device())
		o.DeviceID = u.devices[len(u.devices)-1]
	} else {
		o.DeviceID = u.devices[g.rng.IntN(len(u.devices))]
	}
	o.Items = g.items(3, 2)

	switch x := g.rng.Float64(); {
	case x < 0.04: // a follow-up in the same session
		u.next = at.Add(time.Duration((2 + 18*g.rng.Float64()) * float64(time.Minute)))
	case x < 0.06: // a sleepless night
		u.next = atLocalHour(at.Add(g.expGap(u.rate)), u.region.name, 1+4*g.rng.Float64())
	default:
		u.next = u.habitualTime(g.rng, at.Add(g.expGap(u.rate)))
	}
	return o, true
}

// signups adds legitimate users over time.
type signups struct{ base }

func (s *signups) step(g *Generator) (Order, bool) {
	u := g.newLegit()
	u.next = s.next.Add(time.Duration(g.rng.Float64() * float64(time.Hour)))
	g.push(u)
	s.next = s.next.Add(g.expGap(g.cfg.NewUsersPerDay))
	return Order{}, false
}

// episodes starts fraud episodes.
type episodes struct{ base }

func (e *episodes) step(g *Generator) (Order, bool) {
	g.push(g.newEpisode(e.next))
	e.next = e.next.Add(g.expGap(g.cfg.FraudEpisodesPerDay))
	return Order{}, false
}

// episode is one fraud episode: a sequence of orders by one fraudster.
type episode struct {
	base
	pattern  Pattern
	prob     float64
	userID   string
	region   region
	mu       float64
	device   string
	ip       string
	left     int           // orders still to place
	gap      time.Duration // mean gap between orders
	churn    bool          // a new device for every order
	night    bool          // orders only between 01:00 and 05:00 local
	shrink   bool          // each order a little smaller (adversarial)
	lastAmnt int64
}

func (g *Generator) newEpisode(at time.Time) *episode {
	e := &episode{device: g.device(), ip: g.ip()}
	takeover := func() {
		v := g.users[g.rng.IntN(len(g.users))]
		e.userID, e.region, e.mu = v.userID, v.region, v.mu
	}
	newAccount := func() {
		e.userID, e.region = g.newUserID(), g.region()
		e.mu = e.region.typical + 0.5 + 0.7*g.rng.NormFloat64()
	}
	switch x := g.rng.Float64(); {
	case x < 0.25:
		e.pattern, e.prob = Burst, 0.9
		takeover()
		e.mu += 0.7
		e.left, e.gap = 4+g.rng.IntN(9), 4*time.Minute
	case x < 0.45:
		e.pattern, e.prob = UnusualAmount, 0.85
		takeover()
		e.mu += 2.5
		e.left, e.gap = 1+g.rng.IntN(2), 15*time.Minute
	case x < 0.65:
		e.pattern, e.prob = DeviceChurn, 0.9
		newAccount()
		e.left, e.gap, e.churn = 3+g.rng.IntN(6), 40*time.Minute, true
	case x < 0.80:
		e.pattern, e.prob = Night, 0.8
		newAccount()
		e.mu += 0.5
		e.left, e.gap, e.night = 2+g.rng.IntN(3), 30*time.Minute, true
		at = atLocalHour(at, e.region.name, 1+2*g.rng.Float64())
	default:
		e.pattern, e.prob = Adversarial, 0.95
		newAccount()
		e.mu = e.region.typical + 3.3 // about 27× the typical order
		e.left, e.shrink = 5+g.rng.IntN(12), true
	}
	e.next = at
	return e
}

func (e *episode) step(g *Generator) (Order, bool) {
	at := e.next
	o := Order{Pattern: e.pattern, FraudProb: e.prob}
	o.UserID, o.Region, o.Currency, o.IP = e.userID, e.region.name, e.region.currency, e.ip
	o.CreatedAt = at
	if e.churn {
		e.device = g.device()
	}
	o.DeviceID = e.device
	switch {
	case e.shrink && e.lastAmnt > 0:
		o.AmountMinor = max(int64(float64(e.lastAmnt)*(0.93+0.06*g.rng.Float64())), 1)
	default:
		o.AmountMinor = g.amount(e.mu, 0.3)
	}
	e.lastAmnt = o.AmountMinor
	o.Items = g.items(4, 5)

	e.left--
	e.fin = e.left <= 0
	switch {
	case e.shrink:
		e.next = at.Add(time.Duration((30 + 150*g.rng.Float64()) * float64(time.Second)))
	case e.night:
		next := at.Add(time.Duration(g.rng.ExpFloat64() * float64(e.gap)))
		if h := localHour(next, e.region.name); h < 1 || h >= 5 {
			next = atLocalHour(next, e.region.name, 1+3*g.rng.Float64())
		}
		e.next = next
	default:
		e.next = at.Add(time.Duration(g.rng.ExpFloat64() * float64(e.gap)))
	}
	return o, true
}

func localHour(t time.Time, regionName string) int {
	return t.Add(regionOffset[regionName]).UTC().Hour()
}

// Adversary plays the adversarial-retry pattern against a live decision:
// a new account places a large order and, while it is not approved, retries
// a little later (30 s–3 min) with an amount 1–7 % lower, from the same
// device.
type Adversary struct {
	rng   interface{ Float64() float64 }
	order Order
	tries int
}

// NewAdversary returns an adversary with its own deterministic randomness
// whose first attempt is an order of amountMinor by userID at start.
func NewAdversary(seed uint64, userID string, amountMinor int64, start time.Time) *Adversary {
	g := New(Config{Seed: seed, Users: 1})
	o := Order{Pattern: Adversarial, FraudProb: 0.95, Fraud: true}
	o.UserID, o.Region, o.Currency = userID, "east-china", "CNY"
	o.AmountMinor, o.DeviceID, o.IP = amountMinor, g.device(), g.ip()
	o.Items = []orderflow.Item{{SKU: "sku-42", Qty: 3}}
	o.CreatedAt = start
	o.Status = orderflow.StatusPendingReview
	return &Adversary{rng: g.rng, order: o}
}

// Attempt returns the adversary's next attempt: the first order, then each
// retry a little smaller and a little later. Order ids are
// "ord_<user>_try<n>".
func (a *Adversary) Attempt() Order {
	if a.tries > 0 {
		a.order.AmountMinor = max(int64(float64(a.order.AmountMinor)*(0.93+0.06*a.rng.Float64())), 1)
		a.order.CreatedAt = a.order.CreatedAt.Add(time.Duration((30 + 150*a.rng.Float64()) * float64(time.Second)))
	}
	a.tries++
	o := a.order
	o.Seq = int64(a.tries)
	o.ID = "ord_" + o.UserID + "_try" + strconv.Itoa(a.tries)
	o.UpdatedAt = o.CreatedAt
	o.Version = 1
	return o
}
