package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/httpapi/riskapi"
	"github.com/orderflow/orderflow/httpclient"
)

const deadLettersUsage = `Usage:
  orderflow deadletters list [--admin-addr host:port] [--limit n] [--json]
  orderflow deadletters redrive <id> [--admin-addr host:port]

Talks to the admin listener of a running serve (GET /admin/deadletters,
POST /admin/deadletters/{id}/redrive).
`

// runDeadLetters is the operator's tool for what the risk engine gave up on.
func runDeadLetters(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("bad flag: deadletters needs list or redrive\n%s", deadLettersUsage)
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("deadletters", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	adminAddr := fs.String("admin-addr", "127.0.0.1:6060", "admin listener of the running serve")
	limit := fs.Int("limit", riskapi.DefaultListLimit, "list: at most this many, oldest first")
	asJSON := fs.Bool("json", false, "list: print the admin listener's JSON as is")
	pos, err := parseInterleaved(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, deadLettersUsage)
			return nil
		}
		return fmt.Errorf("bad flag: %w", err)
	}
	if v := getenv("ORDERFLOW_ADMIN_ADDR"); v != "" && !flagGiven(fs, "admin-addr") {
		*adminAddr = v
	}
	base := "http://" + *adminAddr
	hc := httpclient.New(httpclient.Config{Name: "cli", Timeout: 10 * time.Second})
	defer hc.CloseIdleConnections()
	switch sub {
	case "list":
		if len(pos) != 0 {
			return fmt.Errorf("bad flag: list takes no argument, got %q", pos[0])
		}
		body, err := call(ctx, hc.Client, http.MethodGet, base+"/admin/deadletters?limit="+strconv.Itoa(*limit))
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(body)
			return err
		}
		var dl riskapi.DeadLettersJSON
		if err := json.Unmarshal(body, &dl); err != nil {
			return fmt.Errorf("deadletters: decode answer: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tGROUP\tEVENT\tORDER\tATTEMPTS\tAT\tLAST ERROR")
		for _, d := range dl.DeadLetters {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Group, d.EventType, d.OrderID, d.Attempts,
				d.At.Format(time.RFC3339), oneLine(d.LastError, 120))
		}
		return tw.Flush()
	case "redrive":
		if len(pos) != 1 {
			return fmt.Errorf("bad flag: redrive takes one dead-letter id\n%s", deadLettersUsage)
		}
		if _, err := call(ctx, hc.Client, http.MethodPost, base+"/admin/deadletters/"+url.PathEscape(pos[0])+"/redrive"); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "redriven", pos[0])
		return nil
	default:
		return fmt.Errorf("bad flag: unknown deadletters command %q\n%s", sub, deadLettersUsage)
	}
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("redrive 7 --admin-addr x" and "redrive --admin-addr x 7").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// call makes one admin request and returns the body of a 2xx; anything else
// is an error carrying the API's error message.
func call(ctx context.Context, c *http.Client, method, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("admin listener: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e httpapi.ErrorBody
		if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
			return nil, fmt.Errorf("admin listener: %d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return nil, fmt.Errorf("admin listener: %s", resp.Status)
	}
	return body, nil
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}
