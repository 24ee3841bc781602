// Package etcdlock is an orderflow.Locker on etcd: each Acquire queues a key,
// attached to an etcd lease, under the lock's prefix in one txn; the holder is
// the queued key with the lowest create revision, and that revision is the
// fencing token. etcd revisions are durable and global, so tokens increase
// across holders and across etcd restarts with no clock assumption at all.
//
// It is concurrency.Mutex in shape, with four differences. The queueing txn
// also counts the queue, so a waiter knows how many keys are ahead of its
// own. Waiters learn of deletes from one watch per Locker and contended lock
// (deletes only, each with the deleted key's create revision), started at
// the current revision and kept while anyone waits: a waiter counts the keys
// ahead of it down as their deletes arrive, and the delete that brings the
// count to zero is the hand-over, with no read after it. (A watch that starts
// at a past revision is served by etcd's catch-up loop, which runs every
// 100 ms: that floor is what makes concurrency.Mutex slow to hand over.) The
// etcd lease is one per Locker and TTL, not one per lock, renewed by each
// lock lease's own renewal, so Done closes no later than TTL minus a margin
// after the last confirmed renewal (a session only notices after the TTL).
// And Release is a txn guarded by the holder's create revision, so a stale
// holder cannot delete anything but its own, already gone, key.
//
// etcd leases have whole-second TTLs and a server-side minimum (about 2 s with
// default election settings): the ttl given to Acquire is rounded up.
package etcdlock

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock"
	"github.com/orderflow/orderflow/lock/internal/lease"
)

var _ orderflow.Locker = (*Locker)(nil)

// DefaultPrefix is put before every lock name when New is given none.
const DefaultPrefix = "/orderflow/lock/"

// cleanupTimeout bounds the work Acquire does on its way out after failing,
// under a context that may already be over.
const cleanupTimeout = 5 * time.Second

// Locker takes locks in etcd. It is safe for concurrent use. Close it when
// done: it owns an etcd lease per TTL and a watch per contended lock.
type Locker struct {
	cli    *clientv3.Client
	prefix string
	seq    atomic.Uint64 // makes queued keys unique under a shared etcd lease

	mu      sync.Mutex
	leases  map[int64]*sharedLease // by TTL in seconds
	watches watches
	renew   lease.Renewer
}

// sharedLease is an etcd lease all of a Locker's locks with the same TTL
// queue under. One lease per Acquire would cost two more consensus writes per
// lock (grant, revoke), and under contention writes queue behind each other:
// that is most of a handoff's time. Whoever holds or waits renews it.
type sharedLease struct {
	id  clientv3.LeaseID
	ttl time.Duration

	mu      sync.Mutex
	renewed time.Time // send time of the last successful grant or keep-alive
}

// renewedAt records a successful keep-alive sent at t.
func (sl *sharedLease) renewedAt(t time.Time) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if t.After(sl.renewed) {
		sl.renewed = t
	}
}

func (sl *sharedLease) lastRenewed() time.Time {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.renewed
}

// New returns a Locker on cli. An empty prefix means DefaultPrefix. The caller
// keeps ownership of cli.
func New(cli *clientv3.Client, prefix string) *Locker {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Locker{cli: cli, prefix: prefix, watches: watches{cli: cli}}
}

// QueuePrefix is the etcd prefix under which the holder and the waiters of
// key have their keys, one per Acquire, named by etcd lease id and a
// sequence number. Listing it
// sorted by create revision shows the holder first, then the queue. The
// lock name is path-escaped, so no lock's prefix contains another's.
func (l *Locker) QueuePrefix(key string) string {
	return l.prefix + url.PathEscape(key) + "/"
}

// Acquire queues for the lock and blocks until it is the oldest key in the
// queue, or ctx ends; then it leaves the queue.
func (l *Locker) Acquire(ctx context.Context, key string, ttl time.Duration) (orderflow.Lease, error) {
	if err := lock.Check(key, ttl, time.Millisecond); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, lock.CtxErr(ctx, key)
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	q := &queued{cli: l.cli, name: key, pfx: l.QueuePrefix(key)}
	// If this Locker already watches the lock's queue (others of its
	// callers wait for it), join before queueing: then no delete after our
	// put can be missed, and waiting needs no read at all.
	wt := l.watches.joinIfWatched(q.pfx)
	defer func() {
		if wt != nil {
			l.watches.leave(wt)
		}
	}()
	var (
		resp *clientv3.TxnResponse
		sent time.Time
		err  error
	)
	// A shared etcd lease may have expired while nobody used it: then
	// grant a fresh one and queue again, once.
	for attempt := 0; ; attempt++ {
		q.sl, sent, err = l.leaseFor(ctx, secs)
		if err != nil {
			return nil, l.fail(ctx, err, "getting an etcd lease for", key)
		}
		q.key = fmt.Sprintf("%s%016x-%x", q.pfx, int64(q.sl.id), l.seq.Add(1))
		// Count the queue in the same txn: every other key in it was
		// created before ours, so the count less one is how many are
		// ahead of us.
		resp, err = l.cli.Txn(ctx).Then(
			clientv3.OpPut(q.key, "", clientv3.WithLease(q.sl.id)),
			clientv3.OpGet(q.pfx, clientv3.WithPrefix(), clientv3.WithCountOnly()),
		).Commit()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && attempt == 0 {
			l.dropLease(secs, q.sl.id)
			continue
		}
		break
	}
	if err != nil {
		// Whether the put happened is unknown; the key is ours alone, so
		// deleting it is safe either way.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_, _ = l.cli.Delete(cctx, q.key)
		return nil, l.fail(ctx, err, "queueing for", key)
	}
	q.rev = resp.Header.Revision
	// Renewal starts now: waiting may take longer than one TTL.
	le := lease.Start(lease.Config{
		Token:   uint64(q.rev),
		TTL:     q.sl.ttl,
		Sent:    sent,
		Extend:  q.extend,
		Release: q.release,
		Renewer: &l.renew,
	})
	ahead := resp.Responses[1].GetResponseRange().Count - 1
	if ahead <= 0 {
		return le, nil
	}
	if err := l.wait(ctx, q, le, &wt, ahead); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_ = le.Release(cctx)
		return nil, l.fail(ctx, err, "waiting for", key)
	}
	return le, nil
}

// leaseFor returns this Locker's etcd lease for TTLs of secs seconds,
// granting one if there is none yet, and the time from which its TTL surely
// runs. An idle shared lease may be about to expire, so one not renewed in
// the last third of its TTL is renewed first.
func (l *Locker) leaseFor(ctx context.Context, secs int64) (*sharedLease, time.Time, error) {
	l.mu.Lock()
	sl := l.leases[secs]
	l.mu.Unlock()
	if sl != nil {
		if last := sl.lastRenewed(); time.Since(last) < sl.ttl/3 {
			return sl, last, nil
		}
		sent := time.Now()
		ka, err := l.cli.KeepAliveOnce(ctx, sl.id)
		if err == nil && ka.TTL > 0 {
			sl.renewedAt(sent)
			return sl, sent, nil
		}
		if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return nil, time.Time{}, err
		}
		l.dropLease(secs, sl.id)
	}
	sent := time.Now()
	g, err := l.cli.Grant(ctx, secs)
	if err != nil {
		return nil, time.Time{}, err
	}
	sl = &sharedLease{id: g.ID, ttl: time.Duration(g.TTL) * time.Second, renewed: sent}
	l.mu.Lock()
	if l.leases == nil {
		l.leases = make(map[int64]*sharedLease)
	}
	l.leases[secs] = sl
	l.mu.Unlock()
	return sl, sent, nil
}

// dropLease forgets the shared lease for secs if it is still id.
func (l *Locker) dropLease(secs int64, id clientv3.LeaseID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sl := l.leases[secs]; sl != nil && sl.id == id {
		delete(l.leases, secs)
	}
}

// Close ends the Locker's watches and revokes its etcd leases, which deletes
// any key still queued or held under them: call it once every Acquire
// returned and every lease it gave out was released.
func (l *Locker) Close(ctx context.Context) error {
	l.watches.close()
	l.renew.Close()
	l.mu.Lock()
	leases := l.leases
	l.leases = nil
	l.mu.Unlock()
	var errs []error
	for _, sl := range leases {
		if _, err := l.cli.Revoke(ctx, sl.id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (l *Locker) fail(ctx context.Context, err error, op, key string) error {
	if ctx.Err() != nil {
		return lock.CtxErr(ctx, key)
	}
	return lock.Unavailable(err, op, key)
}

// queued is one Acquire's place in a lock's queue.
type queued struct {
	cli  *clientv3.Client
	name string // the lock's name, for errors
	pfx  string
	key  string
	sl   *sharedLease
	rev  int64 // create revision of key: the fencing token
}

var errLostPlace = errors.New("etcdlock: queued key vanished while waiting (lease expired or key deleted)")

// wait returns once no key queued before ours is left. ahead is how many
// were, as of our own put; *wt is our place on the lock's queue watch, or nil
// if we did not join before queueing. Deletes counted off the watch are the
// whole hand-over: the predecessor's delete reaches us and we hold the lock,
// with no read in between.
func (l *Locker) wait(ctx context.Context, q *queued, le *lease.Lease, wt **waiter, ahead int64) error {
	known := q.rev // ahead is right as of this revision
	recount := false
	for {
		if *wt == nil {
			w, from, err := l.watches.join(ctx, q.pfx)
			if err != nil {
				return err
			}
			*wt = w
			// Deletes up to from went by before we joined: count the
			// keys ahead again as of then.
			if recount || from > known {
				if ahead, err = q.countAhead(ctx, from); err != nil {
					return err
				}
				known = from
			}
		}
		l.watches.count(*wt, q.key, q.rev, known, ahead)
		w := *wt
		select {
		case <-w.held:
			select {
			case <-le.Done():
				return errLostPlace
			default:
				return nil
			}
		case <-w.lost:
			return errLostPlace
		case <-w.stale:
		case <-w.w.broken:
		case <-le.Done():
			return errLostPlace
		case <-ctx.Done():
			return ctx.Err()
		}
		// The watch ended, or a delete could not be counted: start over
		// on a fresh (or the same, healthy) watch and count again.
		l.watches.leave(w)
		*wt, recount = nil, true
	}
}

// countAhead counts the keys queued before ours at revision rev, and checks
// ours is still there.
//
// The read is at a known revision, so it has one right answer and can be
// served by the member's local state (serializable) without a consensus
// round, which under contention would queue behind every pending write; a
// member that has not reached that revision refuses, and we fall back to a
// linearizable read.
func (q *queued) countAhead(ctx context.Context, rev int64) (int64, error) {
	run := func(local bool) (*clientv3.TxnResponse, error) {
		// Keys, not a count: etcd counts before filtering by create
		// revision.
		before := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithMaxCreateRev(q.rev - 1)}
		mine := []clientv3.OpOption{clientv3.WithKeysOnly()}
		if local {
			before = append(before, clientv3.WithSerializable(), clientv3.WithRev(rev))
			mine = append(mine, clientv3.WithSerializable(), clientv3.WithRev(rev))
		}
		return q.cli.Txn(ctx).Then(clientv3.OpGet(q.pfx, before...), clientv3.OpGet(q.key, mine...)).Commit()
	}
	resp, err := run(true)
	if err != nil && ctx.Err() == nil {
		resp, err = run(false)
	}
	if err != nil {
		return 0, err
	}
	mine := resp.Responses[1].GetResponseRange().Kvs
	if len(mine) == 0 || mine[0].CreateRevision != q.rev {
		return 0, errLostPlace
	}
	return int64(len(resp.Responses[0].GetResponseRange().Kvs)), nil
}

// extend renews the etcd lease and checks our key is still there: deleting
// the key is as much a loss as the lease expiring.
func (q *queued) extend(ctx context.Context) (bool, error) {
	sent := time.Now()
	ka, err := q.cli.KeepAliveOnce(ctx, q.sl.id)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if ka.TTL <= 0 {
		return false, nil
	}
	q.sl.renewedAt(sent)
	resp, err := q.cli.Get(ctx, q.key)
	if err != nil {
		return false, err
	}
	return len(resp.Kvs) == 1 && resp.Kvs[0].CreateRevision == q.rev, nil
}

// release deletes our key only if it is still the one we created. The etcd
// lease is shared and stays.
func (q *queued) release(ctx context.Context) error {
	resp, err := q.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(q.key), "=", q.rev)).
		Then(clientv3.OpDelete(q.key)).
		Commit()
	if err != nil {
		return lock.Unavailable(err, "releasing", q.name)
	}
	if !resp.Succeeded {
		return lock.NotHeld(q.name)
	}
	return nil
}
