package orderflow

import (
	"context"
	"time"
)

// Locker hands out leases on named locks. Holding a lease does not make a
// write safe on its own: the lease's fencing token goes with every write made
// under it, and the storage rejects a token older than the newest it has seen.
type Locker interface {
	// Acquire blocks until the lock is held or ctx ends.
	Acquire(ctx context.Context, key string, ttl time.Duration) (Lease, error)
}

// Lease is a held lock, renewed in the background at a fraction of its TTL.
type Lease interface {
	// Token is the fencing token: strictly increasing per key across holders.
	Token() uint64
	// Done is closed when the lease may have been lost (no later than TTL minus
	// a margin after the last successful renewal). It is a hint; safety comes
	// from the token.
	Done() <-chan struct{}
	// Release gives the lock up if this lease still holds it.
	Release(ctx context.Context) error
}
