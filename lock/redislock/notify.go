package redislock

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// notifier shares one pub/sub connection among all of a Locker's waiters:
// subscribing per Acquire would dial a connection per contended Acquire. A
// channel is subscribed while anyone waits on its lock and unsubscribed after.
type notifier struct {
	rdb redis.UniversalClient

	mu     sync.Mutex
	ps     *redis.PubSub // nil until the first waiter, and after close
	exited chan struct{} // closed when dispatch returned
	subs   map[string]*subscription
	closed bool
}

// subscription is the state of one channel. Its fields are guarded by
// notifier.mu.
type subscription struct {
	refs  int
	state subState
	// ready is closed once Redis confirmed the SUBSCRIBE: only a try made
	// after that can rely on hearing about the next release.
	ready chan struct{}
	// wake is the signal the next message on the channel fires.
	wake *signal
}

// signal is one message on a channel, as a chain: a waiter holding a signal
// sees every later message in order, even those that arrive while it is
// busy, without taking the notifier's lock.
type signal struct {
	fired   chan struct{} // closed when the message arrived
	payload string        // valid once fired is closed
	next    *signal       // valid once fired is closed
}

func newSignal() *signal { return &signal{fired: make(chan struct{})} }

type subState int

const (
	subscribing subState = iota
	subscribed
	unsubscribing // UNSUBSCRIBE sent; subscribe again when confirmed if refs > 0
)

// join registers a waiter on ch, subscribing if it is the first.
func (n *notifier) join(ctx context.Context, ch string) (*subscription, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, redis.ErrClosed
	}
	if n.ps == nil {
		n.ps = n.rdb.Subscribe(context.WithoutCancel(ctx))
		n.exited = make(chan struct{})
		go n.dispatch(n.ps.ChannelWithSubscriptions(), n.exited)
	}
	if s := n.subs[ch]; s != nil {
		s.refs++
		if s.state == unsubscribing && isClosed(s.ready) {
			// The channel is resubscribed when the UNSUBSCRIBE is
			// confirmed; until then this waiter may miss a release.
			s.ready = make(chan struct{})
		}
		return s, nil
	}
	s := &subscription{refs: 1, ready: make(chan struct{}), wake: newSignal()}
	if err := n.ps.Subscribe(ctx, ch); err != nil {
		return nil, err
	}
	if n.subs == nil {
		n.subs = make(map[string]*subscription)
	}
	n.subs[ch] = s
	return s, nil
}

// leave drops a waiter; the last one unsubscribes.
func (n *notifier) leave(ch string, s *subscription) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s.refs--
	if s.refs > 0 || s.state != subscribed || n.closed {
		// A subscription still being confirmed is unsubscribed once the
		// confirmation arrives (see dispatch).
		return
	}
	s.state = unsubscribing
	if err := n.ps.Unsubscribe(context.Background(), ch); err != nil {
		// The connection is broken; go-redis forgets the channel anyway
		// and will not resubscribe it.
		delete(n.subs, ch)
	}
}

// waitFor returns what a waiter on s waits for: while the subscription is
// not confirmed, the confirmation (ready); after that, the next message
// (sig). Take it before trying the lock, so a release between the try and the
// wait still wakes.
func (n *notifier) waitFor(s *subscription) (ready <-chan struct{}, sig *signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if isClosed(s.ready) {
		return nil, s.wake
	}
	return s.ready, nil
}

func (n *notifier) dispatch(msgs <-chan any, exited chan struct{}) {
	defer close(exited)
	for m := range msgs {
		n.mu.Lock()
		switch m := m.(type) {
		case *redis.Message:
			if s := n.subs[m.Channel]; s != nil {
				cur := s.wake
				cur.payload, cur.next = m.Payload, newSignal()
				s.wake = cur.next
				close(cur.fired)
			}
		case *redis.Subscription:
			n.confirmed(m)
		}
		n.mu.Unlock()
	}
}

// confirmed handles the server's answer to SUBSCRIBE or UNSUBSCRIBE. go-redis
// also resubscribes by itself after a reconnect; those answers find the
// subscription already subscribed and change nothing. n.mu must be held.
func (n *notifier) confirmed(m *redis.Subscription) {
	s := n.subs[m.Channel]
	if s == nil {
		return
	}
	switch {
	case m.Kind == "subscribe" && s.state == subscribing:
		s.state = subscribed
		close(s.ready)
		if s.refs == 0 {
			// Everyone left before the confirmation.
			s.state = unsubscribing
			_ = n.ps.Unsubscribe(context.Background(), m.Channel)
		}
	case m.Kind == "unsubscribe" && s.state == unsubscribing:
		if s.refs == 0 {
			delete(n.subs, m.Channel)
			return
		}
		// Someone joined meanwhile (and got a fresh ready): subscribe again.
		s.state = subscribing
		if err := n.ps.Subscribe(context.Background(), m.Channel); err != nil {
			delete(n.subs, m.Channel)
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
