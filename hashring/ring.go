package hashring

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultVirtualNodes is the number of virtual nodes a member of weight 1
// gets. A member's share of the ring varies by about 1/√V around its fair
// share, so balance is bought with virtual nodes: at 160 (a common default)
// the most loaded of 10 members carries up to ~1.2× the average, at 2048 about
// 1.06× at the 95th percentile over member sets (docs/benchmarks/hashring.md).
// The price is memory (~29 bytes per point, ~60 KiB per member) and rebuild
// time on membership change, and some lookup time once the index outgrows the
// L2 cache (about 100 members): the bucket index keeps lookups O(1).
//
// It is part of the placement contract: changing it moves keys, so golden
// vectors pin it.
const DefaultVirtualNodes = 2048

// Member is one participant of the ring.
type Member struct {
	// Name identifies the member (an address, a replica id). It alone decides
	// the member's ring positions, so every process that knows the same names
	// computes the same placement.
	Name string
	// Weight scales the member's share: a member of weight 2 gets twice the
	// virtual nodes, and about twice the keys, of one of weight 1. Zero means
	// 1. A member's points depend only on its own name and weight, so changing
	// one member's weight moves keys only to or from that member.
	Weight int
}

// ErrInvalidMember is returned (wrapped) for an empty or duplicate name or a
// negative weight.
var ErrInvalidMember = errors.New("hashring: invalid member")

// Option configures a Ring.
type Option func(*Ring)

// WithVirtualNodes sets the virtual nodes per unit of weight (values < 1 mean
// DefaultVirtualNodes). Every process routing the same keys must use the same
// value, or they disagree on placement.
func WithVirtualNodes(n int) Option {
	return func(r *Ring) {
		if n < 1 {
			n = DefaultVirtualNodes
		}
		r.vnodes = n
	}
}

// Ring is a consistent-hash ring with virtual nodes. The zero Ring is empty
// and uses DefaultVirtualNodes. Lookups (Locate, LocateN,
// AppendN) are lock-free, allocate nothing and run in constant time whatever
// the number of virtual nodes: they read an immutable snapshot that membership
// changes (Set, Add, Remove) replace atomically. Membership changes are
// serialized and cost a rebuild of the snapshot.
//
// Placement follows ring semantics exactly: a key belongs to the member owning
// the first virtual node at or after Hash(key), so adding a member moves keys
// only to it and removing one moves only its keys.
type Ring struct {
	vnodes int
	mu     sync.Mutex // serializes writers; readers never take it
	snap   atomic.Pointer[snapshot]
}

// New returns a ring holding members.
func New(members []Member, opts ...Option) (*Ring, error) {
	r := &Ring{vnodes: DefaultVirtualNodes}
	for _, o := range opts {
		o(r)
	}
	if err := r.Set(members); err != nil {
		return nil, err
	}
	return r, nil
}

// VirtualNodes returns the virtual nodes per unit of weight.
func (r *Ring) VirtualNodes() int {
	if r.vnodes < 1 {
		return DefaultVirtualNodes // zero Ring
	}
	return r.vnodes
}

// Set replaces the membership. On error the ring is unchanged.
func (r *Ring) Set(members []Member) error {
	ms, err := normalize(members)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snap.Store(build(r.snap.Load(), ms, r.VirtualNodes()))
	return nil
}

// Add adds a member, or updates the weight of one already present.
func (r *Ring) Add(m Member) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ms := slices.Clone(r.load().members)
	if i, ok := find(ms, m.Name); ok {
		ms[i] = m
	} else {
		ms = append(ms, m)
	}
	ms, err := normalize(ms)
	if err != nil {
		return err
	}
	r.snap.Store(build(r.snap.Load(), ms, r.VirtualNodes()))
	return nil
}

// Remove removes the named member and reports whether it was present.
func (r *Ring) Remove(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.load()
	i, ok := find(s.members, name)
	if !ok {
		return false
	}
	ms := slices.Delete(slices.Clone(s.members), i, i+1)
	r.snap.Store(build(s, ms, r.VirtualNodes()))
	return true
}

// Members returns the members, sorted by name.
func (r *Ring) Members() []Member { return slices.Clone(r.load().members) }

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.load().members) }

// Locate returns the member that owns key; ok is false only when the ring is
// empty.
func (r *Ring) Locate(key string) (member string, ok bool) {
	s := r.load()
	if len(s.names) == 0 {
		return "", false
	}
	// owner's dispatch, by hand: a call level less on the hottest path.
	h := Hash(key)
	if s.compact != nil {
		return s.names[s.ownerCompact(h)], true
	}
	return s.names[s.ownerWide(h)], true
}

// LocateN returns up to n distinct members for key, in ring order: the owner
// first, then the members a caller should fall back to, or replicate to, if it
// is down. Every process computes the same list, and when a member leaves,
// the lists change only by that member dropping out. It allocates the result;
// AppendN does not.
func (r *Ring) LocateN(key string, n int) []string {
	s := r.load()
	return s.appendN(make([]string, 0, min(max(n, 0), len(s.names))), Hash(key), n)
}

// AppendN appends LocateN(key, n) to dst and returns the extended slice. It
// allocates nothing when dst has room, so a hot path can reuse one buffer:
//
//	buf = ring.AppendN(buf[:0], orderID, 3)
func (r *Ring) AppendN(dst []string, key string, n int) []string {
	return r.load().appendN(dst, Hash(key), n)
}

func (r *Ring) load() *snapshot {
	if s := r.snap.Load(); s != nil {
		return s
	}
	return &snapshot{} // zero Ring: empty
}

// appendN walks the ring from h, appending each member not yet seen.
func (s *snapshot) appendN(dst []string, h uint64, n int) []string {
	n = min(n, len(s.names))
	if n <= 0 {
		return dst
	}
	start := len(dst)
	j := s.position(h)
	// The walk ends after one full turn at most; before that it has met every
	// member, since each owns at least one point.
	for range len(s.hashes) {
		name := s.names[s.owners[j]]
		if !slices.Contains(dst[start:], name) {
			dst = append(dst, name)
			if len(dst)-start == n {
				break
			}
		}
		if j++; j == len(s.hashes) {
			j = 0
		}
	}
	return dst
}

// normalize validates members and returns a copy sorted by name with zero
// weights replaced by 1.
func normalize(members []Member) ([]Member, error) {
	ms := slices.Clone(members)
	for i := range ms {
		switch {
		case ms[i].Name == "":
			return nil, fmt.Errorf("%w: empty name", ErrInvalidMember)
		case ms[i].Weight < 0:
			return nil, fmt.Errorf("%w: %q has negative weight %d", ErrInvalidMember, ms[i].Name, ms[i].Weight)
		case ms[i].Weight == 0:
			ms[i].Weight = 1
		}
	}
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(ms); i++ {
		if ms[i].Name == ms[i-1].Name {
			return nil, fmt.Errorf("%w: duplicate name %q", ErrInvalidMember, ms[i].Name)
		}
	}
	return ms, nil
}

func find(ms []Member, name string) (int, bool) {
	return slices.BinarySearchFunc(ms, name, func(m Member, name string) int { return strings.Compare(m.Name, name) })
}
