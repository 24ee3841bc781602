package postgres_test

import (
	"context"
	"log"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/postgres"
)

// The outbox relay: one active instance, chosen by a lock whose lease
// carries a fencing token, copies unpublished events to the bus and marks
// them under that token. It reads what is unpublished, never "after the last
// seq", because seq order is not commit order. When MarkPublished answers
// conflict, a newer relay has taken over and this one stops.
//
// Compiled, not run: it needs a PostgreSQL server and a lock backend.
func ExampleStore_UnpublishedEvents() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, "postgres://orderflow@db.internal:5432/orderflow?pool_max_conns=16")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	var lease orderflow.Lease                                                    // from a Locker's Acquire(ctx, "outbox-relay", ttl)
	publish := func(ctx context.Context, e orderflow.Event) error { return nil } // XADD to a Redis stream
	for {
		select {
		case <-lease.Done():
			return // the lease may be lost: stop before the token goes stale
		case <-time.After(100 * time.Millisecond):
		}
		evs, err := s.UnpublishedEvents(ctx, 256)
		if err != nil {
			log.Print(err)
			continue
		}
		var seqs []int64
		for _, e := range evs {
			if err := publish(ctx, e); err != nil {
				break // the rest stay unpublished and come back next round
			}
			seqs = append(seqs, e.Seq)
		}
		err = s.MarkPublished(ctx, seqs, lease.Token())
		if orderflow.ErrorCode(err) == orderflow.EConflict {
			return // a newer relay holds the lock: its token is newer than ours
		}
		if err != nil {
			log.Print(err) // unmarked events are published again: consumers are idempotent
		}
	}
}
