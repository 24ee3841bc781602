package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/bus/redisstream"
)

func splitComma(s string) []string { return strings.Split(s, ",") }

// shortName is the -impls name of an implementation.
func shortName(name string) string {
	switch {
	case strings.HasPrefix(name, "orderflow"):
		return "ours"
	case strings.HasPrefix(name, "watermill"):
		return "watermill"
	case strings.HasPrefix(name, "batched reference"):
		return "ref"
	default:
		return name
	}
}

const group = "bench"

// ours: bus/redisstream, defaults except a quiet logger and the key prefix.
type ours struct {
	prefix  string
	pub     *redis.Client
	bus     *redisstream.Bus
	clients []*redis.Client
}

func newOurs(prefix string) (impl, error) {
	o := &ours{prefix: prefix, pub: redis.NewClient(&redis.Options{Addr: *addr})}
	o.bus = redisstream.New(o.pub, o.config(""))
	return o, nil
}

func (o *ours) config(consumer string) redisstream.Config {
	return redisstream.Config{Prefix: o.prefix, Consumer: consumer, MaxInFlight: *inflight, Partitions: *partitions,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func (o *ours) start(ctx context.Context, s *sink) (func(), error) {
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range *consumers {
		rdb := redis.NewClient(&redis.Options{Addr: *addr})
		o.clients = append(o.clients, rdb)
		b := redisstream.New(rdb, o.config(fmt.Sprintf("c%d", i)))
		wg.Go(func() {
			_ = b.Consume(cctx, group, func(_ context.Context, d orderflow.Delivery) error {
				s.got(d.ID, d.Payload)
				return nil
			})
		})
	}
	return func() { cancel(); wg.Wait() }, nil
}

func (o *ours) publish(ctx context.Context, ms []msg) error {
	evs := make([]orderflow.Event, len(ms))
	// Outbox events carry their creation time; the dedup check uses it to
	// read only the marker sets that can hold the event.
	now := time.Now()
	for i, m := range ms {
		evs[i] = orderflow.Event{ID: m.id, Type: orderflow.EventOrderCreated, OrderID: m.order, Payload: m.payload,
			Headers: traceHeaders, CreatedAt: now}
	}
	return o.bus.Publish(ctx, evs)
}

// traceHeaders is every event's trace context, one map for all: Publish
// only reads it, and a map per event would be the harness's cost, not the
// bus's.
var traceHeaders = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}

func (o *ours) batched() bool { return true }

func (o *ours) pending(ctx context.Context) (int64, error) {
	var total int64
	n := *partitions
	if n <= 0 {
		n = redisstream.DefaultPartitions
	}
	for p := range n {
		x, err := o.pub.XPending(ctx, o.bus.Stream(p), group).Result()
		if err != nil {
			return 0, err
		}
		total += x.Count
	}
	return total, nil
}

func (o *ours) close() {
	for _, c := range o.clients {
		_ = c.Close()
	}
	_ = o.pub.Close()
}

// watermill-redisstream: one topic, C subscribers in one consumer group,
// each acking every message after the handler.
type wm struct {
	topic   string
	pub     *redis.Client
	p       *wmredis.Publisher
	clients []*redis.Client
}

var wmLogger = watermill.NopLogger{}

func newWatermill(prefix string) (impl, error) {
	w := &wm{topic: prefix, pub: redis.NewClient(&redis.Options{Addr: *addr})}
	p, err := wmredis.NewPublisher(wmredis.PublisherConfig{Client: w.pub}, wmLogger)
	if err != nil {
		return nil, err
	}
	w.p = p
	return w, nil
}

func (w *wm) start(ctx context.Context, s *sink) (func(), error) {
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var subs []*wmredis.Subscriber
	for i := range *consumers {
		rdb := redis.NewClient(&redis.Options{Addr: *addr})
		w.clients = append(w.clients, rdb)
		sub, err := wmredis.NewSubscriber(wmredis.SubscriberConfig{
			Client: rdb, ConsumerGroup: group, Consumer: fmt.Sprintf("c%d", i), OldestId: "0",
		}, wmLogger)
		if err != nil {
			cancel()
			return nil, err
		}
		subs = append(subs, sub)
		ch, err := sub.Subscribe(cctx, w.topic)
		if err != nil {
			cancel()
			return nil, err
		}
		wg.Go(func() {
			for m := range ch {
				s.got(m.UUID, m.Payload)
				m.Ack()
			}
		})
	}
	return func() {
		cancel()
		for _, sub := range subs {
			_ = sub.Close()
		}
		wg.Wait()
	}, nil
}

func (w *wm) publish(_ context.Context, ms []msg) error {
	out := make([]*message.Message, len(ms))
	for i, m := range ms {
		out[i] = message.NewMessage(m.id, m.payload)
	}
	return w.p.Publish(w.topic, out...)
}

func (w *wm) batched() bool { return true }

func (w *wm) pending(ctx context.Context) (int64, error) {
	x, err := w.pub.XPending(ctx, w.topic, group).Result()
	if err != nil {
		return 0, err
	}
	return x.Count, nil
}

func (w *wm) close() {
	_ = w.p.Close()
	for _, c := range w.clients {
		_ = c.Close()
	}
	_ = w.pub.Close()
}

// asynq: one queue, C servers of 64 workers each (ours runs 64 handlers per
// consumer), tasks enqueued one per call (asynq has no batch enqueue).
type aq struct {
	queue  string
	opt    asynq.RedisClientOpt
	client *asynq.Client
	insp   *asynq.Inspector
}

func newAsynq(prefix string) (impl, error) {
	opt := asynq.RedisClientOpt{Addr: *addr}
	return &aq{queue: prefix, opt: opt, client: asynq.NewClient(opt), insp: asynq.NewInspector(opt)}, nil
}

func (a *aq) start(_ context.Context, s *sink) (func(), error) {
	var srvs []*asynq.Server
	for range *consumers {
		srv := asynq.NewServer(a.opt, asynq.Config{
			Concurrency: 64, Queues: map[string]int{a.queue: 1}, LogLevel: asynq.FatalLevel,
		})
		if err := srv.Start(asynq.HandlerFunc(func(_ context.Context, t *asynq.Task) error {
			p := t.Payload()
			id, _, _ := strings.Cut(string(p[20:]), "|")
			s.got(id, p)
			return nil
		})); err != nil {
			return nil, err
		}
		srvs = append(srvs, srv)
	}
	return func() {
		for _, srv := range srvs {
			srv.Shutdown()
		}
	}, nil
}

func (a *aq) publish(ctx context.Context, ms []msg) error {
	for _, m := range ms {
		// The id rides in the payload after the 19-digit stamp: "…|id|".
		p := append(m.payload[:20:20], m.id+"|"...)
		p = append(p, m.payload[min(len(p), len(m.payload)):]...)
		p[19] = '|'
		if _, err := a.client.EnqueueContext(ctx, asynq.NewTask("bench", p), asynq.Queue(a.queue), asynq.MaxRetry(25)); err != nil {
			return err
		}
	}
	return nil
}

func (a *aq) batched() bool { return false }

func (a *aq) pending(context.Context) (int64, error) {
	qi, err := a.insp.GetQueueInfo(a.queue)
	if err != nil {
		return 0, err
	}
	return int64(qi.Pending + qi.Active + qi.Retry + qi.Scheduled), nil
}

func (a *aq) close() {
	_ = a.insp.DeleteQueue(a.queue, true)
	_ = a.client.Close()
	_ = a.insp.Close()
}

// ref: the batched reference of the issue, the floor of what Redis Streams
// cost here: publishers pipeline plain XADDs to one stream; each consumer
// loops XREADGROUP (COUNT refCount, BLOCK) → handler per entry → one XACK of
// the whole batch. No partitions, no order, no dedup, no retries, no
// reclaim: what ours does on top of this is what it must pay for.
type ref struct {
	stream  string
	pub     *redis.Client
	clients []*redis.Client
}

// refCount is the reference's XREADGROUP COUNT.
const refCount = 1000

func newRef(prefix string) (impl, error) {
	return &ref{stream: prefix + ":ref", pub: redis.NewClient(&redis.Options{Addr: *addr})}, nil
}

func (r *ref) start(ctx context.Context, s *sink) (func(), error) {
	if err := r.pub.XGroupCreateMkStream(ctx, r.stream, group, "0").Err(); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range *consumers {
		rdb := redis.NewClient(&redis.Options{Addr: *addr})
		r.clients = append(r.clients, rdb)
		name := fmt.Sprintf("c%d", i)
		wg.Go(func() {
			ids := make([]string, 0, refCount)
			for cctx.Err() == nil {
				res, err := rdb.XReadGroup(cctx, &redis.XReadGroupArgs{
					Group: group, Consumer: name, Streams: []string{r.stream, ">"}, Count: refCount, Block: time.Second,
				}).Result()
				if err != nil {
					continue
				}
				ids = ids[:0]
				for _, st := range res {
					for _, m := range st.Messages {
						p, _ := m.Values["payload"].(string)
						id, _ := m.Values["id"].(string)
						s.got(id, []byte(p))
						ids = append(ids, m.ID)
					}
				}
				if len(ids) > 0 {
					_ = rdb.XAck(context.Background(), r.stream, group, ids...).Err()
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }, nil
}

func (r *ref) publish(ctx context.Context, ms []msg) error {
	pipe := r.pub.Pipeline()
	for _, m := range ms {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.stream, Values: []any{"id", m.id, "payload", m.payload}})
	}
	_, err := pipe.Exec(ctx)
	return err
}

func (r *ref) batched() bool { return true }

func (r *ref) pending(ctx context.Context) (int64, error) {
	x, err := r.pub.XPending(ctx, r.stream, group).Result()
	if err != nil {
		return 0, err
	}
	return x.Count, nil
}

func (r *ref) close() {
	for _, c := range r.clients {
		_ = c.Close()
	}
	_ = r.pub.Close()
}
