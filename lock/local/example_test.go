package local_test

import (
	"context"
	"fmt"
	"time"

	"github.com/orderflow/orderflow/lock/local"
)

// A leader-only job takes the lock, passes the lease's token with every write
// (the store keeps the largest token it has seen and refuses smaller ones),
// stops when Done closes, and releases.
func ExampleLocker() {
	locker := local.New()
	ctx := context.Background()

	le, err := locker.Acquire(ctx, "relay", 10*time.Second)
	if err != nil {
		fmt.Println("not leader:", err)
		return
	}
	first := le.Token()
	select {
	case <-le.Done():
		fmt.Println("lost the lock; stop writing")
	default:
		fmt.Println("leader; write with token", "T1")
	}
	_ = le.Release(ctx)

	next, _ := locker.Acquire(ctx, "relay", 10*time.Second)
	defer next.Release(ctx)
	fmt.Println("next holder's token is larger:", next.Token() > first)
	// Output:
	// leader; write with token T1
	// next holder's token is larger: true
}
