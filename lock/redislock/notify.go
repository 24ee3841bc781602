package redislock

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// notifier is a Locker's one pub/sub connection, subscribed to the Locker's
// own grant channel from its first wait until Close. A release hands the
// lock to the first waiter in the queue and publishes "<waiter id> <token>"
// on that waiter's Locker's channel, so a grant wakes exactly one Locker and
// one waiter in it, and nobody subscribes or unsubscribes per Acquire.
type notifier struct {
	rdb     redis.UniversalClient
	channel string

	mu      sync.Mutex
	ps      *redis.PubSub // nil until the first waiter, and after close
	ready   chan struct{} // closed once Redis confirmed the subscription
	exited  chan struct{} // closed when dispatch returned
	waiters map[string]chan string
	closed  bool
}

// listening reports whether grants are heard: then a waiter that registers
// before its first try cannot miss one.
func (n *notifier) listening() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ps != nil && isClosed(n.ready)
}

// register makes grants for waiter id arrive on the returned channel, and
// subscribes if nobody did yet. Grants published before ready is closed may
// be lost: a waiter tries again once it is.
func (n *notifier) register(ctx context.Context, id string) (grants <-chan string, ready <-chan struct{}, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, nil, redis.ErrClosed
	}
	if n.ps == nil {
		ps := n.rdb.Subscribe(context.WithoutCancel(ctx))
		if err := ps.Subscribe(ctx, n.channel); err != nil {
			_ = ps.Close()
			return nil, nil, err
		}
		n.ps, n.ready, n.exited = ps, make(chan struct{}), make(chan struct{})
		go n.dispatch(ps.ChannelWithSubscriptions(), n.ready, n.exited)
	}
	if n.waiters == nil {
		n.waiters = make(map[string]chan string)
	}
	ch := make(chan string, 1)
	n.waiters[id] = ch
	return ch, n.ready, nil
}

// unregister forgets waiter id: a grant for it arriving later is dropped,
// and the waiter's leaving script passes such a lock on.
func (n *notifier) unregister(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.waiters, id)
}

func (n *notifier) dispatch(msgs <-chan any, ready, exited chan struct{}) {
	defer close(exited)
	for m := range msgs {
		switch m := m.(type) {
		case *redis.Message:
			id, tok, ok := strings.Cut(m.Payload, " ")
			if !ok {
				continue
			}
			n.mu.Lock()
			if ch := n.waiters[id]; ch != nil {
				select {
				case ch <- tok:
				default: // a grant per waiter id; never happens
				}
			}
			n.mu.Unlock()
		case *redis.Subscription:
			// go-redis resubscribes by itself after a reconnect; grants
			// published while disconnected are lost, and their waiters
			// find them on their next timed try.
			if m.Kind == "subscribe" && !isClosed(ready) {
				close(ready)
			}
		}
	}
}

// close ends the pub/sub connection and waits for dispatch to return.
func (n *notifier) close() error {
	n.mu.Lock()
	n.closed = true
	ps, exited := n.ps, n.exited
	n.ps = nil
	n.mu.Unlock()
	if ps == nil {
		return nil
	}
	err := ps.Close()
	<-exited
	return err
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
