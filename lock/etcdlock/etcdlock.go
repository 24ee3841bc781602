// Package etcdlock is an orderflow.Locker on etcd: each Acquire queues a key,
// attached to an etcd lease, under the lock's prefix in one txn; the holder is
// the queued key with the lowest create revision, and that revision is the
// fencing token. etcd revisions are durable and global, so tokens increase
// across holders and across etcd restarts with no clock assumption at all.
//
// It is concurrency.Mutex in shape, with three differences. A waiter watches
// only its predecessor, and starts that watch at the current revision, then
// checks the predecessor still exists: a watch that starts at a past revision
// is served by etcd's catch-up loop, which runs every 100 ms, and that floor
// is what makes concurrency.Mutex slow to hand over. Renewal is done by each
// lock lease's own goroutine (the etcd lease, one per Locker and TTL, is
// renewed by whoever holds or waits under it), so Done closes no later than TTL minus a margin after
// the last confirmed renewal (a session only notices after the TTL). And
// Release is a txn guarded by the holder's create revision, so a stale holder
// cannot delete anything but its own, already gone, key.
//
// etcd leases have whole-second TTLs and a server-side minimum (about 2 s with
// default election settings): the ttl given to Acquire is rounded up.
package etcdlock

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
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

// Locker takes locks in etcd. It holds no state besides the client and is safe
// for concurrent use.
type Locker struct {
	cli    *clientv3.Client
	prefix string
	seq    atomic.Uint64 // makes queued keys unique under a shared etcd lease

	mu     sync.Mutex
	leases map[int64]*sharedLease // by TTL in seconds
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
	return &Locker{cli: cli, prefix: prefix}
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
		resp, err = l.cli.Txn(ctx).Then(
			clientv3.OpPut(q.key, "", clientv3.WithLease(q.sl.id)),
			clientv3.OpGet(q.pfx, clientv3.WithFirstCreate()...),
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
	})
	owner := resp.Responses[1].GetResponseRange().Kvs
	if len(owner) == 1 && owner[0].CreateRevision == q.rev {
		return le, nil
	}
	if err := q.wait(ctx, le); err != nil {
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

// Close revokes the Locker's etcd leases, which deletes any key still queued
// or held under them: call it once every lease it gave out was released.
func (l *Locker) Close(ctx context.Context) error {
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

// wait returns once no key queued before ours is left.
//
// Every read here is at a known revision: ours, or the one at which the
// predecessor was seen gone. A read at a fixed revision has one right answer,
// so it can be served by the member's local state (serializable) without a
// consensus round, which under contention would queue behind every pending
// write; a member that has not reached that revision refuses, and we fall
// back to a linearizable read.
func (q *queued) wait(ctx context.Context, le *lease.Lease) error {
	// The two newest keys queued before ours. (Not a count: etcd counts
	// before filtering by create revision.)
	before := []clientv3.OpOption{
		clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend),
		clientv3.WithMaxCreateRev(q.rev - 1),
		clientv3.WithLimit(2),
	}
	rev := q.rev
	for {
		// One read of both: the keys queued before ours, and ours, which
		// may have gone while we waited (lease expired, key deleted):
		// then we are not the holder, whatever the queue says.
		resp, err := q.readAt(ctx, rev, read{q.pfx, before}, read{key: q.key})
		if err != nil {
			return err
		}
		pred, mine := resp[0].Kvs, resp[1].Kvs
		if len(mine) == 0 || mine[0].CreateRevision != q.rev {
			return errLostPlace
		}
		if len(pred) == 0 {
			return nil
		}
		if rev, err = q.waitDelete(ctx, le, string(pred[0].Key)); err != nil {
			return err
		}
		if len(pred) == 1 {
			// The predecessor was the only key before ours, and no key
			// can ever be queued before ours (create revisions only
			// grow): we hold the lock, with no further round trip.
			// That is the usual hand-over, so it matters.
			select {
			case <-le.Done():
				return errLostPlace
			default:
				return nil
			}
		}
	}
}

// read is one range read: a key and its options.
type read struct {
	key  string
	opts []clientv3.OpOption
}

// readAt runs reads at revision rev in one round trip, locally if the member
// can (see wait). A read-only txn whose reads are all serializable is served
// without consensus.
func (q *queued) readAt(ctx context.Context, rev int64, reads ...read) ([]*etcdserverpb.RangeResponse, error) {
	run := func(local bool) ([]*etcdserverpb.RangeResponse, error) {
		ops := make([]clientv3.Op, len(reads))
		for i, r := range reads {
			opts := slices.Clip(r.opts)
			if local {
				opts = append(opts, clientv3.WithSerializable(), clientv3.WithRev(rev))
			}
			ops[i] = clientv3.OpGet(r.key, opts...)
		}
		resp, err := q.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, err
		}
		out := make([]*etcdserverpb.RangeResponse, len(resp.Responses))
		for i, r := range resp.Responses {
			out[i] = r.GetResponseRange()
		}
		return out, nil
	}
	out, err := run(true)
	if err == nil || ctx.Err() != nil {
		return out, err
	}
	return run(false)
}

// getAt reads key at revision rev, locally if the member can (see wait).
func (q *queued) getAt(ctx context.Context, rev int64, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	local := append(slices.Clip(opts), clientv3.WithSerializable(), clientv3.WithRev(rev))
	resp, err := q.cli.Get(ctx, key, local...)
	if err == nil || ctx.Err() != nil {
		return resp, err
	}
	return q.cli.Get(ctx, key, opts...)
}

// waitDelete returns once pred no longer exists, with a revision at which it
// did not.
func (q *queued) waitDelete(ctx context.Context, le *lease.Lease, pred string) (int64, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Watch from the current revision (a watch from a past one is served by
	// etcd's catch-up loop, every 100 ms), wait until the watch exists,
	// then look at the revision it started from: a deletion is either seen
	// by that read or delivered by the watch.
	wch := q.cli.Watch(wctx, pred, clientv3.WithCreatedNotify())
	created := false
	for {
		select {
		case wr, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				return 0, errors.New("etcdlock: watch closed")
			}
			if err := wr.Err(); err != nil {
				return 0, err
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					return ev.Kv.ModRevision, nil
				}
			}
			if wr.Created && !created {
				created = true
				at := wr.Header.Revision
				resp, err := q.getAt(ctx, at, pred, clientv3.WithCountOnly())
				if err != nil {
					return 0, err
				}
				if resp.Count == 0 {
					return max(at, resp.Header.Revision), nil
				}
			}
		case <-le.Done():
			return 0, errLostPlace
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
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
