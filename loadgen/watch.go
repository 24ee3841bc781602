package loadgen

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Polling intervals. An order is first looked at half the median decision
// latency seen so far after it was created (collector.firstPoll; minPoll
// until there is a median), then at a quarter of its age, never more often
// than minPoll nor less often than maxPoll: a young order is polled often,
// so the observed latency of a fast decision is close to the truth, and an
// order that waits long costs few requests. The number of polls per order
// grows with the log of its decision latency, not with it.
const (
	minPoll = 10 * time.Millisecond
	maxPoll = time.Second
)

func pollInterval(age time.Duration) time.Duration {
	return min(max(age/4, minPoll), maxPoll)
}

// watched is a created order waiting for its decision.
type watched struct {
	id      string
	fraud   bool
	created time.Time // when the 201 arrived
	next    time.Time // when to poll next
	adv     *advState // set for an adversary's attempt
	// serverCreated is the order's created_at as the server stored it:
	// the lister pages back until it has covered it.
	serverCreated time.Time
	index         int  // in the heap; -1 while a poller holds it
	finished      bool // seen decided (by a poller or the lister); guarded by watchSet.mu
}

// watchSet is the bounded set of orders being polled, ordered by when each
// is due. Pollers take the most overdue one, so under load every order is
// polled round-robin, later than planned but never starved.
//
// The lister (watch mode "list") finds orders by id: byID holds every
// order not yet finished, and fifo the same in the order they were added,
// which is how far back the lister must page.
type watchSet struct {
	mu   sync.Mutex
	h    watchHeap
	busy int // taken by a poller and not yet put back or done
	max  int
	wake chan struct{}
	byID map[string]*watched // only when ordered
	fifo []*watched          // only when ordered
	// ordered keeps byID and fifo, for the lister (watch mode list).
	ordered bool
}

func newWatchSet(max int, ordered bool) *watchSet {
	s := &watchSet{max: max, wake: make(chan struct{}, 1), ordered: ordered}
	if ordered {
		s.byID = map[string]*watched{}
	}
	return s
}

// add starts watching w; it reports false when the set is full.
func (s *watchSet) add(w *watched) bool {
	s.mu.Lock()
	if len(s.h)+s.busy >= s.max {
		s.mu.Unlock()
		return false
	}
	heap.Push(&s.h, w)
	if s.ordered {
		s.byID[w.id] = w
		if len(s.fifo) >= 2*len(s.byID)+64 {
			// Finished orders behind an unfinished one stay in fifo until
			// it finishes; drop them now and then, so fifo stays within
			// twice the orders watched even behind an order that is never
			// decided.
			live := s.fifo[:0]
			for _, x := range s.fifo {
				if !x.finished {
					live = append(live, x)
				}
			}
			clear(s.fifo[len(live):])
			s.fifo = live
		}
		s.fifo = append(s.fifo, w)
	}
	s.mu.Unlock()
	s.signal()
	return true
}

// finish marks the watched order id as seen decided by the lister and
// returns it held, like take (the caller calls done once it has dealt with
// it, so the run does not look finished while an adversary's next attempt
// is being sent), or nil when it is not watched or was finished already (a
// poller saw it first). One that a poller holds is forgotten when the
// poller hands it back.
func (s *watchSet) finish(id string) *watched {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.byID[id]
	if w == nil {
		return nil
	}
	w.finished = true
	delete(s.byID, id)
	if w.index >= 0 {
		heap.Remove(&s.h, w.index)
	}
	s.busy++
	return w
}

// claim marks a taken order that its poller saw decided as finished; it
// reports false when the lister had counted it already. The poller still
// calls done.
func (s *watchSet) claim(w *watched) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.finished {
		return false
	}
	w.finished = true
	delete(s.byID, w.id)
	return true
}

// oldest returns the server creation time of the oldest order still
// watched; ok is false when none is.
func (s *watchSet) oldest() (t time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(s.fifo) && s.fifo[i].finished {
		i++
	}
	clear(s.fifo[:i])
	s.fifo = s.fifo[i:]
	if len(s.fifo) == 0 {
		return time.Time{}, false
	}
	return s.fifo[0].serverCreated, true
}

func (s *watchSet) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take waits for the next due order and marks it busy; it returns nil when
// ctx ends.
func (s *watchSet) take(ctx context.Context) *watched {
	for {
		s.mu.Lock()
		wait := time.Duration(-1)
		if len(s.h) > 0 {
			if wait = time.Until(s.h[0].next); wait <= 0 {
				w := heap.Pop(&s.h).(*watched)
				s.busy++
				more := len(s.h) > 0
				s.mu.Unlock()
				if more {
					// Pass the baton: one signal may stand for several adds.
					s.signal()
				}
				return w
			}
		}
		s.mu.Unlock()
		if !pause(ctx, s.wake, wait) {
			return nil
		}
	}
}

// pause waits for wake, for wait to pass (wait < 0: no limit) or for ctx to
// end; it reports false in the last case.
func pause(ctx context.Context, wake <-chan struct{}, wait time.Duration) bool {
	var timeout <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-wake:
	case <-timeout:
	}
	return true
}

// put returns a taken order to the set, due at w.next, unless the lister
// saw it decided meanwhile.
func (s *watchSet) put(w *watched) {
	s.mu.Lock()
	s.busy--
	if w.finished {
		s.mu.Unlock()
		return
	}
	heap.Push(&s.h, w)
	s.mu.Unlock()
	s.signal()
}

// done forgets a held order: taken by a poller, or returned by finish.
func (s *watchSet) done() {
	s.mu.Lock()
	s.busy--
	s.mu.Unlock()
}

// active counts the orders still watched, taken ones included.
func (s *watchSet) active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.h) + s.busy
}

type watchHeap []*watched

func (h watchHeap) Len() int           { return len(h) }
func (h watchHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h watchHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *watchHeap) Push(x any) {
	w := x.(*watched)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *watchHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*h = old[:len(old)-1]
	return w
}

// label is a ground-truth label waiting for its time.
type label struct {
	orderID string
	fraud   bool
	due     time.Time
}

// labelQueue holds labels in the order they fall due: every label is due a
// fixed delay after its order was seen decided, so first in is first due.
// It is bounded; a label that does not fit is skipped and counted.
type labelQueue struct {
	mu    sync.Mutex
	items []label
	busy  int // popped and not yet done
	max   int
	wake  chan struct{}
}

func newLabelQueue(max int) *labelQueue {
	return &labelQueue{max: max, wake: make(chan struct{}, 1)}
}

func (q *labelQueue) push(l label) bool {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, l)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// pop waits for the first label to fall due; nil when ctx ends. The caller
// calls done when it has sent it.
func (q *labelQueue) pop(ctx context.Context) *label {
	for {
		q.mu.Lock()
		wait := time.Duration(-1)
		if len(q.items) > 0 {
			if wait = time.Until(q.items[0].due); wait <= 0 {
				l := q.items[0]
				q.items = q.items[1:]
				q.busy++
				more := len(q.items) > 0
				q.mu.Unlock()
				if more {
					select {
					case q.wake <- struct{}{}:
					default:
					}
				}
				return &l
			}
		}
		q.mu.Unlock()
		if !pause(ctx, q.wake, wait) {
			return nil
		}
	}
}

// done marks a popped label as sent (or given up).
func (q *labelQueue) done() {
	q.mu.Lock()
	q.busy--
	q.mu.Unlock()
}

// len counts the labels not yet sent, popped ones included.
func (q *labelQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) + q.busy
}
