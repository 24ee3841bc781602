package breakerpeers_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	breakerpeers "github.com/orderflow/orderflow/bench/peers/breaker"
	"github.com/orderflow/orderflow/breaker/breakersim"
)

// TestScenarios plays the outage and slowdown scenarios against every peer
// and logs one Markdown table. Peers that read time.Now run in real time
// (16s per scenario, all runs in parallel, ~20s in all), so the test is
// skipped in -short mode. Run it with
//
//	go test -run TestScenarios -v ./breaker/
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time scenarios take ~20s")
	}
	type row struct {
		peer, mode string
		r          breakersim.Result
	}
	var (
		mu   sync.Mutex
		rows []row
		wg   sync.WaitGroup
	)
	run := func(p breakerpeers.Peer, sc breakersim.Scenario, m breakersim.Mode, mode string) {
		defer wg.Done()
		r := breakersim.Run(sc, p.Factory, m)
		mu.Lock()
		rows = append(rows, row{p.Name, mode, r})
		mu.Unlock()
	}
	scenarios := []breakersim.Scenario{breakersim.Outage(), breakersim.Brownout(), breakersim.SlowDown()}
	for _, sc := range scenarios {
		for _, p := range breakerpeers.Peers() {
			if p.Virtual {
				wg.Add(1)
				go run(p, sc, breakersim.Virtual, "virtual")
			}
			wg.Add(1)
			go run(p, sc, breakersim.RealTime, "real")
		}
	}
	wg.Wait()

	var b strings.Builder
	fmt.Fprintln(&b, "| scenario | breaker | clock | trip after fault | reached dep. after 1st s of fault | failed calls | pass ≥ heal+1s+RTT | last reject after heal | false rejects |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|")
	for _, sc := range scenarios {
		for _, p := range breakerpeers.Peers() {
			for _, mode := range []string{"virtual", "real"} {
				for _, r := range rows {
					if r.r.Scenario != sc.Name || r.peer != p.Name || r.mode != mode {
						continue
					}
					trip := "never"
					if r.r.TripAfter >= 0 {
						trip = r.r.TripAfter.Round(time.Millisecond).String()
					}
					fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f%% | %d | %.1f%% | %v | %d |\n",
						sc.Name, r.peer, r.mode, trip, 100*r.r.ReachedDuringFault, r.r.FailedCalls,
						100*r.r.PassAfterHeal, r.r.LastRejectAfterHeal.Round(time.Millisecond), r.r.RejectedBeforeFault)
				}
			}
		}
	}
	t.Log("\n" + b.String())
	if out := os.Getenv("BREAKER_SCENARIOS_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
