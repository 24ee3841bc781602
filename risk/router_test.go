package risk_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/orderflow/orderflow/risk"
)

// TestRouterBucketGolden pins the hash: replicas and restarts must agree on
// every user's bucket, so a change here is a change of the routing contract.
func TestRouterBucketGolden(t *testing.T) {
	r, err := risk.NewRouter("rollout-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		want int
	}{
		// Computed outside Go (Python, the formula of the Router doc).
		{"u_1", 8199},
		{"u_123", 3940},
		{"", 1452},
	} {
		if got := r.Bucket(tc.user); got != tc.want {
			t.Errorf("Bucket(%q) = %d, want %d", tc.user, got, tc.want)
		}
		if got := bucketOf("rollout-1", tc.user); got != tc.want {
			t.Errorf("reference bucketOf(%q) = %d, want %d", tc.user, got, tc.want)
		}
	}
	for i := range 1000 {
		u := "user-" + strconv.Itoa(i)
		if got, want := r.Bucket(u), bucketOf("rollout-1", u); got != want {
			t.Fatalf("Bucket(%q) = %d, the formula gives %d", u, got, want)
		}
	}
}

// bucketOf is an independent FNV-1a implementation of the documented formula.
func bucketOf(salt, user string) int {
	h := uint64(14695981039346656037)
	for _, c := range []byte(salt + "\x00" + user) {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return int(h % risk.Buckets)
}

func TestRouterSticky(t *testing.T) {
	r, err := risk.NewRouter("s", 5000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		u := "u_" + strconv.Itoa(i)
		first := r.Challenger(u)
		for range 5 {
			if r.Challenger(u) != first {
				t.Fatalf("user %s flipped at a fixed split", u)
			}
		}
		r2, _ := risk.NewRouter("s", 5000) // another replica, same config
		if r2.Challenger(u) != first {
			t.Fatalf("user %s routed differently by a second router", u)
		}
	}
}

// TestRouterMonotoneSplit: raising the split only moves users from champion
// to challenger, and the challenger's share follows the split.
func TestRouterMonotoneSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	users := make([]string, 20000)
	for i := range users {
		users[i] = fmt.Sprintf("user-%x", rng.Uint64())
	}
	r, err := risk.NewRouter("salt", 0)
	if err != nil {
		t.Fatal(err)
	}
	prev := make([]bool, len(users))
	for trial := 0; trial < 200; trial++ {
		split := min(r.ChallengerBuckets()+rng.IntN(200), risk.Buckets)
		if err := r.SetChallengerBuckets(split); err != nil {
			t.Fatal(err)
		}
		n := 0
		for i, u := range users {
			now := r.Challenger(u)
			if prev[i] && !now {
				t.Fatalf("split %d: user %s moved challenger→champion", split, u)
			}
			prev[i] = now
			if now {
				n++
			}
		}
		share, want := float64(n)/float64(len(users)), float64(split)/risk.Buckets
		if d := share - want; d > 0.02 || d < -0.02 {
			t.Fatalf("split %d: challenger share %.3f, want %.3f ± 0.02", split, share, want)
		}
	}
	if err := r.SetChallengerBuckets(risk.Buckets); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if !r.Challenger(u) {
			t.Fatalf("split %d: user %s not on the challenger", risk.Buckets, u)
		}
	}
}

func TestRouterSplitRange(t *testing.T) {
	for _, tc := range []struct {
		split int
		ok    bool
	}{{-1, false}, {0, true}, {1, true}, {risk.Buckets, true}, {risk.Buckets + 1, false}} {
		_, err := risk.NewRouter("s", tc.split)
		if (err == nil) != tc.ok {
			t.Errorf("NewRouter(split %d): err %v, want ok=%v", tc.split, err, tc.ok)
		}
	}
}
