package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/redisstream"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/relay"
	"github.com/orderflow/orderflow/store/postgres"
	"github.com/orderflow/orderflow/telemetry"
	"github.com/orderflow/orderflow/workerpool"
)

// distConfig is the distributed mode's flags beyond config.
type distConfig struct {
	Partitions     int
	StreamPrefix   string
	Consumer       string
	ReconcileAfter time.Duration
	RelayTTL       time.Duration
	DedupTTL       time.Duration
	CounterPrefix  string
	LockPrefix     string
}

func addDistFlags(fs *flag.FlagSet, d *distConfig) {
	fs.IntVar(&d.Partitions, "partitions", 16, "order, risk: Redis streams events are spread over by order id (the same in every process)")
	fs.StringVar(&d.StreamPrefix, "stream-prefix", "orderflow:events", "order, risk: stream name prefix (the same in every process)")
	fs.StringVar(&d.Consumer, "consumer", "", "risk: consumer name in the group, stable across restarts of one replica (default hostname-pid)")
	fs.DurationVar(&d.ReconcileAfter, "reconcile-after", time.Minute, "order: an order undecided this long after its event was published gets the event published again")
	fs.DurationVar(&d.RelayTTL, "relay-ttl", 10*time.Second, "order: TTL of the outbox relay lease")
	fs.DurationVar(&d.DedupTTL, "dedup-ttl", redisstream.DefaultDedupTTL, "risk: how long the bus remembers an event the group handled, so that a republication is acknowledged unhandled (the same in every risk process; keep it well above -reconcile-after; Redis keeps one id per event for it)")
	fs.StringVar(&d.LockPrefix, "lock-prefix", "", "order: key prefix of the relay lock in etcd or Redis (one per deployment sharing them)")
	fs.StringVar(&d.CounterPrefix, "counter-prefix", "", "risk: key prefix of the velocity counters in Redis (default orderflow:risk:)")
}

// parseDist parses the flags of order or risk in the distributed mode.
func parseDist(name string, args []string, getenv func(string) string, stdout io.Writer) (config, distConfig, *slog.Logger, error) {
	var c config
	var d distConfig
	fs := newFlagSet(name, &c)
	addDistFlags(fs, &d)
	if err := parseFlags(fs, args, getenv); err != nil {
		if errors.Is(err, errHelp) {
			printDefaults(fs, stdout)
		}
		return c, d, nil, err
	}
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return c, d, nil, err
	}
	if !isPostgres(c.Store) {
		return c, d, nil, fmt.Errorf("bad flag: -store %q: %s needs postgres://… in the distributed mode", c.Store, name)
	}
	if !strings.HasPrefix(c.Bus, "redis://") && !strings.HasPrefix(c.Bus, "rediss://") {
		return c, d, nil, fmt.Errorf("bad flag: -bus %q: the distributed mode needs redis://…", c.Bus)
	}
	if c.Workers < 1 || c.QueueSize < 1 || c.ShutdownTimeout <= 0 || d.Partitions < 1 {
		return c, d, nil, errors.New("bad flag: -workers, -queue-size, -partitions and -shutdown-timeout must be positive")
	}
	if d.DedupTTL < time.Minute {
		return c, d, nil, fmt.Errorf("bad flag: -dedup-ttl %v: at least 1m (it must outlast a republication by -reconcile-after)", d.DedupTTL)
	}
	return c, d, telemetry.NewLogger(stdout, level), nil
}

// busConfig is the Redis bus's configuration shared by order and risk.
func busConfig(d distConfig, log *slog.Logger) redisstream.Config {
	return redisstream.Config{Prefix: d.StreamPrefix, Partitions: d.Partitions, Consumer: d.Consumer, DedupTTL: d.DedupTTL, Logger: log}
}

// runOrderDist is `orderflow order --store postgres://…`: the order service
// on PostgreSQL, and a candidate outbox relay to Redis Streams. Every
// replica competes for the relay lock; only the holder publishes.
func runOrderDist(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	c, d, log, err := parseDist("order", args, getenv, stdout)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	secrets, err := callbackSecrets(modeOrder, c.CallbackSecret, log)
	if err != nil {
		return err
	}
	st, err := postgres.Open(ctx, c.Store)
	if err != nil {
		return fmt.Errorf("store unusable: %w", err)
	}
	defer st.Close()
	rdb, err := openRedis(c.Bus)
	if err != nil {
		return fmt.Errorf("bad flag: -bus: %w", err)
	}
	defer rdb.Close()
	lk, err := openLock(ctx, c.Lock, d.LockPrefix)
	if err != nil {
		return err
	}
	defer lk.close()
	tp, stopTracing, err := setupTracing(ctx, getenv, version())
	if err != nil {
		return err
	}
	otel.SetTracerProvider(tp)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
		defer cancel()
		_ = stopTracing(sctx)
	}()
	telemetry.InstallPropagator()

	bus := redisstream.New(rdb, busConfig(d, log))
	metrics := telemetry.New()
	rm := relay.NewMetrics()
	if err := rm.Register(metrics.Registry); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	rl, err := relay.New(relay.Config{
		Outbox: st, Publisher: bus, Locker: lk, TTL: d.RelayTTL,
		ReconcileAfter: d.ReconcileAfter, Logger: log, Metrics: rm,
	})
	if err != nil {
		return err
	}
	pool := workerpool.New(workerpool.Config{Workers: c.Workers, QueueSize: c.QueueSize, OnWait: metrics.PoolWaitObserver("apply")})
	if err := metrics.RegisterPool("apply", pool); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	svc, err := order.New(order.Config{
		Store: newWiredStore(st, rl.Notify, tp), Pool: pool, Logger: log, SweepInterval: c.SweepInterval,
	})
	if err != nil {
		return err
	}
	if err := metrics.RegisterOrderService(svc); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	tokens := splitList(c.APIToken)
	public := httpapi.NewPublic(httpapi.PublicConfig{
		Service: svc, CallbackSecrets: secrets, APITokens: tokens,
		Ready:   map[string]orderflow.Pinger{"store": st, "bus": bus, "lock": lk},
		Metrics: metrics, Logger: log,
	})
	admin := httpapi.NewAdmin(httpapi.AdminConfig{Metrics: metrics, Logger: log})
	tasks := []func(context.Context){
		func(ctx context.Context) { _ = svc.Run(ctx) },
		func(ctx context.Context) { _ = rl.Run(ctx) },
	}
	return serveDist(ctx, c, log, public, admin, tasks, func(sctx context.Context) error { return pool.Close(sctx) })
}

// serveDist runs the public and admin listeners and tasks until ctx ends,
// then stops the tasks, the listeners and finally calls drain.
func serveDist(ctx context.Context, c config, log *slog.Logger, public, admin http.Handler, tasks []func(context.Context), drain func(context.Context) error) error {
	a := &app{log: log}
	pubLn, err := a.listen(ctx, "public", c.Addr)
	if err != nil {
		return err
	}
	admLn, err := a.listen(ctx, "admin", c.AdminAddr)
	if err != nil {
		pubLn.Close()
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	servers := []*http.Server{newHTTPServer(public, log), newHTTPServer(admin, log)}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for i, l := range []net.Listener{pubLn, admLn} {
		wg.Go(func() {
			if err := servers[i].Serve(l); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				cancel()
			}
		})
	}
	taskCtx, stopTasks := context.WithCancel(context.Background())
	var tasksWG sync.WaitGroup
	for _, task := range tasks {
		tasksWG.Go(func() { task(taskCtx) })
	}
	log.Info("started", "pid", os.Getpid())
	<-runCtx.Done()
	log.Info("shutting down", "timeout", c.ShutdownTimeout.String())
	sctx, scancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer scancel()
	stopTasks()
	tasksWG.Wait()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	wg.Wait()
	if drain != nil {
		if err := drain(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	close(errc)
	for err := range errc {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Info("stopped cleanly")
	}
	return errors.Join(errs...)
}
