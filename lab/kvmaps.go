package lab

import "sync"

// KV is the map the sync.Map experiment drives: the two operations the claim
// is about, on fixed-size keys and values so that hashing and boxing costs
// are the maps' own.
type KV interface {
	Load(key uint64) (value uint64, ok bool)
	Store(key, value uint64)
}

// MapImpl names a KV constructor taking the number of keys the workload
// will use, so that implementations may presize.
type MapImpl struct {
	Name string
	New  func(keys int) KV
}

// MapImpls returns the contenders of this package: sync.Map (twice: with
// keys and values boxed once, ahead of time, so no call allocates, and
// boxed at every call, which is what uint64-keyed code pays), a map under
// one sync.RWMutex, and a map split into 32 RWMutex shards. Third-party
// contenders are added in bench/peers/lab, so that this module does not
// depend on them.
func MapImpls() []MapImpl {
	return []MapImpl{
		{Name: "sync.Map", New: func(n int) KV { return newBoxedSyncMapKV(n) }},
		{Name: "sync.Map, uint64 boxed per call", New: func(int) KV { return new(syncMapKV) }},
		{Name: "RWMutex+map", New: func(n int) KV { return &rwMapKV{m: make(map[uint64]uint64, n)} }},
		{Name: "sharded RWMutex+map (32)", New: func(n int) KV { return newShardedKV(n) }},
	}
}

type syncMapKV struct{ m sync.Map }

func (s *syncMapKV) Load(k uint64) (uint64, bool) {
	v, ok := s.m.Load(k)
	if !ok {
		return 0, false
	}
	return v.(uint64), true
}

func (s *syncMapKV) Store(k, v uint64) { s.m.Store(k, v) }

// boxedSyncMapKV keeps every key 0..n-1 already converted to an interface,
// so that Load and Store do not allocate to box them: converting a uint64
// of 256 or more to `any` allocates, and that cost belongs to the caller's
// choice of key type, not to sync.Map. Values are stored as their boxed
// keys' twins for the same reason; out-of-range keys fall back to boxing.
type boxedSyncMapKV struct {
	m     sync.Map
	boxed []any
}

func newBoxedSyncMapKV(n int) *boxedSyncMapKV {
	b := &boxedSyncMapKV{boxed: make([]any, n)}
	for i := range b.boxed {
		b.boxed[i] = uint64(i)
	}
	return b
}

func (b *boxedSyncMapKV) box(k uint64) any {
	if k < uint64(len(b.boxed)) {
		return b.boxed[k]
	}
	return k
}

func (b *boxedSyncMapKV) Load(k uint64) (uint64, bool) {
	v, ok := b.m.Load(b.box(k))
	if !ok {
		return 0, false
	}
	return v.(uint64), true
}

// Store stores a preboxed value chosen by v, so the stored value differs
// from v; the workload never reads values back for their content.
func (b *boxedSyncMapKV) Store(k, v uint64) {
	b.m.Store(b.box(k), b.box(v%uint64(max(1, len(b.boxed)))))
}

type rwMapKV struct {
	mu sync.RWMutex
	m  map[uint64]uint64
}

func (r *rwMapKV) Load(k uint64) (uint64, bool) {
	r.mu.RLock()
	v, ok := r.m[k]
	r.mu.RUnlock()
	return v, ok
}

func (r *rwMapKV) Store(k, v uint64) {
	r.mu.Lock()
	r.m[k] = v
	r.mu.Unlock()
}

const shardBits = 5

// shardedKV spreads keys over 1<<shardBits independently locked maps, so
// that writers to different shards do not wait for each other. Shards are
// padded to a cache line apart, so that one shard's lock traffic does not
// invalidate its neighbour's line.
type shardedKV struct {
	shards [1 << shardBits]struct {
		mu sync.RWMutex
		m  map[uint64]uint64
		_  [64 - 24 - 8]byte
	}
}

func newShardedKV(n int) *shardedKV {
	s := new(shardedKV)
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]uint64, n>>shardBits+1)
	}
	return s
}

// shard picks a shard by Fibonacci hashing: the top bits of k times 2^64/φ
// mix every bit of k, so consecutive keys land on different shards.
func (s *shardedKV) shard(k uint64) int { return int((k * 0x9E3779B97F4A7C15) >> (64 - shardBits)) }

func (s *shardedKV) Load(k uint64) (uint64, bool) {
	sh := &s.shards[s.shard(k)]
	sh.mu.RLock()
	v, ok := sh.m[k]
	sh.mu.RUnlock()
	return v, ok
}

func (s *shardedKV) Store(k, v uint64) {
	sh := &s.shards[s.shard(k)]
	sh.mu.Lock()
	sh.m[k] = v
	sh.mu.Unlock()
}
