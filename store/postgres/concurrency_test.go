package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/postgres"
	"github.com/orderflow/orderflow/store/postgres/pgtest"
	"github.com/orderflow/orderflow/store/storetest"
)

// TestConcurrentApplySettlesOnce: 16 goroutines apply one order's two
// callbacks at once. Stricter than the contract suite, which lets a store
// answer "conflict, retry": here no caller sees an error, and the two
// entries settle exactly once in all. Under READ COMMITTED the row lock
// makes the goroutines take turns; under SERIALIZABLE (CockroachDB's only
// level in practice) they fail with 40001 and the store runs them again.
func TestConcurrentApplySettlesOnce(t *testing.T) {
	for _, isolation := range []string{"read committed", "serializable"} {
		t.Run(strings.ReplaceAll(isolation, " ", "_"), func(t *testing.T) {
			s := mustOpenURL(t, pgtest.FreshURL(t, "-c default_transaction_isolation="+strings.ReplaceAll(isolation, " ", "\\ ")))
			var got string
			if err := s.Pool().QueryRow(ctx(t), `SHOW transaction_isolation`).Scan(&got); err != nil || got != isolation {
				t.Fatalf("transaction_isolation %q, %v; want %q", got, err, isolation)
			}
			for round := range 5 {
				applyRound(t, s, fmt.Sprintf("ord_%d", round))
			}
			t.Logf("%s: %d transactions retried", isolation, s.Retries())
		})
	}
}

func applyRound(t *testing.T, s *postgres.Store, id string) {
	t.Helper()
	if _, _, err := s.CreateOrder(ctx(t), storetest.NewOrder(id, "u_1", storetest.NewEvent(id).CreatedAt), storetest.NewEvent(id), nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*orderflow.Callback{
		storetest.NewCallback(id, orderflow.EventRiskDecided, orderflow.DecisionReview, 0.5, "v3"),
		storetest.NewCallback(id, orderflow.EventRiskReviewed, orderflow.DecisionApprove, 0.5, "v3"),
	} {
		if r, err := s.RecordCallback(ctx(t), c); err != nil || r != orderflow.Accepted {
			t.Fatalf("RecordCallback = %v, %v", r, err)
		}
	}
	const n = 16
	settled := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { settled[i], errs[i] = s.ApplyCallbacks(ctx(t), id) })
	}
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("%s, goroutine %d: %v", id, i, errs[i])
		}
		total += settled[i]
	}
	o, err := s.Order(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || o.Status != orderflow.StatusApproved || o.Version != 3 {
		t.Fatalf("%s: %d settled, order %s v%d; want 2 settled, approved v3", id, total, o.Status, o.Version)
	}
}

// TestConcurrentCreateSameKey: replicas racing with one new Idempotency-Key
// (a client retrying on another replica) store one order; the others replay
// it. The losers hit the key's unique index and run their transaction again.
func TestConcurrentCreateSameKey(t *testing.T) {
	s := MustOpen(t)
	const n = 16
	orders := make([]*orderflow.Order, n)
	replays := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("ord_%d", i)
			key := &orderflow.IdempotencyKey{Key: "k1", RequestHash: "h1"}
			orders[i], replays[i], errs[i] = s.CreateOrder(ctx(t), storetest.NewOrder(id, "u_1", storetest.NewEvent(id).CreatedAt), storetest.NewEvent(id), key)
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if !replays[i] {
			created++
		}
		if orders[i].ID != orders[0].ID {
			t.Fatalf("goroutine %d got order %s, goroutine 0 %s: one key, two orders", i, orders[i].ID, orders[0].ID)
		}
	}
	if created != 1 {
		t.Fatalf("%d goroutines created an order, want 1", created)
	}
	all, err := s.Orders(ctx(t), orderflow.OrderFilter{Limit: 100})
	if err != nil || len(all) != 1 {
		t.Fatalf("Orders = %d orders, %v; want 1", len(all), err)
	}
}

// TestConcurrentMigrate: replicas starting together on an empty database
// all open, and each migration step is recorded once.
func TestConcurrentMigrate(t *testing.T) {
	u := pgtest.FreshURL(t)
	const replicas = 6
	stores := make([]*postgres.Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			if i%2 == 0 {
				stores[i], errs[i] = postgres.Open(ctx(t), u)
			} else {
				errs[i] = postgres.Migrate(ctx(t), u)
			}
		})
	}
	wg.Wait()
	for i := range replicas {
		if stores[i] != nil {
			defer stores[i].Close()
		}
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
	}
	conn, err := pgx.Connect(ctx(t), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx(t), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(versions) != "[1 2]" {
		t.Fatalf("schema_migrations versions %v, want [1 2], each once", versions)
	}
	// The schema works, and migrating again changes nothing.
	if err := postgres.Migrate(ctx(t), u); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if err := stores[0].Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, url string
	}{
		{"ErrBadURL", "postgres://u:secret@[::1"},
		{"ErrUnreachable", "postgres://u:secret@127.0.0.1:1/x?connect_timeout=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := postgres.Open(ctx(t), tc.url)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if got := err.Error(); strings.Contains(got, "secret") {
				t.Fatalf("error shows the password: %s", got)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	s := MustOpen(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx(t)); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Fatalf("Ping after Close = %v, want unavailable", err)
	}
	if _, err := s.RecordCallback(ctx(t), storetest.NewCallback("o", orderflow.EventRiskDecided, orderflow.DecisionApprove, 0, "v3")); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Fatalf("RecordCallback after Close = %v, want unavailable", err)
	}
}
