package postgres_test

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/postgres"
	"github.com/orderflow/orderflow/store/storetest"
)

// createOrders stores n new orders with their order.created events and
// returns the events' seqs in creation order.
func createOrders(t *testing.T, s *postgres.Store, prefix string, n int) []int64 {
	t.Helper()
	var seqs []int64
	for i := range n {
		id := fmt.Sprintf("%s_%d", prefix, i)
		ev := storetest.NewEvent(id)
		if _, _, err := s.CreateOrder(ctx(t), storetest.NewOrder(id, "u_1", time.Now()), ev, nil); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ev.Seq)
	}
	return seqs
}

func unpublished(t *testing.T, s *postgres.Store) []int64 {
	t.Helper()
	evs, err := s.UnpublishedEvents(ctx(t), 100)
	if err != nil {
		t.Fatalf("UnpublishedEvents: %v", err)
	}
	seqs := []int64{}
	for _, e := range evs {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func TestUnpublishedEventsRoundTrip(t *testing.T) {
	s := MustOpen(t)
	want := storetest.NewEvent("ord_1")
	want.CreatedAt = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	if _, _, err := s.CreateOrder(ctx(t), storetest.NewOrder("ord_1", "u_1", want.CreatedAt), want, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.UnpublishedEvents(ctx(t), 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("UnpublishedEvents = %v, %v; want one event", got, err)
	}
	w := *want
	w.CreatedAt = w.CreatedAt.UTC()
	if !reflect.DeepEqual(got[0], w) {
		t.Fatalf("event\n got %+v\nwant %+v", got[0], w)
	}
}

// TestMarkPublishedFencing walks a relay's life: a newer lease's token is
// accepted, an older one refused (nothing marked), the same one again
// accepted.
func TestMarkPublishedFencing(t *testing.T) {
	s := MustOpen(t)
	seqs := createOrders(t, s, "ord", 4)
	steps := []struct {
		name    string
		seqs    []int64
		token   uint64
		code    string  // "" for success
		pending []int64 // unpublished seqs afterwards
	}{
		{"FirstLease", seqs[:1], 5, "", seqs[1:]},
		{"SameLeaseAgain", seqs[1:2], 5, "", seqs[2:]},
		{"ErrStaleToken", seqs[2:3], 4, orderflow.EConflict, seqs[2:]},
		{"NewerLease", seqs[2:3], 7, "", seqs[3:]},
		{"ErrPreviousLease", seqs[3:], 5, orderflow.EConflict, seqs[3:]},
		{"ErrStaleTokenMarksNothingEvenEmpty", nil, 6, orderflow.EConflict, seqs[3:]},
		{"AlreadyMarkedIsHarmless", seqs, 7, "", []int64{}},
		{"ErrTokenBeyondBigint", nil, math.MaxUint64, orderflow.EInvalid, []int64{}},
	}
	for _, st := range steps {
		err := s.MarkPublished(ctx(t), st.seqs, st.token)
		if got := orderflow.ErrorCode(err); got != st.code {
			t.Fatalf("%s: MarkPublished(%v, %d) = %v, want code %q", st.name, st.seqs, st.token, err, st.code)
		}
		if got := unpublished(t, s); fmt.Sprint(got) != fmt.Sprint(st.pending) {
			t.Fatalf("%s: unpublished %v, want %v", st.name, got, st.pending)
		}
	}
}

// TestLateCommitIsNotSkipped is why the relay reads "unpublished" and not
// "seq > cursor": a transaction that took a lower seq commits after a higher
// seq was already published, and its event is still delivered.
func TestLateCommitIsNotSkipped(t *testing.T) {
	s := MustOpen(t)
	createOrders(t, s, "early", 1)
	// An order whose transaction has taken its seq but not committed yet.
	slow, err := s.Pool().Begin(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx(t))
	var lateSeq int64
	if err := slow.QueryRow(ctx(t), `INSERT INTO outbox (id, type, order_id, payload, created_at)
		VALUES ('evt_late', 'order.created', 'late', '\x7b7d', 1) RETURNING seq`).Scan(&lateSeq); err != nil {
		t.Fatal(err)
	}
	fast := createOrders(t, s, "fast", 1)[0]
	if fast <= lateSeq {
		t.Fatalf("fast seq %d <= late seq %d: the test needs the late one to hold the lower seq", fast, lateSeq)
	}
	// The relay publishes everything it can see: the early and the fast one.
	seen := unpublished(t, s)
	if err := s.MarkPublished(ctx(t), seen, 1); err != nil {
		t.Fatal(err)
	}
	if err := slow.Commit(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := unpublished(t, s); fmt.Sprint(got) != fmt.Sprint([]int64{lateSeq}) {
		t.Fatalf("after the late commit, unpublished %v, want [%d] (a cursor at %d would have skipped it)", got, lateSeq, fast)
	}
}

func TestPruneOutbox(t *testing.T) {
	s := MustOpen(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	s.Now = func() time.Time { return now }
	seqs := createOrders(t, s, "ord", 4)
	if err := s.MarkPublished(ctx(t), seqs[:1], 1); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Hour)
	if err := s.MarkPublished(ctx(t), seqs[1:2], 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		before time.Time
		want   int64
	}{
		{"NothingPublishedBefore", t0, 0},
		{"OlderPublished", t0.Add(time.Minute), 1},
		{"Again", t0.Add(time.Minute), 0},
		{"NewerPublishedUnpublishedKept", t0.Add(100 * time.Hour), 1},
	}
	for _, tc := range tests {
		n, err := s.PruneOutbox(ctx(t), tc.before)
		if err != nil || n != tc.want {
			t.Fatalf("%s: PruneOutbox(%v) = %d, %v; want %d", tc.name, tc.before, n, err, tc.want)
		}
	}
	if got := unpublished(t, s); fmt.Sprint(got) != fmt.Sprint(seqs[2:]) {
		t.Fatalf("unpublished %v, want %v kept", got, seqs[2:])
	}
}
