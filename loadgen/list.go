package loadgen

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/orderflow/orderflow"
)

// Watch modes (Config.Watch).
const (
	// WatchGet polls each order with GET /v1/orders/{id}: at least one
	// request per order, as a client waiting for its own order would.
	WatchGet = "get"
	// WatchList pages through GET /v1/orders, newest first, every
	// ListEvery, back to the oldest watched order or listDepth ListEvery
	// intervals, whichever is younger: one request sees up to 200 orders,
	// so observing a decision costs the server (and loadgen) a few rows
	// instead of a request. An order still undecided when it falls out of
	// that window (a backlog) is polled by id, as in WatchGet, so a backlog
	// costs what it costs there and not a re-read of itself every tick.
	WatchList = "list"
)

const (
	listMaxLimit = 200 // API.md's largest page
	listMinLimit = 16
	listMaxPages = 10
	// listDepth is how many ListEvery intervals back the lister looks.
	listDepth = 3
)

// listPage is the body of GET /v1/orders.
type listPage struct {
	Orders     []orderflow.Order `json:"orders"`
	NextCursor string            `json:"next_cursor"`
}

// list runs listOnce every ListEvery until ctx ends.
func (r *runner) list(ctx context.Context) {
	every(ctx, r.cfg.ListEvery, func() { r.listOnce(ctx) })
}

// listOnce pages back from the newest order until it has covered the
// oldest order still watched (or listMaxPages pages), and finishes every
// watched order it sees decided. The first page is sized to what is
// watched, so a quiet run reads a few rows, not 200.
func (r *runner) listOnce(ctx context.Context) {
	oldest, ok := r.watch.oldest()
	if !ok {
		return
	}
	// Server times, on this machine's clock in the usual setup; a skewed
	// server clock only makes the window wider or narrower, and the polls
	// by id cover what it misses.
	if floor := time.Now().Add(-listDepth * r.cfg.ListEvery); oldest.Before(floor) {
		oldest = floor
	}
	active := r.watch.active()
	limit := min(max(active+active/2+8, listMinLimit), listMaxLimit)
	path := "/v1/orders?limit=" + strconv.Itoa(limit)
	for range listMaxPages {
		r.col.lists.Add(1)
		a, err := r.c.do(ctx, "list", http.MethodGet, path, nil, "")
		if err != nil || !a.ok() {
			return // counted by do; the fallback polls cover the orders
		}
		var p listPage
		if err := json.Unmarshal(a.body, &p); err != nil {
			r.col.errorf("list", codeBadAnswer)
			return
		}
		now := time.Now()
		for i := range p.Orders {
			o := &p.Orders[i]
			if !decided(o) {
				continue
			}
			if w := r.watch.finish(o.ID); w != nil {
				r.decided(ctx, w, o, now)
				r.watch.done()
			}
		}
		if p.NextCursor == "" || len(p.Orders) == 0 || p.Orders[len(p.Orders)-1].CreatedAt.Before(oldest) {
			return
		}
		path = "/v1/orders?limit=" + strconv.Itoa(listMaxLimit) + "&cursor=" + url.QueryEscape(p.NextCursor)
	}
}
