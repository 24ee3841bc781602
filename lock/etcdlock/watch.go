package etcdlock

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchLinger is how long a lock's queue watch stays open after its last
// waiter left: under steady contention a Locker's callers keep coming back,
// and reopening the watch costs round trips and a read.
const watchLinger = 5 * time.Second

// watches are a Locker's watches on the queues of the locks its callers wait
// for, one per lock, shared by all of them. A waiter learns from the deletes
// it carries when the keys queued before its own are gone: no watch per
// Acquire (each one a round trip, then a read to close the gap before it
// started), and no read after the predecessor's delete.
type watches struct {
	cli *clientv3.Client

	mu     sync.Mutex
	m      map[string]*queueWatch // by queue prefix
	closed bool
	wg     sync.WaitGroup // the dispatch goroutines
}

// queueWatch is one watch on a lock's queue prefix, for deletes only, with
// each deleted key's previous value (its create revision tells whether it
// was queued before a waiter's key).
type queueWatch struct {
	pfx    string
	cancel context.CancelFunc
	// created is closed when etcd confirmed the watch; from then on every
	// delete after revision last is delivered.
	created chan struct{}
	// broken is closed when the watch ended (error, compaction, Close):
	// its waiters must start over on a new one.
	broken chan struct{}

	// Guarded by watches.mu.
	last    int64 // every delete up to this revision was dispatched
	waiters map[*waiter]struct{}
	linger  *time.Timer
}

// waiter is one Acquire waiting on a queueWatch. Until count is called it
// buffers the deletes it is sent; then it counts the keys ahead of its own
// down. All fields are guarded by watches.mu.
type waiter struct {
	w       *queueWatch
	key     string
	created int64 // create revision of key: keys created before are ahead
	rev     int64 // ahead is right as of this revision; 0 = not counted yet
	ahead   int64
	pending []deletion
	held    chan struct{} // closed when no key is ahead any more
	lost    chan struct{} // closed when our own key was deleted
	stale   chan struct{} // closed when a delete could not be counted
}

type deletion struct {
	key       string
	rev       int64 // revision of the delete
	createRev int64 // create revision of the deleted key, 0 if unknown
}

// joinIfWatched registers a waiter if the lock's queue is already watched
// and the watch confirmed: registered before the caller queues, it cannot
// miss a delete, so waiting needs no read at all. It returns nil otherwise.
func (ws *watches) joinIfWatched(pfx string) *waiter {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.m[pfx]
	if w == nil || !isClosed(w.created) || isClosed(w.broken) {
		return nil
	}
	return ws.addLocked(w)
}

// join registers a waiter, opening the watch if needed, and returns the
// revision from which on every delete reaches it.
func (ws *watches) join(ctx context.Context, pfx string) (*waiter, int64, error) {
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		return nil, 0, errors.New("etcdlock: Locker closed")
	}
	w := ws.m[pfx]
	if w == nil || isClosed(w.broken) {
		w = ws.openLocked(pfx)
	}
	wt := ws.addLocked(w)
	ws.mu.Unlock()
	select {
	case <-w.created:
	case <-w.broken:
		ws.leave(wt)
		return nil, 0, errors.New("etcdlock: watch ended")
	case <-ctx.Done():
		ws.leave(wt)
		return nil, 0, ctx.Err()
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return wt, w.last, nil
}

func (ws *watches) addLocked(w *queueWatch) *waiter {
	if w.linger != nil {
		w.linger.Stop()
		w.linger = nil
	}
	wt := &waiter{w: w, held: make(chan struct{}), lost: make(chan struct{}), stale: make(chan struct{})}
	w.waiters[wt] = struct{}{}
	return wt
}

func (ws *watches) openLocked(pfx string) *queueWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &queueWatch{
		pfx:     pfx,
		cancel:  cancel,
		created: make(chan struct{}),
		broken:  make(chan struct{}),
		waiters: make(map[*waiter]struct{}),
	}
	if ws.m == nil {
		ws.m = make(map[string]*queueWatch)
	}
	ws.m[pfx] = w
	// From the current revision: a watch from a past one is served by
	// etcd's catch-up loop, which runs every 100 ms.
	wch := ws.cli.Watch(clientv3.WithRequireLeader(ctx), pfx, clientv3.WithPrefix(),
		clientv3.WithFilterPut(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	ws.wg.Add(1)
	go ws.dispatch(w, wch)
	return w
}

// leave unregisters a waiter; the watch closes watchLinger after its last
// waiter left, unless another joins.
func (ws *watches) leave(wt *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := wt.w
	delete(w.waiters, wt)
	if len(w.waiters) > 0 || w.linger != nil || ws.m[w.pfx] != w {
		return
	}
	w.linger = time.AfterFunc(watchLinger, func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		if len(w.waiters) == 0 && ws.m[w.pfx] == w {
			delete(ws.m, w.pfx)
			w.cancel()
		}
	})
}

// count sets how many keys are ahead of the waiter's own as of revision rev
// and applies the deletes it buffered; it reports whether none is left.
func (ws *watches) count(wt *waiter, key string, created, rev, ahead int64) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	wt.key, wt.created, wt.rev, wt.ahead = key, created, rev, ahead
	if ahead <= 0 {
		close(wt.held)
	}
	for _, d := range wt.pending {
		wt.apply(d)
	}
	wt.pending = nil
}

// apply counts one delete. watches.mu must be held.
func (wt *waiter) apply(d deletion) {
	if d.rev <= wt.rev || wt.ahead <= 0 || isClosed(wt.lost) || isClosed(wt.stale) {
		return
	}
	switch {
	case d.key == wt.key:
		close(wt.lost)
	case d.createRev == 0:
		close(wt.stale) // no previous value (compacted?): count again
	case d.createRev < wt.created:
		wt.ahead--
		if wt.ahead == 0 {
			close(wt.held)
		}
	}
}

func (ws *watches) dispatch(w *queueWatch, wch clientv3.WatchChan) {
	defer ws.wg.Done()
	defer func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		if ws.m[w.pfx] == w {
			delete(ws.m, w.pfx)
		}
		w.cancel()
		close(w.broken)
	}()
	for wr := range wch {
		if wr.Err() != nil || wr.Canceled {
			return
		}
		ws.mu.Lock()
		for _, ev := range wr.Events {
			if ev.Type != mvccpb.DELETE {
				continue
			}
			d := deletion{key: string(ev.Kv.Key), rev: ev.Kv.ModRevision}
			if ev.PrevKv != nil {
				d.createRev = ev.PrevKv.CreateRevision
			}
			for wt := range w.waiters {
				if wt.rev == 0 {
					wt.pending = append(wt.pending, d)
				} else {
					wt.apply(d)
				}
			}
		}
		w.last = max(w.last, wr.Header.Revision)
		if wr.Created && !isClosed(w.created) {
			close(w.created)
		}
		ws.mu.Unlock()
	}
}

// close ends every watch and waits for their goroutines.
func (ws *watches) close() {
	ws.mu.Lock()
	ws.closed = true
	for _, w := range ws.m {
		if w.linger != nil {
			w.linger.Stop()
		}
		w.cancel()
	}
	ws.mu.Unlock()
	ws.wg.Wait()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
