package main

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeCrashDecidesEveryCreatedOrderOnce is Must-show 2: orders flow into
// the real `orderflow serve` binary, which is killed with SIGKILL mid-stream
// and restarted on the same store. Every order that was answered 201 gets
// exactly one decision applied: unacknowledged events come back from the
// bus, a decision stored before the crash is resent (not re-decided), and a
// callback recorded before it is applied by the sweeper.
func TestServeCrashDecidesEveryCreatedOrderOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	store := "sqlite://" + filepath.Join(t.TempDir(), "orderflow.db")
	args := []string{"serve", "--store", store, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--sweep-interval", "500ms", "--callback-secret", "crash-serve-secret"}
	if raceEnabled {
		args = append(args, "--callback-timeout", "5s")
	}
	p := startProc(t, args...)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	const creators, killAfter = 8, 300
	var (
		mu      sync.Mutex
		created []string
		n       atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for c := range creators {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id, ok := tryCreate(client, p.public, fmt.Sprintf("u_crash_%d_%d", c, i%13))
				if !ok {
					return // the process is gone: outcome unknown, which is allowed
				}
				mu.Lock()
				created = append(created, id)
				mu.Unlock()
				n.Add(1)
			}
		})
	}
	for n.Load() < killAfter {
		time.Sleep(time.Millisecond)
	}
	p.kill() // SIGKILL while orders flow and the engine is mid-pipeline
	close(stop)
	wg.Wait()
	t.Logf("%d orders created (201) before the kill", len(created))

	p2 := startProc(t, args...)
	restarted := time.Now()
	// Every created order must be decided; the bus redelivers unacked events
	// within one poll of the restart, so progress must not stall.
	done := 0
	waitFor(t, 30*time.Second, "every created order decided after the restart", func() (bool, int, string) {
		for done < len(created) {
			var o struct {
				Risk *struct{ Decision string } `json:"risk"`
			}
			getJSON(t, client, p2.public+"/v1/orders/"+created[done], &o)
			if o.Risk == nil {
				break
			}
			done++
		}
		return done == len(created), done, fmt.Sprintf("%d of %d decided", done, len(created))
	})
	// API.md promises redelivery within 10 s of a restart; the stall bound
	// above is what the test enforces (a fixed bound would measure the
	// machine under -race), the time is logged for the reader.
	t.Logf("all %d created orders decided %v after the restart", len(created), time.Since(restarted).Round(time.Millisecond))
	for _, id := range created {
		checkAppliedOnce(t, client, p2.public, id)
	}
}

// tryCreate creates one order; false when the server did not answer 201.
func tryCreate(c *http.Client, base, user string) (string, bool) {
	body := `{"user_id":"` + user + `","amount_minor":129900,"currency":"CNY","region":"east-china","items":[{"sku":"sku-1","qty":2}]}`
	resp, err := c.Post(base+"/v1/orders", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var o orderView
	if err := decodeJSON(resp, &o); err != nil || resp.StatusCode != http.StatusCreated {
		return "", false
	}
	return o.ID, true
}
