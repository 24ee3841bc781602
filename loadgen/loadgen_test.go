package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/loadgen"
)

// quick is a small, fast run against url: seed 4 opens with an
// adversarial-retry user, so every run here meets one.
func quick(url string, orders int64) loadgen.Config {
	return loadgen.Config{URL: url, Rate: 2000, Orders: orders, Seed: 4, Concurrency: 16,
		LabelDelay: time.Millisecond, Drain: 10 * time.Second}
}

// progressLine matches the start of a progress line.
var progressLine = regexp.MustCompile(`(?m)^ *[0-9]+\.[0-9]s  sent `)

func TestRunCountsAgainstFake(t *testing.T) {
	f := newFakeAPI(t, func(f *fakeAPI) { f.token = "tok" })
	cfg := quick(f.URL, 200)
	cfg.APIToken = "tok"
	s, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	orders, labels, _ := f.snapshot()
	if s.Offered != 200 || s.Sent+s.Dropped != 200 {
		t.Errorf("offered %d, sent %d + dropped %d: want 200 offered, all accounted for", s.Offered, s.Sent, s.Dropped)
	}
	a := s.Adversaries
	if a.Users == 0 || a.Attempts < a.Users {
		t.Errorf("adversaries %+v: seed 4 starts with one", a)
	}
	// Every sent order and every adversary retry was created and decided,
	// and every decided order was labelled.
	wantCreated := s.Sent + a.Attempts - a.Users
	if s.Created != wantCreated || s.Failed != 0 || int64(orders) != s.Created {
		t.Errorf("created %d, failed %d, server has %d: want %d created", s.Created, s.Failed, orders, wantCreated)
	}
	if s.Decided != s.Created || s.Undecided != 0 {
		t.Errorf("decided %d, undecided %d of %d created", s.Decided, s.Undecided, s.Created)
	}
	if s.Labels.Sent != s.Decided || int64(labels) != s.Decided || s.Labels.Pending != 0 {
		t.Errorf("labels %+v, server got %d: want one per decided order (%d)", s.Labels, labels, s.Decided)
	}
	var byOutcome int64
	for _, n := range s.Outcomes {
		byOutcome += n
	}
	if byOutcome != s.Decided {
		t.Errorf("outcomes %v sum to %d, want %d", s.Outcomes, byOutcome, s.Decided)
	}
	m, ok := s.Models["fake-v1"]
	if !ok || m.Decided != s.Decided || m.Accuracy == nil {
		t.Errorf("models %+v: want fake-v1 with all %d decisions", s.Models, s.Decided)
	}
	if a.Approved+a.GaveUp+a.Unfinished != a.Users || a.Unfinished != 0 {
		t.Errorf("adversaries %+v do not add up", a)
	}
	if s.DecideLatency.Count != s.Decided || s.ObservedLatency.Count != s.Decided || s.Polls < 2*s.Decided {
		t.Errorf("latency counts %d/%d, polls %d for %d decided (the fake decides on the 2nd poll)",
			s.DecideLatency.Count, s.ObservedLatency.Count, s.Polls, s.Decided)
	}
	if len(s.Errors) != 0 {
		t.Errorf("errors %v, want none", s.Errors)
	}
}

// TestAdversaryRetriesUntilApproved: a server that lets every user through
// on their third order lets every adversary through on the third attempt,
// and no earlier.
func TestAdversaryRetriesUntilApproved(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		tries                          int
		wantAttempts, approved, gaveUp int64
	}{
		{"ApprovedOnThird", 10, 3, 1, 0},
		{"GivesUpAfterTwo", 2, 2, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, func(f *fakeAPI) { f.approveFromNth = 3 })
			cfg := quick(f.URL, 1) // seed 4's first order is an adversary's
			cfg.AdversaryTries = tc.tries
			s, err := loadgen.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			a := s.Adversaries
			want := loadgen.AdversarySummary{Users: 1, Attempts: tc.wantAttempts, Approved: tc.approved,
				ApprovedAfterRetry: tc.approved, GaveUp: tc.gaveUp}
			if a != want {
				t.Errorf("adversaries %+v, want %+v", a, want)
			}
			if s.Outcomes["rejected"] != min(tc.wantAttempts, 2) {
				t.Errorf("outcomes %v: want the first two attempts rejected", s.Outcomes)
			}
		})
	}
}

func TestRunWrongTokenCountsUnauthenticated(t *testing.T) {
	f := newFakeAPI(t, func(f *fakeAPI) { f.token = "right" })
	cfg := quick(f.URL, 5)
	cfg.APIToken = "wrong"
	s, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 401 is final: no retry, every create fails and is counted by code.
	if got := s.Errors["create"]["unauthenticated"]; got != s.Sent || s.Failed != s.Sent || s.Retries != 0 {
		t.Errorf("unauthenticated %d, failed %d, retries %d for %d sent", got, s.Failed, s.Retries, s.Sent)
	}
}

func TestRunHonoursRetryAfter(t *testing.T) {
	f := newFakeAPI(t, func(f *fakeAPI) { f.throttleFirst = true })
	cfg := quick(f.URL, 3)
	cfg.AdversaryTries = 1
	s, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Created != s.Sent || s.Errors["create"]["resource_exhausted"] != s.Sent || s.Retries != s.Sent {
		t.Errorf("created %d, 429s %d, retries %d for %d sent: want each create retried once after its 429",
			s.Created, s.Errors["create"]["resource_exhausted"], s.Retries, s.Sent)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, at := range f.attempts {
		if len(at) != 2 {
			t.Errorf("key %s: %d attempts, want 2", key, len(at))
			continue
		}
		// A lower bound only: the client must not come back before the
		// server said it may.
		if gap := at[1].Sub(at[0]); gap < time.Second {
			t.Errorf("key %s: retried after %v, Retry-After said 1s", key, gap)
		}
	}
}

// TestRunRetriesUnknownOutcome: after a 504 the create is sent again under
// the same Idempotency-Key; a 409 (the first still in flight) is waited out;
// the replay returns the one order, never a duplicate.
func TestRunRetriesUnknownOutcome(t *testing.T) {
	f := newFakeAPI(t, func(f *fakeAPI) { f.unknownOutcome = true })
	cfg := quick(f.URL, 5)
	cfg.AdversaryTries = 1
	s, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	orders, _, posts := f.snapshot()
	if s.Created != s.Sent || int64(orders) != s.Sent || int64(posts) != 3*s.Sent {
		t.Errorf("created %d, server has %d orders after %d posts, for %d sent: want one order per create, three posts each",
			s.Created, orders, posts, s.Sent)
	}
	errs := s.Errors["create"]
	if errs["deadline_exceeded"] != s.Sent || errs["conflict"] != s.Sent || s.Retries != 2*s.Sent {
		t.Errorf("errors %v, retries %d for %d sent", errs, s.Retries, s.Sent)
	}
	if s.Decided != s.Created {
		t.Errorf("decided %d of %d", s.Decided, s.Created)
	}
}

func TestMainJSONShape(t *testing.T) {
	f := newFakeAPI(t, nil)
	var out bytes.Buffer
	args := []string{"--url", f.URL, "--rate", "2000", "--orders", "40", "--seed", "4", "--label-delay", "1ms", "--adversary-tries", "2", "--json"}
	if err := loadgen.Main(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{
		"paced_seconds", "seconds", "drain_seconds", "offered", "sent", "dropped_by_client", "created", "failed",
		"offered_per_second", "achieved_per_second", "decided_per_second", "decided", "undecided",
		"unwatched", "polls", "create_latency_ms", "decide_latency_ms", "observed_latency_ms",
		"outcomes", "errors", "retries", "models", "labels", "adversaries",
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("summary lacks %q", k)
		}
	}
	lat, _ := got["decide_latency_ms"].(map[string]any)
	for _, k := range []string{"count", "p50", "p95", "p99", "max"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("decide_latency_ms.%s = %v, want a number", k, lat[k])
		}
	}
	model, _ := got["models"].(map[string]any)["fake-v1"].(map[string]any)
	for _, k := range []string{"decided", "fraud", "accuracy", "auc"} {
		if _, ok := model[k]; !ok {
			t.Errorf("models.fake-v1 lacks %q (null when undefined, never absent): %v", k, model)
		}
	}
	if got["offered"] != 40.0 {
		t.Errorf("offered = %v, want 40", got["offered"])
	}
}

func TestMainProgressAndText(t *testing.T) {
	f := newFakeAPI(t, nil)
	var out bytes.Buffer
	// 100 orders at 200/s take half a second: several 50 ms progress lines.
	args := []string{"--url", f.URL, "--rate", "200", "--orders", "100", "--seed", "4", "--label-delay", "1ms", "--progress-every", "50ms", "--adversary-tries", "2"}
	if err := loadgen.Main(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if strings.Contains(text, "\r") {
		t.Errorf("a buffer is no terminal, yet the output has \\r:\n%s", text)
	}
	if n := len(progressLine.FindAllString(text, -1)); n < 2 {
		t.Errorf("%d progress lines, want several:\n%s", n, text)
	}
	for _, want := range []string{"offered    100", "decided", "model     fake-v1", "adversary users"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}

func TestMainQuiet(t *testing.T) {
	f := newFakeAPI(t, nil)
	var out bytes.Buffer
	args := []string{"--url", f.URL, "--rate", "200", "--orders", "20", "--label-delay", "-1s", "--quiet", "--progress-every", "10ms"}
	if err := loadgen.Main(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	if progressLine.MatchString(out.String()) {
		t.Errorf("--quiet printed progress:\n%s", out.String())
	}
	if _, labels, _ := f.snapshot(); labels != 0 {
		t.Errorf("%d labels with a negative --label-delay, want none", labels)
	}
}

func TestMainBadFlags(t *testing.T) {
	for name, args := range map[string][]string{
		"ZeroRate":      {"--rate", "0"},
		"UnknownFlag":   {"--nope"},
		"Positional":    {"extra"},
		"NegativeCount": {"--orders", "-1"},
		"NegativeProcs": {"--procs", "-1"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := loadgen.Main(context.Background(), args, &out); err == nil {
				t.Errorf("Main(%q) = nil, want an error", args)
			}
		})
	}
}

func TestMainHelp(t *testing.T) {
	var out bytes.Buffer
	if err := loadgen.Main(context.Background(), []string{"-h"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "-label-delay") {
		t.Errorf("help lacks the flags:\n%s", out.String())
	}
}

func TestRunInterruptedStillSummarises(t *testing.T) {
	f := newFakeAPI(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	// No --orders, no --duration: only ctx ends it.
	cfg := loadgen.Config{URL: f.URL, Rate: 200, Progress: &bytes.Buffer{}, ProgressEvery: 10 * time.Millisecond}
	go func() {
		for {
			if _, _, posts := f.snapshot(); posts >= 10 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	s, err := loadgen.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The server also saw the adversaries' retries, which the pacer did
	// not send.
	posts := s.Sent + s.Adversaries.Attempts - s.Adversaries.Users
	if posts < 10 || s.Offered < s.Sent {
		t.Errorf("sent %d of %d offered (+ adversary retries: %d), want at least the 10 posts the server saw", s.Sent, s.Offered, posts)
	}
}

// TestLabelsAccountedWhenDrainEnds: labels not yet due when the drain runs
// out are reported pending, so sent + failed + pending + skipped is every
// decided order.
func TestLabelsAccountedWhenDrainEnds(t *testing.T) {
	f := newFakeAPI(t, nil)
	cfg := quick(f.URL, 10)
	cfg.LabelDelay = time.Hour
	cfg.Drain = 300 * time.Millisecond
	cfg.AdversaryTries = 1
	s, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := s.Labels
	if l.Sent != 0 || l.Pending+l.Failed+l.Skipped+l.Sent != s.Decided+s.Unwatched {
		t.Errorf("labels %+v for %d decided: want all pending", l, s.Decided)
	}
}

func TestRunCountsTransportAndBadAnswers(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer bad.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there any more

	for _, tc := range []struct {
		name, url, code string
		perCreate       int64
	}{
		{"Transport", downURL, "transport", 5}, // retried: the outcome is unknown
		{"BadAnswer", bad.URL, "bad_answer", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quick(tc.url, 3)
			cfg.AdversaryTries = 1
			s, err := loadgen.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if s.Failed != s.Sent || s.Created != 0 || s.Errors["create"][tc.code] != tc.perCreate*s.Sent {
				t.Errorf("failed %d, created %d, errors %v for %d sent: want every create failed, %d %s each",
					s.Failed, s.Created, s.Errors, s.Sent, tc.perCreate, tc.code)
			}
		})
	}
}

func TestRunProgressOnTerminal(t *testing.T) {
	f := newFakeAPI(t, nil)
	var out bytes.Buffer
	cfg := quick(f.URL, 40)
	cfg.Rate = 100
	cfg.Progress, cfg.TTY, cfg.ProgressEvery = &out, true, 20*time.Millisecond
	if _, err := loadgen.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if strings.Count(text, "\r") < 2 || strings.Count(text, "\n") != 1 || !strings.HasSuffix(text, "\n") {
		t.Errorf("on a terminal: want lines rewritten with \\r and one final newline, got %q", text)
	}
}

// TestLabelsGoToLabelsURL: in distributed mode the risk engine has its own
// listener; labels go there and nowhere else.
func TestLabelsGoToLabelsURL(t *testing.T) {
	f := newFakeAPI(t, nil)
	var mu sync.Mutex
	got := 0
	risk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/risk/labels" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		got++
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer risk.Close()
	cfg := quick(f.URL, 10)
	cfg.LabelsURL = risk.URL + "/"
	cfg.AdversaryTries = 1
	s, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, onOrders, _ := f.snapshot()
	mu.Lock()
	defer mu.Unlock()
	if int64(got) != s.Decided || onOrders != 0 || s.Labels.Sent != s.Decided {
		t.Errorf("risk server got %d labels, order server %d, summary %+v: want all %d on the risk server",
			got, onOrders, s.Labels, s.Decided)
	}
}
