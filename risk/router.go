package risk

import (
	"fmt"
	"sync/atomic"
)

// Buckets is the number of routing buckets. A split is a whole number of
// buckets, so traffic moves in steps of 0.01 %.
const Buckets = 10_000

// Router picks the model version of a user, sticky by user: a user's bucket
// is a pure function of the salt and the user id,
//
//	bucket = FNV-1a-64(salt + "\x00" + userID) mod Buckets
//
// (64-bit FNV-1a, offset basis 14695981039346656037, prime 1099511628211,
// over the bytes of the salt, one zero byte, and the bytes of the user id),
// and users whose bucket is below ChallengerBuckets go to the challenger.
// Hence, at a fixed split a user never flips between versions, on any
// replica or after a restart; raising the split only moves users from the
// champion to the challenger and lowering it only moves them back. A new salt
// reshuffles everyone: change it only with a new experiment.
//
// Create one with NewRouter (the zero Router does not hash as documented). A
// Router is safe for concurrent use; the split can change while orders are
// routed.
type Router struct {
	salt  string
	seed  uint64 // FNV-1a state after the salt and the separator
	split atomic.Int32
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// NewRouter returns a router with the given salt whose first
// challengerBuckets buckets (0 to Buckets) go to the challenger.
func NewRouter(salt string, challengerBuckets int) (*Router, error) {
	h := uint64(fnvOffset64)
	for i := 0; i < len(salt); i++ {
		h ^= uint64(salt[i])
		h *= fnvPrime64
	}
	h *= fnvPrime64 // the zero separator: h ^= 0 changes nothing
	r := &Router{salt: salt, seed: h}
	if err := r.SetChallengerBuckets(challengerBuckets); err != nil {
		return nil, err
	}
	return r, nil
}

// Bucket returns the user's bucket, in [0, Buckets).
func (r *Router) Bucket(userID string) int {
	h := r.seed
	for i := 0; i < len(userID); i++ {
		h ^= uint64(userID[i])
		h *= fnvPrime64
	}
	return int(h % Buckets)
}

// Challenger reports whether the user is routed to the challenger.
func (r *Router) Challenger(userID string) bool {
	return r.Bucket(userID) < int(r.split.Load())
}

// ChallengerBuckets returns the current split: how many buckets, of
// Buckets, go to the challenger.
func (r *Router) ChallengerBuckets() int { return int(r.split.Load()) }

// SetChallengerBuckets changes the split; n must be in [0, Buckets]. 0 sends
// everyone to the champion, Buckets everyone to the challenger.
func (r *Router) SetChallengerBuckets(n int) error {
	if n < 0 || n > Buckets {
		return fmt.Errorf("risk: challenger buckets %d out of [0, %d]", n, Buckets)
	}
	r.split.Store(int32(n))
	return nil
}

// Salt returns the router's salt.
func (r *Router) Salt() string { return r.salt }
