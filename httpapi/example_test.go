package httpapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/store/sqlite"
	"github.com/orderflow/orderflow/telemetry"
	"github.com/orderflow/orderflow/workerpool"
)

// Example_wiring shows how a binary puts the order service together, and the
// order things stop in: HTTP first (no new work), then the sweeper, then the
// pool (drains queued applies), then the store (flushes pending commits).
func Example_wiring() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	log := telemetry.NewLogger(os.Stderr, slog.LevelInfo)
	metrics := telemetry.New()

	store, err := sqlite.Open(ctx, "data/orderflow.db")
	if err != nil {
		log.Error("open store", "err", err)
		return
	}
	pool := workerpool.New(workerpool.Config{OnWait: metrics.PoolWaitObserver("apply")})
	_ = metrics.RegisterPool("apply", pool)
	svc, err := order.New(order.Config{Store: store, Pool: pool, Logger: log})
	if err != nil {
		log.Error("service", "err", err)
		return
	}
	_ = metrics.RegisterOrderService(svc)
	public := &http.Server{Addr: ":8080", Handler: httpapi.NewPublic(httpapi.PublicConfig{
		Service:         svc,
		CallbackSecrets: [][]byte{[]byte("from --callback-secret")},
		Ready:           map[string]orderflow.Pinger{"store": store},
		Metrics:         metrics,
		Logger:          log,
	})}
	admin := &http.Server{Addr: "127.0.0.1:6060", Handler: httpapi.NewAdmin(httpapi.AdminConfig{Metrics: metrics, Logger: log})}

	sweeperDone := make(chan struct{})
	go func() { defer close(sweeperDone); _ = svc.Run(ctx) }()
	go func() { _ = admin.ListenAndServe() }()
	if err := public.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
	}

	// On SIGTERM (elsewhere: public.Shutdown was called):
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = admin.Shutdown(shutdownCtx)
	stop()
	<-sweeperDone
	_ = pool.Close(shutdownCtx)
	_ = store.Close()
}
