package risk_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
)

func newRollout(t *testing.T) (*risk.Rollout, *risk.Router) {
	t.Helper()
	r, err := risk.NewRouter("salt", 1234)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	ro, err := risk.NewRollout(r, "v2.1", "v3", nil, func() time.Time { at = at.Add(time.Minute); return at })
	if err != nil {
		t.Fatal(err)
	}
	return ro, r
}

func TestRollout(t *testing.T) {
	type step struct {
		action risk.RolloutAction
		stage  risk.Stage
		split  int
		code   string // error code, "" for success
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"StartsOff", []step{{"", risk.StageOff, 0, ""}}},
		{"FullWalk", []step{
			{risk.ActionStart, risk.StageCanary, 100, ""},
			{risk.ActionAdvance, risk.StageRamp, 1000, ""},
			{risk.ActionAdvance, risk.StageRamp, 5000, ""},
			{risk.ActionAdvance, risk.StageFull, 10000, ""},
			{risk.ActionAdvance, risk.StageFull, 10000, orderflow.EConflict},
		}},
		{"PauseAndResume", []step{
			{risk.ActionStart, risk.StageCanary, 100, ""},
			{risk.ActionAdvance, risk.StageRamp, 1000, ""},
			{risk.ActionPause, risk.StagePaused, 1000, ""},
			{risk.ActionPause, risk.StagePaused, 1000, orderflow.EConflict},
			{risk.ActionAdvance, risk.StageRamp, 1000, ""},
			{risk.ActionAdvance, risk.StageRamp, 5000, ""},
		}},
		{"RollbackAndRestart", []step{
			{risk.ActionStart, risk.StageCanary, 100, ""},
			{risk.ActionAdvance, risk.StageRamp, 1000, ""},
			{risk.ActionRollback, risk.StageRolledBack, 0, ""},
			{risk.ActionRollback, risk.StageRolledBack, 0, orderflow.EConflict},
			{risk.ActionAdvance, risk.StageRolledBack, 0, orderflow.EConflict},
			{risk.ActionStart, risk.StageCanary, 100, ""},
		}},
		{"RollbackFromPaused", []step{
			{risk.ActionStart, risk.StageCanary, 100, ""},
			{risk.ActionPause, risk.StagePaused, 100, ""},
			{risk.ActionRollback, risk.StageRolledBack, 0, ""},
		}},
		{"NothingToDoWhenOff", []step{
			{risk.ActionAdvance, risk.StageOff, 0, orderflow.EConflict},
			{risk.ActionPause, risk.StageOff, 0, orderflow.EConflict},
			{risk.ActionRollback, risk.StageOff, 0, orderflow.EConflict},
		}},
		{"StartTwice", []step{
			{risk.ActionStart, risk.StageCanary, 100, ""},
			{risk.ActionStart, risk.StageCanary, 100, orderflow.EConflict},
		}},
		{"UnknownAction", []step{{"promote", risk.StageOff, 0, orderflow.EInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro, router := newRollout(t)
			ok := 0
			for i, s := range tc.steps {
				var st risk.RolloutState
				var err error
				if s.action == "" {
					st = ro.State()
				} else {
					st, err = ro.Do(s.action, "", "test")
				}
				if got := orderflow.ErrorCode(err); got != s.code {
					t.Fatalf("step %d (%s): error %v, want code %q", i, s.action, err, s.code)
				}
				if err == nil && s.action != "" {
					ok++
				}
				if st.Stage != s.stage || st.ChallengerBuckets != s.split || router.ChallengerBuckets() != s.split {
					t.Fatalf("step %d (%s): stage %s split %d (router %d), want %s %d",
						i, s.action, st.Stage, st.ChallengerBuckets, router.ChallengerBuckets(), s.stage, s.split)
				}
				if len(st.Transitions) != ok {
					t.Fatalf("step %d: %d transitions, want %d", i, len(st.Transitions), ok)
				}
			}
		})
	}
}

func TestRolloutChallengerMustMatch(t *testing.T) {
	ro, _ := newRollout(t)
	if _, err := ro.Do(risk.ActionStart, "v4", ""); orderflow.ErrorCode(err) != orderflow.EInvalid || orderflow.ErrorField(err) != "challenger" {
		t.Fatalf("start of an unknown challenger: %v", err)
	}
	st, err := ro.Do(risk.ActionStart, "v3", "canary of v3")
	if err != nil {
		t.Fatal(err)
	}
	tr := st.Transitions[0]
	if tr.From != risk.StageOff || tr.To != risk.StageCanary || tr.Reason != "canary of v3" || tr.Action != risk.ActionStart || tr.At.IsZero() {
		t.Errorf("transition %+v", tr)
	}
}

func TestRolloutKeepsRecentTransitions(t *testing.T) {
	ro, _ := newRollout(t)
	for range risk.MaxTransitions {
		if _, err := ro.Do(risk.ActionStart, "", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := ro.Do(risk.ActionRollback, "", "last"); err != nil {
			t.Fatal(err)
		}
	}
	st := ro.State()
	if len(st.Transitions) != risk.MaxTransitions || st.Transitions[len(st.Transitions)-1].Reason != "last" {
		t.Fatalf("%d transitions, last %+v", len(st.Transitions), st.Transitions[len(st.Transitions)-1])
	}
	for i := 1; i < len(st.Transitions); i++ {
		if !st.Transitions[i].At.After(st.Transitions[i-1].At) {
			t.Fatal("transitions not oldest first")
		}
	}
}

func TestRolloutJSON(t *testing.T) {
	ro, _ := newRollout(t)
	b, err := json.Marshal(ro.State())
	if err != nil {
		t.Fatal(err)
	}
	if want := `"transitions":[]`; !strings.Contains(string(b), want) {
		t.Errorf("JSON %s lacks %s", b, want)
	}
}

func TestNewRolloutSteps(t *testing.T) {
	r, _ := risk.NewRouter("s", 0)
	for _, steps := range [][]int{{}, {0, 100}, {100, 100}, {500, 100}, {100, risk.Buckets + 1}} {
		if _, err := risk.NewRollout(r, "a", "b", steps, nil); err == nil {
			t.Errorf("steps %v accepted", steps)
		}
	}
	if _, err := risk.NewRollout(r, "a", "b", []int{risk.Buckets}, nil); err != nil {
		t.Errorf("one step of 100 %%: %v", err)
	}
}
