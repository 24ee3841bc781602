package redislock

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BenchmarkScripts is an uncontended cycle's two scripts alone, without the
// Locker around them: the difference to BenchmarkAcquireRelease is what the
// Locker and the lease cost on the client.
func BenchmarkScripts(b *testing.B) {
	addr := os.Getenv("ORDERFLOW_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	l := New(rdb, "orderflow:bench:")
	key := "scripts-" + time.Now().Format(time.RFC3339Nano)
	keys := l.keys(key)
	defer rdb.Del(ctx, keys...)
	id := l.id + "1:10000"
	for b.Loop() {
		res, err := acquireScript.Run(ctx, rdb, keys, 10000, id, queueKeep.Milliseconds(), l.wake).Slice()
		if err != nil {
			b.Fatal(err)
		}
		tok, _, err := parseAcquire(res)
		if err != nil || tok == 0 {
			b.Fatal(tok, err)
		}
		if err := releaseScript.Run(ctx, rdb, keys, value(tok, id), l.wake, "", 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
}
