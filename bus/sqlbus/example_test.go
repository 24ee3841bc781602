package sqlbus_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/sqlbus"
	"github.com/orderflow/orderflow/store/sqlite"
)

// The order service writes an order and its order.created event in one
// transaction and wakes the bus; the risk engine's group receives the event
// and acknowledges it by returning nil.
func Example() {
	dir, err := os.MkdirTemp("", "sqlbus-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "orderflow.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	bus := sqlbus.New(st, sqlbus.Config{})

	o := &orderflow.Order{ID: "ord_1", UserID: "u_1", AmountMinor: 1999, Currency: "CNY",
		Region: "east-china", Items: []orderflow.Item{{SKU: "sku-1", Qty: 1}}}
	ev := &orderflow.Event{ID: "evt_1", Type: orderflow.EventOrderCreated, Payload: []byte(`{"order_id":"ord_1"}`),
		Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	if _, _, err := st.CreateOrder(ctx, o, ev, nil); err != nil {
		log.Fatal(err)
	}
	bus.Notify() // deliver now rather than at the next poll

	cctx, stop := context.WithCancel(ctx)
	got := make(chan orderflow.Delivery, 1)
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(cctx, "risk", func(ctx context.Context, d orderflow.Delivery) error {
			got <- d
			return nil // acknowledged: this group will not see it again
		})
	}()
	d := <-got
	fmt.Println(d.Group, d.Type, d.OrderID, "attempt", d.Attempt)
	fmt.Println("traceparent", d.Headers["traceparent"])
	stop()
	if err := <-done; err != nil { // returns once its goroutines stopped and the ack is written
		log.Fatal(err)
	}
	// Output:
	// risk order.created ord_1 attempt 1
	// traceparent 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
}
