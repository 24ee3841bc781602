package hashring_test

import (
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/hashring"
)

// A callback client routes each order id to one order-service replica, and
// falls back along the ring when that replica is down: every client picks
// the same owner and, on failure, the same next replica.
func Example() {
	ring, err := hashring.New([]hashring.Member{
		{Name: "10.0.0.1:8080"},
		{Name: "10.0.0.2:8080"},
		{Name: "10.0.0.3:8080"},
	})
	if err != nil {
		panic(err)
	}
	down := map[string]bool{"10.0.0.2:8080": true} // say a health check failed

	send := func(replica, orderID string) error {
		if down[replica] {
			return errors.New("connection refused")
		}
		return nil
	}
	// One buffer per worker: AppendN allocates nothing on the hot path.
	buf := make([]string, 0, 3)
	for _, orderID := range []string{"order-2", "order-8", "order-7"} {
		buf = ring.AppendN(buf[:0], orderID, 3) // owner first, then fallbacks
		for _, replica := range buf {
			if err := send(replica, orderID); err == nil {
				fmt.Printf("%s -> %s (owner %s)\n", orderID, replica, buf[0])
				break
			}
		}
	}
	// Output:
	// order-2 -> 10.0.0.3:8080 (owner 10.0.0.2:8080)
	// order-8 -> 10.0.0.1:8080 (owner 10.0.0.2:8080)
	// order-7 -> 10.0.0.1:8080 (owner 10.0.0.1:8080)
}

func ExampleRing_Locate() {
	ring, _ := hashring.New([]hashring.Member{{Name: "a"}, {Name: "b"}, {Name: "c"}})
	before, _ := ring.Locate("order-42")
	ring.Add(hashring.Member{Name: "d"})
	after, _ := ring.Locate("order-42")
	// A key either stays or moves to the newcomer, never between old members.
	fmt.Println(after == before || after == "d")
	// Output: true
}

// A pool that owns all its placements caps every member at 1.25× the
// average, so a hot arc of the ring spills onto the next members.
func ExampleBounded() {
	ring, _ := hashring.New([]hashring.Member{{Name: "a"}, {Name: "b"}, {Name: "c"}})
	pool, _ := hashring.NewBounded(ring, hashring.BoundedConfig{LoadFactor: 1.25})
	for i := range 1000 {
		pool.Place(fmt.Sprintf("session-%d", i))
	}
	most := 0
	for _, n := range pool.Loads() {
		most = max(most, n)
	}
	fmt.Println(most <= 417) // ⌈1.25 × 1000 / 3⌉
	// Output: true
}
