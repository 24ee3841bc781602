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
		tok, err := fastAcquireScript.run(ctx, rdb, 2, keys[0], keys[1], 10000, id).Int64()
		if err != nil || tok <= 0 {
			b.Fatal(tok, err)
		}
		if err := fastReleaseScript.run(ctx, rdb, 1, keys[0], id).Err(); err != nil {
			b.Fatal(err)
		}
	}
}
