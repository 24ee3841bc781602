// Package etcdlock is an orderflow.Locker on etcd: each Acquire grants its own
// etcd lease and queues a key under the lock's prefix in one txn; the holder
// is the queued key with the lowest create revision, and that revision is the
// fencing token. etcd revisions are durable and global, so tokens increase
// across holders and across etcd restarts with no clock assumption at all.
//
// It is concurrency.Mutex in shape, with three differences. A waiter watches
// only its predecessor, and starts that watch at the current revision, then
// checks the predecessor still exists: a watch that starts at a past revision
// is served by etcd's catch-up loop, which runs every 100 ms, and that floor
// is what makes concurrency.Mutex slow to hand over. Renewal is done by the
// lease's own goroutine, so Done closes no later than TTL minus a margin after
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
	"time"

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
// key have their keys, one per Acquire, named by etcd lease id. Listing it
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
	sent := time.Now()
	g, err := l.cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return nil, l.fail(ctx, err, "granting a lease for", key)
	}
	q := &queued{cli: l.cli, name: key, pfx: l.QueuePrefix(key), id: g.ID}
	q.key = fmt.Sprintf("%s%016x", q.pfx, int64(g.ID))
	resp, err := l.cli.Txn(ctx).Then(
		clientv3.OpPut(q.key, "", clientv3.WithLease(g.ID)),
		clientv3.OpGet(q.pfx, clientv3.WithFirstCreate()...),
	).Commit()
	if err != nil {
		// Whether the put happened is unknown; revoking removes it if it did.
		q.revoke(ctx)
		return nil, l.fail(ctx, err, "queueing for", key)
	}
	q.rev = resp.Header.Revision
	// Renewal starts now: waiting may take longer than one TTL.
	le := lease.Start(lease.Config{
		Token:   uint64(q.rev),
		TTL:     time.Duration(g.TTL) * time.Second,
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
	id   clientv3.LeaseID
	rev  int64 // create revision of key: the fencing token
}

var errLostPlace = errors.New("etcdlock: queued key vanished while waiting (lease expired or key deleted)")

// wait returns once no key queued before ours is left.
func (q *queued) wait(ctx context.Context, le *lease.Lease) error {
	before := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(q.rev-1))
	for {
		resp, err := q.cli.Get(ctx, q.pfx, before...)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			break
		}
		if err := q.waitDelete(ctx, le, string(resp.Kvs[0].Key)); err != nil {
			return err
		}
	}
	// Our key may have gone while we waited (lease expired, key deleted):
	// then we are not the holder, whatever the queue looks like.
	resp, err := q.cli.Get(ctx, q.key)
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != q.rev {
		return errLostPlace
	}
	return nil
}

// waitDelete returns once pred no longer exists.
func (q *queued) waitDelete(ctx context.Context, le *lease.Lease, pred string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Watch from the current revision (served by etcd at once), wait until
	// the watch exists, then look: a deletion is either seen by the Get or
	// delivered by the watch.
	wch := q.cli.Watch(wctx, pred, clientv3.WithCreatedNotify())
	created := false
	for {
		select {
		case wr, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("etcdlock: watch closed")
			}
			if err := wr.Err(); err != nil {
				return err
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					return nil
				}
			}
			if wr.Created && !created {
				created = true
				resp, err := q.cli.Get(ctx, pred, clientv3.WithCountOnly())
				if err != nil {
					return err
				}
				if resp.Count == 0 {
					return nil
				}
			}
		case <-le.Done():
			return errLostPlace
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// extend renews the etcd lease and checks our key is still there: deleting
// the key is as much a loss as the lease expiring.
func (q *queued) extend(ctx context.Context) (bool, error) {
	ka, err := q.cli.KeepAliveOnce(ctx, q.id)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if ka.TTL <= 0 {
		return false, nil
	}
	resp, err := q.cli.Get(ctx, q.key)
	if err != nil {
		return false, err
	}
	return len(resp.Kvs) == 1 && resp.Kvs[0].CreateRevision == q.rev, nil
}

// release deletes our key only if it is still the one we created, then
// revokes the etcd lease so nothing of this Acquire outlives it.
func (q *queued) release(ctx context.Context) error {
	resp, err := q.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(q.key), "=", q.rev)).
		Then(clientv3.OpDelete(q.key)).
		Commit()
	if err != nil {
		return lock.Unavailable(err, "releasing", q.name)
	}
	q.revoke(ctx)
	if !resp.Succeeded {
		return lock.NotHeld(q.name)
	}
	return nil
}

// revoke ends the etcd lease, deleting any key attached to it. Failure is
// harmless: the lease then expires within its TTL, since nobody renews it.
func (q *queued) revoke(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, _ = q.cli.Revoke(cctx, q.id)
}
