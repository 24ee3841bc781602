// Package peerlab adds to the lab the experiments that compare against
// third-party code, so that the main module does not depend on it: today
// puzpuzpuz/xsync's Map beside sync.Map, RWMutex+map and a sharded map.
// Importing it registers the experiments with package lab.
package peerlab

import (
	"context"

	"github.com/puzpuzpuz/xsync/v4"

	"github.com/orderflow/orderflow/lab"
)

func init() {
	lab.Register(lab.Experiment{
		Name:  "syncmap-xsync",
		Title: "the syncmap sweep with puzpuzpuz/xsync Map (v4) as a further contender",
		Run: func(ctx context.Context, opt lab.Options) (lab.Result, error) {
			r, err := lab.MapSweep(ctx, opt, Impls())
			r.Name = "syncmap-xsync"
			return r, err
		},
	})
}

// Impls returns lab.MapImpls followed by xsync's Map.
func Impls() []lab.MapImpl {
	return append(lab.MapImpls(), lab.MapImpl{
		Name: "xsync.Map",
		New: func(n int) lab.KV {
			return XsyncKV{m: xsync.NewMap[uint64, uint64](xsync.WithPresize(n))}
		},
	})
}

// XsyncKV adapts xsync.Map to lab.KV.
type XsyncKV struct{ m *xsync.Map[uint64, uint64] }

var _ lab.KV = XsyncKV{}

// Load returns the value stored under k.
func (x XsyncKV) Load(k uint64) (uint64, bool) { return x.m.Load(k) }

// Store sets the value under k.
func (x XsyncKV) Store(k, v uint64) { x.m.Store(k, v) }
