package loadgen_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderflow/orderflow/loadgen"
)

// TestWatchListSeesDecisionsInPages: in list mode the decisions are seen
// on the pages of GET /v1/orders, each order counted once whether a page or
// a poll by id saw it first, and the pages replace nearly all the polls.
//
// The fake decides an order on its second look, so a page sees it decided
// only if two listings come within the poll fallback's (listDepth+1)
// intervals of its creation. The default interval, 100 ms, leaves 400 ms
// for that: a CI run with the race detector and the cluster's fault test
// beside this one delayed 20 ms ticks enough to fail the bound below.
func TestWatchListSeesDecisionsInPages(t *testing.T) {
	f := newFakeAPI(t, nil)
	cfg := quick(f.URL, 300)
	cfg.Watch, cfg.ListEvery = loadgen.WatchList, loadgen.DefaultListEvery
	s, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	orders, labels, _ := f.snapshot()
	f.mu.Lock()
	lists := f.lists
	f.mu.Unlock()
	if s.Created != int64(orders) || s.Decided != s.Created || s.Undecided != 0 {
		t.Errorf("created %d (server %d), decided %d, undecided %d: want all decided once", s.Created, orders, s.Decided, s.Undecided)
	}
	if int64(labels) != s.Decided || s.Labels.Sent != s.Decided {
		t.Errorf("labels %+v, server got %d: want one per decided order (%d)", s.Labels, labels, s.Decided)
	}
	if s.Lists == 0 || int64(lists) != s.Lists {
		t.Errorf("lists %d, server served %d: want the pages counted", s.Lists, lists)
	}
	if s.Polls > s.Decided/2 {
		t.Errorf("polls %d for %d decided: the pages should see most decisions", s.Polls, s.Decided)
	}
	if s.DecideLatency.Count != s.Decided || s.ObservedLatency.Count != s.Decided {
		t.Errorf("latency counts %d/%d for %d decided", s.DecideLatency.Count, s.ObservedLatency.Count, s.Decided)
	}
	if len(s.Errors) != 0 {
		t.Errorf("errors %v, want none", s.Errors)
	}
}

// TestWatchListFallsBackToPolls: a server whose list fails still gets
// every order seen decided, through the polls by id.
func TestWatchListFallsBackToPolls(t *testing.T) {
	f := newFakeAPI(t, func(f *fakeAPI) { f.noList = true })
	cfg := quick(f.URL, 40)
	cfg.Watch, cfg.ListEvery = loadgen.WatchList, 5*time.Millisecond
	s, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Decided != s.Created || s.Undecided != 0 || s.Lists == 0 || s.Polls < s.Decided {
		t.Errorf("decided %d of %d, undecided %d, lists %d, polls %d: want all decided by polls", s.Decided, s.Created, s.Undecided, s.Lists, s.Polls)
	}
	if s.Errors["list"]["not_found"] == 0 {
		t.Errorf("errors %v: want the failed lists counted", s.Errors)
	}
}

func TestWatchModeValidated(t *testing.T) {
	_, err := loadgen.Run(context.Background(), loadgen.Config{URL: "http://127.0.0.1:1", Rate: 1, Orders: 1, Watch: "push"})
	if err == nil {
		t.Fatal("watch mode push accepted")
	}
}
