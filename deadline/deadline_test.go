package deadline_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/deadline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"1", time.Millisecond, true},
		{"1200", 1200 * time.Millisecond, true},
		{"007", 7 * time.Millisecond, true},
		{"2147483648", 2147483648 * time.Millisecond, true},
		{"2147483649", 0, false},
		{"99999999999", 0, false},
		{"", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"10ms", 0, false},
		{"0x10", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := deadline.ParseHeader(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("ParseHeader(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestFormatHeader(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{1999 * time.Microsecond, "1"}, // rounds down: never claim time we lack
		{1200 * time.Millisecond, "1200"},
		{0, "0"},
		{-time.Second, "0"},
	}
	for _, tt := range tests {
		if got := deadline.FormatHeader(tt.in); got != tt.want {
			t.Errorf("FormatHeader(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLayersNeverExtend(t *testing.T) {
	custom := deadline.Budgets{Call: 300 * time.Millisecond, Storage: 30 * time.Millisecond}
	tests := []struct {
		name    string
		parent  time.Duration // 0: no deadline
		budgets *deadline.Budgets
		layer   func(context.Context) (context.Context, context.CancelFunc)
		max     time.Duration
	}{
		{"StorageDefault", 0, nil, deadline.Storage, deadline.DefaultStorage},
		{"CallDefault", 0, nil, deadline.Call, deadline.DefaultCall},
		{"StorageCustom", 0, &custom, deadline.Storage, 30 * time.Millisecond},
		{"CallCustomEdgeDefaulted", 0, &custom, deadline.Call, 300 * time.Millisecond},
		{"StorageBoundByParent", 100 * time.Millisecond, nil, deadline.Storage, 100 * time.Millisecond},
		{"LayerBoundByParent", 50 * time.Millisecond, nil, func(ctx context.Context) (context.Context, context.CancelFunc) {
			return deadline.Layer(ctx, time.Hour)
		}, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.budgets != nil {
				ctx = deadline.WithBudgets(ctx, *tt.budgets)
			}
			if tt.parent > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.parent)
				defer cancel()
			}
			child, cancel := tt.layer(ctx)
			defer cancel()
			left, ok := deadline.Remaining(child)
			if !ok || left > tt.max {
				t.Fatalf("Remaining = %v, %v; want a deadline at most %v away", left, ok, tt.max)
			}
		})
	}
	if got := deadline.BudgetsFrom(deadline.WithBudgets(context.Background(), custom)).Edge; got != deadline.DefaultEdge {
		t.Errorf("zero Edge budget became %v, want the default %v", got, deadline.DefaultEdge)
	}
}

type traceKey struct{}

func TestDetach(t *testing.T) {
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), traceKey{}, "span-1"), time.Millisecond)
	cancel() // the request is over
	ctx, stop := deadline.Detach(parent, time.Minute)
	defer stop()
	if ctx.Err() != nil {
		t.Fatalf("detached ctx ended with its request: %v", ctx.Err())
	}
	if got := ctx.Value(traceKey{}); got != "span-1" {
		t.Fatalf("value = %v, want the request's span-1", got)
	}
	if left, ok := deadline.Remaining(ctx); !ok || left > time.Minute || left < 30*time.Second {
		t.Fatalf("Remaining = %v, %v; want its own budget of about a minute", left, ok)
	}
}

func TestRemainingWithoutDeadline(t *testing.T) {
	if _, ok := deadline.Remaining(context.Background()); ok {
		t.Fatal("Background has a deadline?")
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{"0", "1200", "007", "-1", "1.5", "", "2147483648", "99999999999999999999", "１２"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := deadline.ParseHeader(s)
		if !ok {
			if d != 0 {
				t.Fatalf("rejected %q but returned %v", s, d)
			}
			return
		}
		if d < 0 || d%time.Millisecond != 0 || d > (1<<31)*time.Millisecond {
			t.Fatalf("ParseHeader(%q) = %v: out of range or not whole ms", s, d)
		}
		if back, ok := deadline.ParseHeader(deadline.FormatHeader(d)); !ok || back != d {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, d, deadline.FormatHeader(d), back, ok)
		}
	})
}
