package redisstream_test

import (
	"context"
	"log"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/redisstream"
	"github.com/redis/go-redis/v9"
)

// The relay publishes outbox events; risk workers consume them. Both sides
// must agree on Prefix and Partitions. Consumer should be stable across
// restarts of one replica (a pod name in a StatefulSet), so a restarted
// replica takes back its own pending entries at once.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	bus := redisstream.New(rdb, redisstream.Config{Prefix: "orders", Partitions: 16, Consumer: "risk-0"})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The relay: append, then mark the outbox rows sent. Publishing again
	// after a crash is safe: the group acknowledges a done event unseen.
	err := bus.Publish(ctx, []orderflow.Event{{
		ID: "evt_1", Type: orderflow.EventOrderCreated, OrderID: "ord_1",
		Payload: []byte(`{"order_id":"ord_1"}`), Headers: map[string]string{"traceparent": "00-…-01"},
		CreatedAt: time.Now(),
	}})
	if err != nil {
		log.Fatal(err)
	}

	// A risk worker: nil acknowledges (and marks the event done), an error
	// retries, orderflow.Permanent dead-letters at once.
	// Trimming deletes what every group acknowledged; it ends with ctx.
	var trimmer sync.WaitGroup
	defer trimmer.Wait()
	trimmer.Go(func() { bus.RunTrimmer(ctx, time.Minute, time.Hour) })
	err = bus.Consume(ctx, "risk", func(ctx context.Context, d orderflow.Delivery) error {
		log.Printf("score %s (attempt %d)", d.OrderID, d.Attempt)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
