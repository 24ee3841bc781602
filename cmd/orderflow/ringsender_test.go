package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/breaker"
	"github.com/orderflow/orderflow/hashring"
	"github.com/orderflow/orderflow/risk/callbackclient"
)

// TestRingSender: the affinity replica takes the callback; a replica that
// fails with a connection error or a 5xx is skipped to the next; a 4xx,
// 409 or 429 is answered as is (another replica would say the same, or the
// order's replica is just busy).
func TestRingSender(t *testing.T) {
	for _, tc := range []struct {
		name       string
		owner      int // status of the affinity replica; 0: connection refused
		want       callbackclient.Class
		wantOthers int64 // calls the other replica got
	}{
		{"OwnerTakesIt", http.StatusAccepted, callbackclient.Delivered, 0},
		{"ConnectionRefusedSkipped", 0, callbackclient.Delivered, 1},
		{"ServerErrorSkipped", http.StatusServiceUnavailable, callbackclient.Delivered, 1},
		{"TooManyRequestsNotSkipped", http.StatusTooManyRequests, callbackclient.Retry, 0},
		{"ConflictNotSkipped", http.StatusConflict, callbackclient.Conflict, 0},
		{"BadRequestNotSkipped", http.StatusBadRequest, callbackclient.Permanent, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var otherCalls atomic.Int64
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				otherCalls.Add(1)
				w.WriteHeader(http.StatusAccepted)
			}))
			defer other.Close()
			owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.owner)
			}))
			ownerURL := owner.URL
			if tc.owner == 0 {
				owner.Close() // its port now refuses connections
			} else {
				defer owner.Close()
			}
			clients := map[string]*callbackclient.Client{}
			for _, u := range []string{ownerURL, other.URL} {
				c, err := callbackclient.New(callbackclient.Config{HTTP: &http.Client{Timeout: 2 * time.Second}, BaseURL: u, Secrets: [][]byte{[]byte("s")}})
				if err != nil {
					t.Fatal(err)
				}
				clients[u] = c
			}
			s, err := newRingSender(clients)
			if err != nil {
				t.Fatal(err)
			}
			orderID := orderOwnedBy(t, s.ring, ownerURL)
			res := s.Send(context.Background(), &orderflow.Callback{OrderID: orderID, EventID: "evt_1", EventType: orderflow.EventRiskDecided, Decision: orderflow.DecisionApprove, ModelVersion: "v2.1", DecidedAt: time.Now()})
			if res.Class != tc.want || otherCalls.Load() != tc.wantOthers {
				t.Errorf("class %v, other replica called %d times; want %v, %d (err %v)", res.Class, otherCalls.Load(), tc.want, tc.wantOthers, res.Err)
			}
		})
	}
}

// TestRingSenderBreakerKeepsReplicaOut: once a replica's breaker opens, its
// orders go to the next replica without a call to it.
func TestRingSenderBreakerKeepsReplicaOut(t *testing.T) {
	var ownerCalls atomic.Int64
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ownerCalls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer owner.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer other.Close()
	clients := map[string]*callbackclient.Client{}
	for _, u := range []string{owner.URL, other.URL} {
		c, err := callbackclient.New(callbackclient.Config{HTTP: &http.Client{}, BaseURL: u, Secrets: [][]byte{[]byte("s")},
			Breaker: breaker.New(breaker.Config{Name: u})})
		if err != nil {
			t.Fatal(err)
		}
		clients[u] = c
	}
	s, err := newRingSender(clients)
	if err != nil {
		t.Fatal(err)
	}
	orderID := orderOwnedBy(t, s.ring, owner.URL)
	cb := &orderflow.Callback{OrderID: orderID, EventID: "evt_1", EventType: orderflow.EventRiskDecided, Decision: orderflow.DecisionApprove, ModelVersion: "v2.1", DecidedAt: time.Now()}
	for range 200 {
		if res := s.Send(context.Background(), cb); res.Class != callbackclient.Delivered {
			t.Fatalf("not delivered through the other replica: %v %v", res.Class, res.Err)
		}
	}
	if n := ownerCalls.Load(); n >= 200 {
		t.Errorf("failing replica called %d times of 200: its breaker never kept it out", n)
	}
}

func orderOwnedBy(t *testing.T, ring *hashring.Ring, member string) string {
	t.Helper()
	for i := range 1000 {
		id := "ord_" + string(rune('a'+i%26)) + time.Duration(i).String()
		if m, _ := ring.Locate(id); m == member {
			return id
		}
	}
	t.Fatal("no order id owned by " + member)
	return ""
}
