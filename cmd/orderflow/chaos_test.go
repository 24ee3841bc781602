package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestChaosPipelineStillDecides is the resilience kit's Must-show 5: with
// chaos adding 200 ms to every callback the engine sends and a CPU burner
// taking 30% of a core, serve still decides every order, and the callback
// breaker's state is visible in /metrics.
func TestChaosPipelineStillDecides(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline under injected faults")
	}
	s := startServe(t, nil)
	client := &http.Client{Timeout: 30 * time.Second}

	settings := `{"latency": {"fixed": "200ms", "sides": ["client"], "path_prefix": "/v1/risk/callbacks"},
		"cpu": {"share": 0.3, "duration": "2m"}}`
	req, err := http.NewRequest(http.MethodPut, s.admin+"/admin/chaos", strings.NewReader(settings))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /admin/chaos: %d %s", resp.StatusCode, body)
	}
	if !bytes.Contains(body, []byte(`"200ms"`)) || !bytes.Contains(body, []byte(`"share":0.3`)) {
		t.Fatalf("chaos settings not taken: %s", body)
	}
	if !s.app.chaos.Burning() {
		t.Fatal("CPU burner not running")
	}

	const orders = 200
	start := time.Now()
	createOrders(t, client, s.public, orders, 16)
	waitDecided(t, s.app, orders)
	took := time.Since(start)
	reconcile(t, s.app, orders)
	// Every callback waited the injected 200 ms before reaching the order
	// service: a pipeline that finished faster than that never saw the fault.
	if took < 200*time.Millisecond {
		t.Fatalf("decided %d orders in %v: the injected latency was not on the callback path", orders, took)
	}
	t.Logf("%d orders decided in %v with +200 ms per callback and a 30%% CPU burn", orders, took)

	metrics := get(t, client, s.admin+"/metrics")
	for _, want := range []string{`orderflow_breaker_state{breaker="callback"}`, `orderflow_chaos_injected_total`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
