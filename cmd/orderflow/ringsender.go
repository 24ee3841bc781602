package main

import (
	"context"
	"errors"
	"sync"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/hashring"
	"github.com/orderflow/orderflow/risk/callbackclient"
)

// ringSender routes each callback to an order replica by the hash ring of
// its order id: the first replica AppendN names is the affinity replica
// (the same for every risk replica, so one order's callbacks meet one
// apply pool and its row lock stays warm); a replica that answers with a
// connection error, a 5xx or whose own breaker is open is skipped to the
// next. Each replica's client has its own breaker, which keeps a failing
// replica out until it heals while the others carry its orders.
type ringSender struct {
	ring    *hashring.Ring
	clients map[string]*callbackclient.Client
	bufs    sync.Pool // *[]string: AppendN allocates nothing on the hot path
}

func newRingSender(clients map[string]*callbackclient.Client) (*ringSender, error) {
	if len(clients) == 0 {
		return nil, errors.New("no order replica to send callbacks to")
	}
	var ms []hashring.Member
	for name := range clients {
		ms = append(ms, hashring.Member{Name: name})
	}
	ring, err := hashring.New(ms)
	if err != nil {
		return nil, err
	}
	s := &ringSender{ring: ring, clients: clients}
	s.bufs.New = func() any { b := make([]string, 0, len(clients)); return &b }
	return s, nil
}

// Send tries the order's replicas in ring order until one takes the
// callback or answers something another replica would answer too (a 4xx,
// a 409, a 429: overload is not a reason to move an order's callbacks).
func (s *ringSender) Send(ctx context.Context, cb *orderflow.Callback) callbackclient.Result {
	bp := s.bufs.Get().(*[]string)
	defer s.bufs.Put(bp)
	*bp = s.ring.AppendN((*bp)[:0], cb.OrderID, len(s.clients))
	var res callbackclient.Result
	for _, name := range *bp {
		res = s.clients[name].Send(ctx, cb)
		if !skippable(res) || ctx.Err() != nil {
			return res
		}
	}
	return res
}

// skippable: this replica could not take it, another may.
func skippable(r callbackclient.Result) bool {
	switch r.Class {
	case callbackclient.BreakerOpen:
		return true
	case callbackclient.Retry:
		return r.Status == 0 || r.Status >= 500
	}
	return false
}
