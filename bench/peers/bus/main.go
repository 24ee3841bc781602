// Command bus measures orderflow's Redis Streams bus (bus/redisstream)
// against watermill-redisstream, asynq and a batched reference (plain
// pipelined XADD, XREADGROUP COUNT 1000, one XACK per batch: the floor of
// what Redis Streams cost, without partitions, order or dedup), side by
// side in one run, on the same Redis: N messages of S bytes, C consumers,
// end to end (consumers running while publishers publish), then a paced
// run at R msgs/s for latency. For each it prints msgs/s, p50/p99 latency (publish call to
// handler entry) and what a correct bus must show as zero: lost,
// duplicated, and left pending.
//
//	go run ./bus -n 100000 -size 300 -consumers 4 -rounds 6
//
// Rounds interleave the implementations in an order rotated every round, so
// a noisy neighbour on the shared machine hurts all alike; msgs/s is the
// median over rounds, percentiles are pooled over rounds. Output is a
// markdown table (docs/benchmarks/redisstream.md has a run and the command).
//
// Ours runs with acknowledgement after success and the dedup marker on (its
// only mode). Each consumer is its own client, as separate processes would be.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	addr       = flag.String("addr", "127.0.0.1:6379", "Redis address (keys under a unique prefix, deleted after)")
	n          = flag.Int("n", 100000, "messages per throughput run")
	size       = flag.Int("size", 300, "payload bytes")
	consumers  = flag.Int("consumers", 4, "consumers (separate clients)")
	publishers = flag.Int("publishers", 4, "concurrent publishers in the throughput run")
	pubBatch   = flag.Int("batch", 100, "messages per publish call where the API takes many")
	orders     = flag.Int("orders", 10000, "distinct order ids (ours partitions by order)")
	rate       = flag.Int("rate", 1000, "msgs/s of the paced latency run (0: skip it)")
	paced      = flag.Duration("paced", 5*time.Second, "duration of the paced run")
	rounds     = flag.Int("rounds", 3, "rounds; each runs every implementation")
	only       = flag.String("impls", "ours,ref,watermill,asynq", "implementations to run, comma separated")
	timeout    = flag.Duration("timeout", 3*time.Minute, "give up a run after this long")
	inflight   = flag.Int("inflight", 0, "ours: Config.MaxInFlight per consumer (0: default)")
	partitions = flag.Int("partitions", 0, "ours: Config.Partitions (0: default, 16)")
	backlog    = flag.Bool("backlog", false, "publish everything first, then start the consumers: measures consuming alone (latencies then include the wait)")
	cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
)

// msg is one benchmark message. Its payload starts with the publish time.
type msg struct {
	id, order string
	payload   []byte
}

// sink is what consumers report to: deliveries per id and latencies.
type sink struct {
	handled atomic.Int64
	mu      sync.Mutex
	seen    map[string]int
	lat     []time.Duration
}

func newSink(n int) *sink {
	return &sink{seen: make(map[string]int, n), lat: make([]time.Duration, 0, n)}
}

// got records one delivery of a message with payload p.
func (s *sink) got(id string, p []byte) {
	now := time.Now().UnixNano()
	sent, _ := strconv.ParseInt(string(p[:19]), 10, 64)
	s.mu.Lock()
	s.seen[id]++
	s.lat = append(s.lat, time.Duration(now-sent))
	s.mu.Unlock()
	s.handled.Add(1)
}

// impl is one bus under test, set up fresh for each run.
type impl interface {
	// start runs the consumers, reporting to s, until stop is called.
	start(ctx context.Context, s *sink) (stop func(), err error)
	// publish publishes ms (stamping the publish time into their payloads).
	publish(ctx context.Context, ms []msg) error
	// batched reports whether publish sends many messages in one call.
	batched() bool
	// pending counts messages delivered or deliverable and not acknowledged.
	pending(ctx context.Context) (int64, error)
	close()
}

type maker struct {
	name string
	new  func(prefix string) (impl, error)
}

var makers = []maker{
	{"orderflow redisstream", newOurs},
	{"watermill-redisstream", newWatermill},
	{"asynq", newAsynq},
	{"batched reference", newRef},
}

type result struct {
	rate     float64 // msgs/s
	pubRate  float64 // msgs/s of publishing alone
	goCPU    float64 // µs of this process's CPU per message (publishers and consumers)
	redisCPU float64 // µs of Redis CPU per message (all of Redis: on a shared one, others' too)
	lat      []time.Duration
	lost     int
	dup      int
	pending  int64
	timedOut bool
}

func main() {
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run() error {
	var ms []maker
	for _, m := range makers {
		if slices.Contains(splitComma(*only), shortName(m.name)) {
			ms = append(ms, m)
		}
	}
	through := map[string][]result{}
	pacedRes := map[string][]result{}
	for r := range *rounds {
		for i := range ms {
			m := ms[(i+r)%len(ms)]
			res, err := once(m, *n, 0)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			through[m.name] = append(through[m.name], res)
			fmt.Fprintf(os.Stderr, "round %d %-22s %8.0f msgs/s (published at %.0f/s) CPU/msg go %.1fµs redis %.1fµs lost %d dup %d pending %d\n",
				r+1, m.name, res.rate, res.pubRate, res.goCPU, res.redisCPU, res.lost, res.dup, res.pending)
			if *rate > 0 {
				res, err := once(m, int(paced.Seconds()*float64(*rate)), *rate)
				if err != nil {
					return fmt.Errorf("%s paced: %w", m.name, err)
				}
				pacedRes[m.name] = append(pacedRes[m.name], res)
				fmt.Fprintf(os.Stderr, "round %d %-22s paced p99 %v\n", r+1, m.name, pct(res.lat, 0.99))
			}
		}
	}
	mode := "end to end (consumers running while publishers publish)"
	if *backlog {
		mode = "backlog (published first, then consumed; p50/p99 include the wait)"
	}
	fmt.Printf("%s: ", mode)
	fmt.Printf("%d messages of %d B, %d consumers, %d publishers (batch %d where the API takes many), %d rounds; paced %d msgs/s for %v\n\n",
		*n, *size, *consumers, *publishers, *pubBatch, *rounds, *rate, *paced)
	fmt.Println("| implementation | msgs/s (median) | msgs/s per round | CPU µs/msg Go / Redis (median) | p50 | p99 | paced p50 | paced p99 | lost | dup | pending |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, m := range ms {
		rs := through[m.name]
		var rates, goCPU, redisCPU []float64
		var lat, plat []time.Duration
		lost, dup, pend := 0, 0, int64(0)
		for _, r := range append(rs, pacedRes[m.name]...) {
			lost += r.lost
			dup += r.dup
			pend += r.pending
		}
		for _, r := range rs {
			rates = append(rates, r.rate)
			goCPU = append(goCPU, r.goCPU)
			redisCPU = append(redisCPU, r.redisCPU)
			lat = append(lat, r.lat...)
		}
		for _, r := range pacedRes[m.name] {
			plat = append(plat, r.lat...)
		}
		per := ""
		for i, x := range rates {
			if i > 0 {
				per += " "
			}
			per += fmt.Sprintf("%.0f", x)
		}
		fmt.Printf("| %s | %.0f | %s | %.1f / %.1f | %v | %v | %v | %v | %d | %d | %d |\n", m.name, median(rates), per,
			median(goCPU), median(redisCPU), pct(lat, 0.5), pct(lat, 0.99), pct(plat, 0.5), pct(plat, 0.99), lost, dup, pend)
	}
	return nil
}

// once runs one fresh bus: total messages, published as fast as possible
// (perSec 0) or paced at perSec by one publisher, one message per call.
func once(m maker, total, perSec int) (result, error) {
	// Not under "bench:": bench/peers/lock deletes every "bench:*" key
	// when it cleans up, which would delete this harness's streams mid-run.
	prefix := fmt.Sprintf("busbench:%d:%d", os.Getpid(), time.Now().UnixNano())
	b, err := m.new(prefix)
	if err != nil {
		return result{}, err
	}
	defer b.close()
	defer cleanup(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	s := newSink(total)
	msgs := make([]msg, total)
	for i := range msgs {
		msgs[i] = msg{id: fmt.Sprintf("evt_%d", i), order: fmt.Sprintf("ord_%d", i%*orders)}
	}
	cpu0, rcpu0 := procCPU(), redisCPU(ctx)
	var stop func()
	if !*backlog || perSec > 0 {
		if stop, err = b.start(ctx, s); err != nil {
			return result{}, err
		}
	}
	begin := time.Now()
	var pubErr error
	if perSec > 0 {
		pubErr = pace(ctx, b, msgs, perSec)
	} else {
		pubErr = flood(ctx, b, msgs)
	}
	if pubErr != nil {
		if stop != nil {
			stop()
		}
		return result{}, pubErr
	}
	res := result{pubRate: float64(total) / time.Since(begin).Seconds()}
	if stop == nil {
		begin = time.Now()
		if stop, err = b.start(ctx, s); err != nil {
			return result{}, err
		}
	}
	for s.handled.Load() < int64(total) {
		if ctx.Err() != nil {
			res.timedOut = true
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(begin)
	res.goCPU = float64((procCPU() - cpu0).Microseconds()) / float64(total)
	res.redisCPU = float64((redisCPU(ctx) - rcpu0).Microseconds()) / float64(total)
	// Give late duplicates and acks a moment to show.
	time.Sleep(500 * time.Millisecond)
	stop()
	res.rate = float64(s.handled.Load()) / elapsed.Seconds()
	s.mu.Lock()
	for _, m := range msgs {
		switch k := s.seen[m.id]; {
		case k == 0:
			res.lost++
		case k > 1:
			res.dup++
		}
	}
	res.lat = s.lat
	s.mu.Unlock()
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	res.pending, err = b.pending(pctx)
	return res, err
}

// flood publishes msgs from several goroutines, in batches where the API
// takes them.
func flood(ctx context.Context, b impl, msgs []msg) error {
	per := *pubBatch
	if !b.batched() {
		per = 1
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *publishers)
	for range *publishers {
		wg.Go(func() {
			for {
				i := int(next.Add(int64(per))) - per
				if i >= len(msgs) {
					return
				}
				chunk := msgs[i:min(i+per, len(msgs))]
				stamp(chunk)
				if err := b.publish(ctx, chunk); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// pace publishes one message per call at perSec.
func pace(ctx context.Context, b impl, msgs []msg, perSec int) error {
	t := time.NewTicker(time.Second / time.Duration(perSec))
	defer t.Stop()
	for i := range msgs {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		stamp(msgs[i : i+1])
		if err := b.publish(ctx, msgs[i:i+1]); err != nil {
			return err
		}
	}
	return nil
}

// stamp fills payloads: 19 digits of publish time, then padding to -size.
func stamp(ms []msg) {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	for i := range ms {
		p := make([]byte, max(*size, 20))
		copy(p, now)
		for j := len(now); j < len(p); j++ {
			p[j] = 'x'
		}
		ms[i].payload = p
	}
}

func cleanup(prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: *addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, pat := range []string{prefix + "*", "asynq:{" + prefix + "}*"} {
		iter := rdb.Scan(ctx, 0, pat, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 1000 {
				rdb.Unlink(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
		}
	}
}

// procCPU is this process's CPU time so far (user + system).
func procCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the Redis server's CPU time so far (used_cpu_user +
// used_cpu_sys of INFO cpu); 0 when it cannot be read.
func redisCPU(ctx context.Context) time.Duration {
	rdb := redis.NewClient(&redis.Options{Addr: *addr})
	defer rdb.Close()
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))].Round(time.Microsecond)
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
