package sqlbus_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/bustest"
	"github.com/orderflow/orderflow/bus/sqlbus"
	"github.com/orderflow/orderflow/store/sqlite"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig keeps back-offs and grace short so the contract runs in seconds.
func testConfig() sqlbus.Config {
	return sqlbus.Config{
		MaxDeliveries: 3,
		BackoffBase:   time.Millisecond,
		BackoffMax:    10 * time.Millisecond,
		PollInterval:  10 * time.Millisecond,
		ShutdownGrace: time.Second,
	}
}

// MustOpen opens a store in a fresh temporary directory, closed at cleanup.
func MustOpen(tb testing.TB) *sqlite.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "orderflow.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}

// publish appends evs to st's outbox in one write, as the order service's
// transactions do (there the order row shares the transaction).
func publish(ctx context.Context, st *sqlite.Store, evs ...orderflow.Event) error {
	return st.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, e := range evs {
			headers, err := json.Marshal(e.Headers)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, type, order_id, payload, headers, created_at)
				VALUES (?, ?, ?, ?, ?, ?)`, e.ID, e.Type, e.OrderID, e.Payload, string(headers), e.CreatedAt.UnixNano()); err != nil {
				return err
			}
		}
		return nil
	})
}

func harness(cfg sqlbus.Config, notify bool) bustest.Harness {
	return bustest.Harness{
		MaxDeliveries: cfg.MaxDeliveries,
		Open: func(t *testing.T) bustest.Bus {
			st := MustOpen(t)
			b := sqlbus.New(st, cfg)
			return bustest.Bus{
				Consumer:    b,
				DeadLetters: b,
				Publish: func(ctx context.Context, evs ...orderflow.Event) error {
					if err := publish(ctx, st, evs...); err != nil {
						return err
					}
					if notify {
						b.Notify()
					}
					return nil
				},
				// A new Bus on the same file is what a restarted process
				// builds; it shares nothing in memory with the old one.
				Restart: func(*testing.T) orderflow.Consumer { return sqlbus.New(st, cfg) },
			}
		},
	}
}

func TestContract(t *testing.T) {
	bustest.Run(t, harness(testConfig(), true))
}

// Without Notify the bus must still find every event, by polling.
func TestContractPollingOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("the contract once more, without Notify")
	}
	h := harness(testConfig(), false)
	h.Events = 2000 // the full volume runs in TestContract
	bustest.Run(t, h)
}
