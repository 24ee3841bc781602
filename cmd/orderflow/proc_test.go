package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/httpapi/callbacksig"
)

// binary builds the real orderflow binary once per test run.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "orderflow-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orderflow")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// proc is a running orderflow process whose JSON log is parsed for the
// addresses it listens on.
type proc struct {
	cmd    *exec.Cmd
	public string // http://host:port
	admin  string
	done   chan struct{}
	mu     sync.Mutex
	log    bytes.Buffer
}

// startProc runs the binary with args and waits until both listeners are up.
func startProc(tb testing.TB, args ...string) *proc {
	tb.Helper()
	bin, err := binary()
	if err != nil {
		tb.Fatalf("build: %v", err)
	}
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	addrs := make(chan [2]string, 1)
	go p.scan(stdout, addrs)
	select {
	case a := <-addrs:
		p.public, p.admin = "http://"+a[0], "http://"+a[1]
	case <-time.After(30 * time.Second):
		p.kill()
		tb.Fatalf("orderflow did not start listening; log:\n%s", p.output())
	}
	tb.Cleanup(p.kill)
	return p
}

func (p *proc) scan(r io.Reader, addrs chan<- [2]string) {
	defer close(p.done)
	var got [2]string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Bytes()
		p.mu.Lock()
		p.log.Write(line)
		p.log.WriteByte('\n')
		p.mu.Unlock()
		var m struct{ Msg, Listener, Addr string }
		if json.Unmarshal(line, &m) == nil && m.Msg == "listening" {
			switch m.Listener {
			case "public":
				got[0] = m.Addr
			case "admin":
				got[1] = m.Addr
			}
			if got[0] != "" && got[1] != "" {
				addrs <- got
			}
		}
	}
	_ = p.cmd.Wait()
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill sends SIGKILL: no shutdown code runs, as in a crash.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// signCallback builds a signed callback request body and header.
func signCallback(secret []byte, orderID, eventType, decision string, score float64) ([]byte, string) {
	body, _ := json.Marshal(map[string]any{
		"event_id": "evt_" + strings.TrimPrefix(orderID, "ord_") + "_" + eventType, "order_id": orderID,
		"event_type": eventType, "decision": decision, "score": score, "model_version": "v3",
		"decided_at": time.Now().UTC().Format(time.RFC3339Nano),
	})
	return body, callbacksig.Sign(secret, time.Now(), body)
}

func getJSON(tb testing.TB, c *http.Client, url string, v any) int {
	tb.Helper()
	resp, err := c.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		tb.Fatalf("GET %s: decode: %v", url, err)
	}
	return resp.StatusCode
}

func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

func drain(resp *http.Response) error {
	_, err := io.Copy(io.Discard, resp.Body)
	return err
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
