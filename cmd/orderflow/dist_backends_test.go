package main

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestOpenRedis(t *testing.T) {
	tests := []struct {
		url     string
		cluster bool
		addrs   []string
		wantErr bool
	}{
		{url: "redis://127.0.0.1:6379/0", addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://h1:7000?addr=h2:7001&addr=h3:7002", cluster: true, addrs: []string{"h1:7000", "h2:7001", "h3:7002"}},
		{url: "redis://h1:7000?addr=h2:7001&pool_size=8", cluster: true, addrs: []string{"h1:7000", "h2:7001"}},
		{url: "redis://h1:6379?bogus=1", wantErr: true},
		{url: "http://h1:6379", wantErr: true},
		{url: "redis://h1:7000/3?addr=h2:7001", wantErr: true}, // a cluster has one database
		{url: "://", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			rdb, err := openRedis(tt.url)
			if tt.wantErr {
				if err == nil {
					_ = rdb.Close()
					t.Fatalf("openRedis(%q): want an error", tt.url)
				}
				return
			}
			if err != nil {
				t.Fatalf("openRedis(%q): %v", tt.url, err)
			}
			defer rdb.Close()
			var got []string
			switch c := rdb.(type) {
			case *redis.ClusterClient:
				if !tt.cluster {
					t.Fatalf("openRedis(%q) = cluster client, want a single-node client", tt.url)
				}
				got = c.Options().Addrs
			case *redis.Client:
				if tt.cluster {
					t.Fatalf("openRedis(%q) = single-node client, want a cluster client", tt.url)
				}
				got = []string{c.Options().Addr}
			default:
				t.Fatalf("openRedis(%q) = %T", tt.url, rdb)
			}
			if len(got) != len(tt.addrs) {
				t.Fatalf("addrs = %v, want %v", got, tt.addrs)
			}
			for i := range got {
				if got[i] != tt.addrs[i] {
					t.Fatalf("addrs = %v, want %v", got, tt.addrs)
				}
			}
		})
	}
}
