// Package ringpeers adapts well-known Go consistent-hashing libraries, and two
// schemes that are not rings (jump hash, rendezvous hashing), to
// ringmeasure.Impl, so that their balance, movement and lookup cost are
// measured by the same code, in the same run, as orderflow/hashring.
//
// buraksezer/consistent and dgryski/go-maglev are not here: the module proxy
// of the machine that runs these benchmarks refuses them, so their figures in
// docs/benchmarks/hashring.md are quoted from an earlier measurement.
package ringpeers

import (
	"github.com/dgryski/go-jump"
	"github.com/dgryski/go-rendezvous"
	"github.com/golang/groupcache/consistenthash"
	"github.com/serialx/hashring"
	"github.com/stathat/consistent"
	zerohash "github.com/zeromicro/go-zero/core/hash"

	ours "github.com/orderflow/orderflow/hashring"
	"github.com/orderflow/orderflow/hashring/ringmeasure"
)

// Defaults are the virtual nodes each library uses when not told otherwise,
// as their sources set them.
const (
	GoZeroDefault     = 100 // core/hash minReplicas, also the minimum it accepts
	StathatDefault    = 20  // consistent.New
	SerialxDefault    = 1   // hashring.New: one point per unit of weight
	GroupcacheDefault = 0   // consistenthash.New takes it as an argument; no default
)

// Ours is orderflow/hashring.
func Ours() ringmeasure.Impl {
	return ringmeasure.Impl{Name: "orderflow/hashring", VirtualNodes: true,
		Build: func(names []string, vnodes int) ringmeasure.Locate {
			ms := make([]ours.Member, len(names))
			for i, n := range names {
				ms[i] = ours.Member{Name: n}
			}
			r, err := ours.New(ms, ours.WithVirtualNodes(vnodes))
			if err != nil {
				panic(err)
			}
			return func(k string) string { m, _ := r.Locate(k); return m }
		}}
}

// GoZero is github.com/zeromicro/go-zero/core/hash (murmur3, at least 100
// virtual nodes).
func GoZero() ringmeasure.Impl {
	return ringmeasure.Impl{Name: "go-zero core/hash", VirtualNodes: true,
		Build: func(names []string, vnodes int) ringmeasure.Locate {
			if vnodes == 0 {
				vnodes = GoZeroDefault
			}
			h := zerohash.NewCustomConsistentHash(vnodes, nil)
			for _, n := range names {
				h.Add(n)
			}
			return func(k string) string {
				v, _ := h.Get(k)
				s, _ := v.(string)
				return s
			}
		}}
}

// Groupcache is github.com/golang/groupcache/consistenthash (crc32).
func Groupcache() ringmeasure.Impl {
	return ringmeasure.Impl{Name: "groupcache/consistenthash", VirtualNodes: true,
		Build: func(names []string, vnodes int) ringmeasure.Locate {
			if vnodes == 0 {
				vnodes = 160 // it has no default; 160 is what the measurements use
			}
			m := consistenthash.New(vnodes, nil)
			m.Add(names...)
			return m.Get
		}}
}

// Stathat is github.com/stathat/consistent (crc32).
func Stathat() ringmeasure.Impl {
	return ringmeasure.Impl{Name: "stathat/consistent", VirtualNodes: true,
		Build: func(names []string, vnodes int) ringmeasure.Locate {
			c := consistent.New()
			if vnodes > 0 {
				c.NumberOfReplicas = vnodes
			}
			c.Set(names)
			return func(k string) string { m, _ := c.Get(k); return m }
		}}
}

// Serialx is github.com/serialx/hashring (md5); its virtual nodes are its
// weights, one point per unit.
func Serialx() ringmeasure.Impl {
	return ringmeasure.Impl{Name: "serialx/hashring", VirtualNodes: true,
		Build: func(names []string, vnodes int) ringmeasure.Locate {
			if vnodes == 0 {
				vnodes = SerialxDefault
			}
			w := make(map[string]int, len(names))
			for _, n := range names {
				w[n] = vnodes
			}
			r := hashring.NewWithWeights(w)
			return func(k string) string { m, _ := r.GetNode(k); return m }
		}}
}

// Jump is Lamping and Veach's jump consistent hash (github.com/dgryski/go-jump)
// over the key hash our ring uses (hashring.Hash, XXH3), so the lookup
// benchmark compares placement algorithms, not hash functions. Not a ring: members are numbered, and only the
// last one can leave without moving other keys.
func Jump() ringmeasure.Impl {
	return ringmeasure.Impl{Name: "jump hash (reference)",
		Build: func(names []string, _ int) ringmeasure.Locate {
			ns := append([]string(nil), names...)
			return func(k string) string { return ns[jump.Hash(ours.Hash(k), len(ns))] }
		}}
}

// Rendezvous is highest-random-weight hashing (github.com/dgryski/go-rendezvous)
// over hashring.Hash (XXH3), like Jump. Not a ring: O(members) per lookup.
func Rendezvous() ringmeasure.Impl {
	return ringmeasure.Impl{Name: "rendezvous (reference)",
		Build: func(names []string, _ int) ringmeasure.Locate {
			r := rendezvous.New(append([]string(nil), names...), ours.Hash)
			return r.Lookup
		}}
}

// Rings returns the ring implementations, ours first.
func Rings() []ringmeasure.Impl {
	return []ringmeasure.Impl{Ours(), GoZero(), Groupcache(), Stathat(), Serialx()}
}

// References returns the schemes that are not rings.
func References() []ringmeasure.Impl { return []ringmeasure.Impl{Jump(), Rendezvous()} }
