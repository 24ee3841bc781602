package hashring

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// DefaultLoadFactor is the load factor c of Bounded when none is given: no
// member holds more than ⌈1.25 × its fair share⌉ of the placed keys.
const DefaultLoadFactor = 1.25

// BoundedConfig configures Bounded. The zero value works.
type BoundedConfig struct {
	// LoadFactor is c > 1: a member of weight w holds at most
	// ⌈c × m × w / W⌉ keys when m keys are placed and the weights sum to W
	// (with equal weights, ⌈c × average⌉). 0 means DefaultLoadFactor. Smaller
	// values balance more tightly and move more keys on every change.
	LoadFactor float64
	// OnMove, if set, is called for every placed key that changes member
	// because of a membership change or a lowered cap. It runs with the
	// Bounded locked and must not call back into it.
	OnMove func(key, from, to string)
}

// Bounded is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2016): a key goes to
// the first member clockwise from its hash whose load is under its cap, so a
// popular arc overflows to the next members instead of overloading one.
//
// It is stateful — placement depends on which keys this one process has
// placed, and in what order — so it suits a caller that owns every placement
// (a pool of sessions, a set of shards assigned by one leader). Replicas that
// must agree on a key's member without talking should use Ring.Locate, whose
// placement depends only on the membership.
//
// Bounded follows its Ring: a membership change is applied at the next call
// (or by Sync). Keys of a departed member, and keys whose first choice is a
// new member, are placed again; members over the new cap shed their most
// recently placed keys forward; nothing else moves. If the ring becomes
// empty, every placement is dropped. Release never moves other
// keys unless it lowers the cap, and then at most one key per member over it.
// A Bounded is safe for concurrent use; calls are serialized by a mutex.
type Bounded struct {
	ring   *Ring
	c      float64
	onMove func(key, from, to string)

	mu     sync.Mutex
	snap   *snapshot
	weight int                  // sum of member weights in snap
	keys   map[string]placement // placed keys
	loads  [][]string           // loads[o]: keys on member o, in placement order
}

type placement struct {
	h     uint64
	owner int32
	pos   int32 // index in loads[owner]
}

// NewBounded returns a Bounded placing keys on r's members.
func NewBounded(r *Ring, cfg BoundedConfig) (*Bounded, error) {
	if r == nil {
		return nil, errors.New("hashring: NewBounded: nil ring")
	}
	c := cfg.LoadFactor
	if c == 0 {
		c = DefaultLoadFactor
	}
	if !(c > 1) || math.IsInf(c, 1) {
		return nil, fmt.Errorf("hashring: load factor %v: must be finite and > 1", c)
	}
	b := &Bounded{ring: r, c: c, onMove: cfg.OnMove, keys: map[string]placement{}}
	b.snap = &snapshot{}
	return b, nil
}

// LoadFactor returns c.
func (b *Bounded) LoadFactor() float64 { return b.c }

// Place returns the member holding key, placing it first if it is not placed
// yet. ok is false only when the ring is empty.
func (b *Bounded) Place(key string) (member string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sync()
	if p, ok := b.keys[key]; ok {
		return b.snap.names[p.owner], true
	}
	if len(b.snap.names) == 0 {
		return "", false
	}
	h := Hash(key)
	o := b.free(h, len(b.keys)+1, -1)
	b.put(key, h, o)
	return b.snap.names[o], true
}

// Lookup returns the member holding key without placing it.
func (b *Bounded) Lookup(key string) (member string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sync()
	p, ok := b.keys[key]
	if !ok {
		return "", false
	}
	return b.snap.names[p.owner], true
}

// Release removes key from its member and reports whether it was placed.
func (b *Bounded) Release(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sync()
	p, ok := b.keys[key]
	if !ok {
		return false
	}
	b.take(key, p)
	// One key fewer may lower the cap by one: members at the old cap shed
	// one key each to stay within the guarantee.
	m := len(b.keys)
	for o := range b.loads {
		for len(b.loads[o]) > b.capOf(o, m) {
			b.evict(int32(o), m)
		}
	}
	return true
}

// Sync applies a pending membership change of the ring now and returns how
// many keys moved.
func (b *Bounded) Sync() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sync()
}

// Len returns the number of placed keys.
func (b *Bounded) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.keys)
}

// Loads returns each member's number of placed keys.
func (b *Bounded) Loads() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sync()
	out := make(map[string]int, len(b.loads))
	for o, ks := range b.loads {
		out[b.snap.names[o]] = len(ks)
	}
	return out
}

// Cap returns the most keys member may hold with the keys placed now, 0 for
// an unknown member.
func (b *Bounded) Cap(member string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sync()
	o, ok := find(b.snap.members, member)
	if !ok {
		return 0
	}
	return b.capOf(o, len(b.keys))
}

// capOf is ⌈c × m × w / W⌉ for member o. The sum over members is at least
// c × m >= m, so a member under its cap always exists for a new key.
func (b *Bounded) capOf(o, m int) int {
	w := float64(b.snap.members[o].Weight)
	return int(math.Ceil(b.c * float64(m) * w / float64(b.weight)))
}

// free walks the ring clockwise from h and returns the first member under its
// cap for m placed keys, skipping member skip.
func (b *Bounded) free(h uint64, m int, skip int32) int32 {
	s := b.snap
	j := s.position(h)
	for range len(s.hashes) {
		o := int32(s.owners[j])
		if o != skip && len(b.loads[o]) < b.capOf(int(o), m) {
			return o
		}
		if j++; j == len(s.hashes) {
			j = 0
		}
	}
	panic("hashring: bounded: no member under its cap") // unreachable: caps sum to >= c×m
}

func (b *Bounded) put(key string, h uint64, o int32) {
	b.keys[key] = placement{h: h, owner: o, pos: int32(len(b.loads[o]))}
	b.loads[o] = append(b.loads[o], key)
}

// take removes key from its member's list (swap with the last).
func (b *Bounded) take(key string, p placement) {
	ks := b.loads[p.owner]
	last := ks[len(ks)-1]
	ks[p.pos] = last
	if last != key {
		q := b.keys[last]
		q.pos = p.pos
		b.keys[last] = q
	}
	b.loads[p.owner] = ks[:len(ks)-1]
	delete(b.keys, key)
}

// evict moves member o's most recently placed key to the next member on its
// path with room.
func (b *Bounded) evict(o int32, m int) {
	ks := b.loads[o]
	key := ks[len(ks)-1]
	p := b.keys[key]
	b.take(key, p)
	to := b.free(p.h, m, o)
	b.put(key, p.h, to)
	b.moved(key, b.snap.names[o], b.snap.names[to])
}

func (b *Bounded) moved(key, from, to string) {
	if b.onMove != nil && from != to {
		b.onMove(key, from, to)
	}
}

// pending is a key waiting to be placed again, and the member it left.
type pending struct {
	key  string
	h    uint64
	from string
}

// sync rebuilds the placement state for the ring's current snapshot if it
// changed, and returns how many keys moved.
func (b *Bounded) sync() int {
	next := b.ring.load()
	if next == b.snap {
		return 0
	}
	redo := b.rehome(next)
	if len(next.names) == 0 {
		return 0 // nowhere to go: every placement was dropped
	}
	m := len(b.keys) + len(redo)
	// Members over the cap for the new membership shed their latest keys.
	for o := range b.loads {
		for c := b.capOf(o, m); len(b.loads[o]) > c; {
			ks := b.loads[o]
			key := ks[len(ks)-1]
			p := b.keys[key]
			b.take(key, p)
			redo = append(redo, pending{key, p.h, next.names[o]})
		}
	}
	// Place again in hash order, so the outcome does not depend on map order.
	slices.SortFunc(redo, func(x, y pending) int {
		return cmp.Or(cmp.Compare(x.h, y.h), cmp.Compare(x.key, y.key))
	})
	moves := 0
	for _, r := range redo {
		o := b.free(r.h, m, -1)
		b.put(r.key, r.h, o)
		if to := next.names[o]; to != r.from {
			moves++
			b.moved(r.key, r.from, to)
		}
	}
	return moves
}

// rehome switches the state to snapshot next: keys stay on their member if
// it is still there and their first choice is not a new member; the others
// are unplaced and returned.
func (b *Bounded) rehome(next *snapshot) []pending {
	prev := b.snap
	remap := make([]int32, len(prev.names)) // old member index -> new, or -1
	for o, name := range prev.names {
		remap[o] = -1
		if i, ok := find(next.members, name); ok {
			remap[o] = int32(i)
		}
	}
	isNew := make([]bool, len(next.names))
	for i, name := range next.names {
		_, had := find(prev.members, name)
		isNew[i] = !had
	}
	old := b.loads
	b.snap = next
	b.weight = 0
	for _, m := range next.members {
		b.weight += m.Weight
	}
	b.loads = make([][]string, len(next.names))
	var redo []pending
	// Keep keys in their old placement order so "most recently placed"
	// stays meaningful for eviction.
	for o, ks := range old {
		for _, key := range ks {
			p := b.keys[key]
			no := remap[o]
			if no < 0 || len(next.names) == 0 || isNew[next.owner(p.h)] {
				redo = append(redo, pending{key, p.h, prev.names[o]})
				delete(b.keys, key)
				continue
			}
			b.put(key, p.h, no)
		}
	}
	return redo
}
