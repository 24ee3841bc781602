package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/bus/redisstream"
)

func TestDistFlagsReachTheBus(t *testing.T) {
	base := []string{"--store", "postgres://u@127.0.0.1:5432/db", "--bus", "redis://127.0.0.1:6379/0"}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantTTL time.Duration
		wantErr string
	}{
		{"Default", nil, nil, redisstream.DefaultDedupTTL, ""},
		{"Flag", []string{"--dedup-ttl", "2h"}, nil, 2 * time.Hour, ""},
		{"Env", nil, map[string]string{"ORDERFLOW_DEDUP_TTL": "90m"}, 90 * time.Minute, ""},
		{"TooShort", []string{"--dedup-ttl", "30s"}, nil, 0, "-dedup-ttl"},
		{"NotADuration", []string{"--dedup-ttl", "soon"}, nil, 0, "dedup-ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			_, d, log, err := parseDist("risk", append(base, tc.args...), getenv, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := busConfig(d, log).DedupTTL; got != tc.wantTTL {
				t.Errorf("bus DedupTTL = %v, want %v", got, tc.wantTTL)
			}
		})
	}
}
