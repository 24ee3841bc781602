package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/lock/etcdlock"
	"github.com/orderflow/orderflow/lock/local"
	"github.com/orderflow/orderflow/lock/redislock"
)

// distributed reports whether a command's arguments (or ORDERFLOW_STORE)
// ask for the distributed mode: a postgres:// store.
func distributed(args []string, getenv func(string) string) bool {
	for i, a := range args {
		v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "store=")
		if !ok && strings.TrimLeft(a, "-") == "store" && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			return isPostgres(v)
		}
	}
	return isPostgres(getenv("ORDERFLOW_STORE"))
}

func isPostgres(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// lockBackend is a Locker with what /readyz asks and what shutdown closes.
type lockBackend struct {
	orderflow.Locker
	ping  func(ctx context.Context) error
	close func() error
}

func (l *lockBackend) Ping(ctx context.Context) error { return l.ping(ctx) }

// openLock opens --lock: local, etcd://host:port[,host:port…] or redis://…;
// prefix (empty: the backend's default) keeps deployments sharing one etcd
// or Redis apart.
func openLock(ctx context.Context, u, prefix string) (*lockBackend, error) {
	switch {
	case u == "local":
		return &lockBackend{Locker: local.New(), ping: func(context.Context) error { return nil }, close: func() error { return nil }}, nil
	case strings.HasPrefix(u, "etcd://"):
		var eps []string
		for _, h := range splitList(strings.TrimPrefix(u, "etcd://")) {
			eps = append(eps, "http://"+h)
		}
		if len(eps) == 0 {
			return nil, fmt.Errorf("bad flag: -lock %q: want etcd://host:port", u)
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Context: context.WithoutCancel(ctx)})
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", u, err)
		}
		l := etcdlock.New(cli, prefix)
		return &lockBackend{
			Locker: l,
			ping: func(ctx context.Context) error {
				_, err := cli.Status(ctx, eps[0])
				return err
			},
			close: func() error {
				cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				return errors.Join(l.Close(cctx), cli.Close())
			},
		}, nil
	case strings.HasPrefix(u, "redis://") || strings.HasPrefix(u, "rediss://"):
		rdb, err := openRedis(u)
		if err != nil {
			return nil, fmt.Errorf("bad flag: -lock: %w", err)
		}
		l := redislock.New(rdb, prefix)
		return &lockBackend{
			Locker: l,
			ping:   func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
			close:  func() error { return errors.Join(l.Close(), rdb.Close()) },
		}, nil
	}
	return nil, fmt.Errorf("bad flag: -lock %q: want local, etcd://host:port or redis://host:port", u)
}

// openRedis parses a redis:// URL (go-redis's syntax: db, password,
// pool settings) into a client. A URL that names more nodes with addr=
// query parameters (redis://h1:6379?addr=h2:6379&addr=h3:6379, go-redis's
// cluster syntax) opens a Redis Cluster client instead: every part that
// runs on Redis keeps each script's keys in one hash tag, and
// internal/rediscluster runs their contract suites on a real cluster.
func openRedis(u string) (redis.UniversalClient, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if pu.Query().Has("addr") {
		if p := strings.Trim(pu.Path, "/"); p != "" && p != "0" {
			return nil, fmt.Errorf("redis cluster url: database %q: a Redis Cluster has only database 0", p)
		}
		opt, err := redis.ParseClusterURL(u)
		if err != nil {
			return nil, fmt.Errorf("redis cluster url: %w", err)
		}
		return redis.NewClusterClient(opt), nil
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	return redis.NewClient(opt), nil
}
