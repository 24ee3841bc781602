// Command lock measures orderflow's lockers against well-known peers, side by
// side in one run: uncontended acquire+release cycles per second, and, with G
// goroutines on one key, handoffs per second and acquire-latency percentiles.
//
//	go run ./lock -rounds 6 -d 1s
//
// Rounds interleave the implementations, in an order shuffled every round,
// so that a noisy neighbour on the shared machine hurts all of them alike;
// every measurement starts after a full GC, so none pays for the garbage of
// the one before (local's contended run makes a lot); rates are the median over rounds,
// percentiles are over all samples pooled. Results go to stdout as a markdown
// table (docs/benchmarks/lock.md has a run and the command).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	bsm "github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	rsgoredis "github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/logx"
	zrds "github.com/zeromicro/go-zero/core/stores/redis"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/lock/etcdlock"
	"github.com/orderflow/orderflow/lock/local"
	"github.com/orderflow/orderflow/lock/redislock"
)

// release gives one acquired lock back.
type release func(ctx context.Context) error

// acquirer takes one lock on a fixed key; each goroutine gets its own, since
// some peers keep per-holder state in their lock object.
type acquirer func(ctx context.Context) (release, error)

// impl makes acquirers for a key.
type impl struct {
	name  string
	token bool // hands out a fencing token
	new   func(key string) (acquirer, func())
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lock bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		redisAddr = flag.String("redis", "127.0.0.1:6379", "Redis address")
		etcdAddr  = flag.String("etcd", "127.0.0.1:2379", "etcd endpoint")
		d         = flag.Duration("d", time.Second, "duration of one measurement")
		rounds    = flag.Int("rounds", 6, "rounds (each implementation measured once per round)")
		g         = flag.Int("g", 8, "goroutines on one key in the contended runs")
		retry     = flag.Duration("retry", 10*time.Millisecond, "sleep between tries for the peers that poll (bsm, go-zero)")
		only      = flag.String("only", "", "comma-separated substrings: run only matching implementations")
		ttl       = flag.Duration("ttl", 10*time.Second, "lock TTL")
		contended = flag.Bool("contended", true, "also run the contended measurements")
		cpuprof   = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		seed      = flag.Uint64("seed", 1, "seed of the per-round shuffle of the order")
		verbose   = flag.Bool("v", false, "print every measurement to stderr as it ends")
	)
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	logx.Disable()
	var clients []*redis.Client

	// Every Redis implementation gets a client of its own, with go-redis's
	// defaults, so none inherits another's pool state.
	newRedis := func() *redis.Client {
		rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
		clients = append(clients, rdb)
		return rdb
	}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	if err := newRedis().Ping(context.Background()).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*etcdAddr}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer cli.Close()
	zr := zrds.MustNewRedis(zrds.RedisConf{Host: *redisAddr, Type: zrds.NodeType})
	rs := redsync.New(rsgoredis.NewPool(newRedis()))
	bsmc := bsm.New(newRedis())
	ours := redislock.New(newRedis(), "bench:")
	defer ours.Close()
	oursEtcd := etcdlock.New(cli, "/bench/")
	defer oursEtcd.Close(context.Background())
	loc := local.New()
	secs := int(ttl.Seconds())

	impls := []impl{
		{"local", true, func(key string) (acquirer, func()) {
			return func(ctx context.Context) (release, error) {
				le, err := loc.Acquire(ctx, key, *ttl)
				if err != nil {
					return nil, err
				}
				return le.Release, nil
			}, nil
		}},
		{"redislock (ours)", true, func(key string) (acquirer, func()) {
			return func(ctx context.Context) (release, error) {
				le, err := ours.Acquire(ctx, key, *ttl)
				if err != nil {
					return nil, err
				}
				return le.Release, nil
			}, nil
		}},
		{"redislock (ours, client per goroutine)", true, func(key string) (acquirer, func()) {
			// As 8 processes would: no in-process queue, every waiter
			// contends through Redis and its own pub/sub connection.
			own := redis.NewClient(&redis.Options{Addr: *redisAddr})
			l := redislock.New(own, "bench:")
			return func(ctx context.Context) (release, error) {
					le, err := l.Acquire(ctx, key, *ttl)
					if err != nil {
						return nil, err
					}
					return le.Release, nil
				}, func() {
					_ = l.Close()
					_ = own.Close()
				}
		}},
		{"bsm/redislock", false, func(key string) (acquirer, func()) {
			opt := &bsm.Options{RetryStrategy: bsm.LinearBackoff(*retry)}
			return func(ctx context.Context) (release, error) {
				l, err := bsmc.Obtain(ctx, key, *ttl, opt)
				if err != nil {
					return nil, err
				}
				return l.Release, nil
			}, nil
		}},
		{"redsync (defaults)", false, func(key string) (acquirer, func()) {
			m := rs.NewMutex(key, redsync.WithExpiry(*ttl))
			return func(ctx context.Context) (release, error) {
				if err := m.LockContext(ctx); err != nil {
					return nil, err
				}
				return func(ctx context.Context) error { _, err := m.UnlockContext(ctx); return err }, nil
			}, nil
		}},
		{"go-zero RedisLock", false, func(key string) (acquirer, func()) {
			l := zrds.NewRedisLock(zr, key)
			l.SetExpire(secs)
			return func(ctx context.Context) (release, error) {
				for {
					ok, err := l.AcquireCtx(ctx)
					if err != nil {
						return nil, err
					}
					if ok {
						return func(ctx context.Context) error { _, err := l.ReleaseCtx(ctx); return err }, nil
					}
					select {
					case <-time.After(*retry):
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
			}, nil
		}},
		{"etcdlock (ours)", true, func(key string) (acquirer, func()) {
			return func(ctx context.Context) (release, error) {
				le, err := oursEtcd.Acquire(ctx, key, *ttl)
				if err != nil {
					return nil, err
				}
				return le.Release, nil
			}, nil
		}},
		{"etcdlock (ours, Locker per goroutine)", true, func(key string) (acquirer, func()) {
			// As 8 processes would: each its own etcd lease and watch
			// (one client, as the Mutex rows share one too).
			l := etcdlock.New(cli, "/bench/")
			return func(ctx context.Context) (release, error) {
					le, err := l.Acquire(ctx, key, *ttl)
					if err != nil {
						return nil, err
					}
					return le.Release, nil
				}, func() {
					_ = l.Close(context.Background())
				}
		}},
		{"etcd concurrency.Mutex", true, func(key string) (acquirer, func()) {
			s, err := concurrency.NewSession(cli, concurrency.WithTTL(secs))
			if err != nil {
				return func(context.Context) (release, error) { return nil, err }, nil
			}
			m := concurrency.NewMutex(s, "/bench-mutex/"+key+"/")
			return func(ctx context.Context) (release, error) {
				if err := m.Lock(ctx); err != nil {
					return nil, err
				}
				return m.Unlock, nil
			}, func() { _ = s.Close() }
		}},
	}
	if *only != "" {
		impls = slices.DeleteFunc(impls, func(i impl) bool {
			for _, s := range strings.Split(*only, ",") {
				if strings.Contains(i.name, s) {
					return false
				}
			}
			return true
		})
	}

	// CPU per operation: this process's (every implementation's client
	// side) and the Redis server's main thread (meaningful for the Redis
	// rows; it includes whatever else that Redis serves meanwhile).
	cpu := &cpuMeter{rdb: clients[0]}
	rng := rand.New(rand.NewPCG(*seed, 0))
	fmt.Printf("rounds=%d d=%v g=%d ttl=%v retry=%v (bsm, go-zero) seed=%d; rates: median over rounds; latencies: all samples\n\n", *rounds, *d, *g, *ttl, *retry, *seed)
	unc := make(map[string]*result)
	con := make(map[string]*result)
	for r := range *rounds {
		// Shuffle the order every round, so no implementation always
		// runs right after the same neighbour (rotating it did not: the
		// neighbours stayed), or first, on a cold machine.
		order := slices.Clone(impls)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, im := range order {
			key := fmt.Sprintf("%d-%d-%s", time.Now().UnixNano(), r, strings.Fields(im.name)[0])
			res, err := measure(im, key+"-u", 1, *d, cpu)
			if err != nil {
				return fmt.Errorf("%s uncontended: %w", im.name, err)
			}
			merge(unc, im.name, res)
			if *verbose {
				fmt.Fprintf(os.Stderr, "round %d %-40s uncontended %8.0f/s\n", r, im.name, res.rates[0])
			}
			if !*contended {
				continue
			}
			res, err = measure(im, key+"-c", *g, *d, cpu)
			if err != nil {
				return fmt.Errorf("%s contended: %w", im.name, err)
			}
			merge(con, im.name, res)
			if *verbose {
				fmt.Fprintf(os.Stderr, "round %d %-40s contended   %8.0f/s\n", r, im.name, res.rates[0])
			}
		}
	}
	// Our token keys never expire (by design); the peers' keys are gone
	// once released. Leave the shared Redis as we found it.
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := clients[0]
	for iter := rdb.Scan(cctx, 0, "bench:*", 1000).Iterator(); iter.Next(cctx); {
		_ = rdb.Del(cctx, iter.Val()).Err()
	}
	report("Uncontended: 1 goroutine, acquire+release cycles", impls, unc, "redislock (ours)", 1)
	if !*contended {
		return nil
	}
	report(fmt.Sprintf("Contended: %d goroutines on one key, handoffs; latency = Acquire call to lock held", *g), impls, con, "redislock (ours)", *g)
	return nil
}

type result struct {
	rates     []float64
	lat       []time.Duration
	errors    int
	clientCPU []float64 // µs of this process's CPU per operation, per round
	redisCPU  []float64 // µs of the Redis main thread's CPU per operation, per round
}

// cpuMeter reads the CPU time used so far by this process and by the Redis
// server's main thread.
type cpuMeter struct{ rdb *redis.Client }

func (c *cpuMeter) read() (client, server time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := c.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return client, 0
	}
	for _, line := range strings.Split(info, "\n") {
		name, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (name == "used_cpu_sys_main_thread" || name == "used_cpu_user_main_thread") {
			f, _ := strconv.ParseFloat(v, 64)
			server += time.Duration(f * float64(time.Second))
		}
	}
	return client, server
}

func merge(m map[string]*result, name string, r *result) {
	if m[name] == nil {
		m[name] = &result{}
	}
	m[name].rates = append(m[name].rates, r.rates...)
	m[name].lat = append(m[name].lat, r.lat...)
	m[name].errors += r.errors
	m[name].clientCPU = append(m[name].clientCPU, r.clientCPU...)
	m[name].redisCPU = append(m[name].redisCPU, r.redisCPU...)
}

// measure runs g goroutines, each acquiring and releasing key in a loop for
// d. Each goroutine first takes and gives back the lock once, untimed, so
// that what every implementation sets up lazily (dialing its connections,
// granting an etcd lease, subscribing, opening a watch) is not counted as
// waiting; then all start together.
func measure(im impl, key string, g int, d time.Duration, cpu *cpuMeter) (*result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		res      result
		wg       sync.WaitGroup
		warm     sync.WaitGroup
		bad      error
		begin    = make(chan struct{})
		deadline time.Time // set before begin is closed
	)
	warm.Add(g)
	for range g {
		acq, closeFn := im.new(key)
		wg.Go(func() {
			if closeFn != nil {
				defer closeFn()
			}
			if rel, err := acq(ctx); err == nil {
				_ = rel(ctx)
			}
			warm.Done()
			<-begin
			var lat []time.Duration
			errs := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				rel, err := acq(ctx)
				if err != nil {
					if errs == 0 {
						fmt.Fprintf(os.Stderr, "%s: %v\n", im.name, err)
					}
					errs++
					if errs > 100 {
						mu.Lock()
						bad = err
						mu.Unlock()
						break
					}
					continue
				}
				lat = append(lat, time.Since(t0))
				if err := rel(ctx); err != nil && !errors.Is(err, context.Canceled) {
					errs++
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errors += errs
			mu.Unlock()
		})
	}
	warm.Wait()
	runtime.GC()
	c0, s0 := cpu.read()
	start := time.Now()
	deadline = start.Add(d)
	close(begin)
	wg.Wait()
	elapsed := time.Since(start)
	c1, s1 := cpu.read()
	if bad != nil {
		return nil, bad
	}
	n := float64(max(len(res.lat), 1))
	res.rates = []float64{float64(len(res.lat)) / elapsed.Seconds()}
	res.clientCPU = []float64{float64(c1-c0) / float64(time.Microsecond) / n}
	res.redisCPU = []float64{float64(s1-s0) / float64(time.Microsecond) / n}
	return &res, nil
}

func report(title string, impls []impl, m map[string]*result, base string, g int) {
	fmt.Printf("### %s\n\n", title)
	fmt.Println("| implementation | token | ops/s (median) | × ours-redis | × ours-redis, paired | p50 | p99 | p99.9 | max | errors | client CPU/op | Redis CPU/op |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	baseRate := 0.0
	var baseRates []float64
	if r := m[base]; r != nil {
		baseRate = median(r.rates)
		baseRates = r.rates
	}
	for _, im := range impls {
		r := m[im.name]
		rate := median(r.rates)
		ratio := "–"
		if baseRate > 0 {
			ratio = fmt.Sprintf("%.2f", rate/baseRate)
		}
		slices.Sort(r.lat)
		tok := "no"
		if im.token {
			tok = "yes"
		}
		// Paired: the median of this row's rate over ours in the same
		// round (measured minutes apart at most), which cancels the
		// load drifting between rounds.
		paired := "–"
		if len(baseRates) == len(r.rates) && len(r.rates) > 0 {
			qs := make([]float64, len(r.rates))
			for i := range r.rates {
				qs[i] = r.rates[i] / baseRates[i]
			}
			paired = fmt.Sprintf("%.2f", median(qs))
		}
		fmt.Printf("| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %d | %.1fµs | %.1fµs |\n", im.name, tok, rate, ratio, paired,
			pct(r.lat, 0.5), pct(r.lat, 0.99), pct(r.lat, 0.999), pct(r.lat, 1), r.errors,
			median(r.clientCPU), median(r.redisCPU))
	}
	fmt.Println()
	_ = g
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[len(s)/2]
}

func pct(sorted []time.Duration, q float64) string {
	if len(sorted) == 0 {
		return "–"
	}
	i := min(int(q*float64(len(sorted))), len(sorted)-1)
	return fmtDur(sorted[i])
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
