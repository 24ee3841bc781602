package engine_test

import (
	"context"
	"testing"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
	"github.com/orderflow/orderflow/risk/engine"
)

func TestRolloutActions(t *testing.T) {
	type step struct {
		action   string
		code     string // expected error code, "" for success
		stage    string
		buckets  int
		reasonIs string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"StartAdvanceToFull", []step{
			{engine.ActionStart, "", engine.StageCanary, 500, "manual start"},
			{engine.ActionAdvance, "", engine.StageCanary, 1000, ""},
			{engine.ActionAdvance, "", engine.StageCanary, 2000, ""},
			{engine.ActionAdvance, "", engine.StageCanary, 4000, ""},
			{engine.ActionAdvance, "", engine.StageCanary, 8000, ""},
			{engine.ActionAdvance, "", engine.StageFull, 10000, ""},
			{engine.ActionAdvance, "", engine.StageFull, 10000, ""},
		}},
		{"PauseFreezesStartResumes", []step{
			{engine.ActionStart, "", engine.StageCanary, 500, ""},
			{engine.ActionAdvance, "", engine.StageCanary, 1000, ""},
			{engine.ActionPause, "", engine.StagePaused, 1000, ""},
			{engine.ActionAdvance, orderflow.EConflict, engine.StagePaused, 1000, ""},
			{engine.ActionStart, "", engine.StageCanary, 1000, ""},
		}},
		{"RollbackToZero", []step{
			{engine.ActionStart, "", engine.StageCanary, 500, ""},
			{engine.ActionRollback, "", engine.StageRolledBack, 0, ""},
			{engine.ActionAdvance, orderflow.EConflict, engine.StageRolledBack, 0, ""},
			{engine.ActionPause, orderflow.EConflict, engine.StageRolledBack, 0, ""},
		}},
		{"ErrBeforeStart", []step{
			{engine.ActionAdvance, orderflow.EConflict, engine.StageFixed, 0, ""},
			{engine.ActionPause, orderflow.EConflict, engine.StageFixed, 0, ""},
			{"promote", orderflow.EInvalid, engine.StageFixed, 0, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			router, err := risk.NewRouter("test", 0)
			if err != nil {
				t.Fatal(err)
			}
			r := engine.NewRollout(engine.RolloutConfig{Router: router, Champion: risk.V21(), Challenger: risk.V3(), Decisions: openStore(t)})
			ctx := context.Background()
			okSteps := 0
			for i, s := range tt.steps {
				_, err := r.Act(ctx, s.action, "v3", "")
				if orderflow.ErrorCode(err) != s.code {
					t.Fatalf("step %d %s: %v, want code %q", i, s.action, err, s.code)
				}
				if err == nil {
					okSteps++
				}
				st, err := r.Status(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st.Stage != s.stage || st.Split.ChallengerBuckets != s.buckets || router.ChallengerBuckets() != s.buckets {
					t.Fatalf("step %d %s: stage %s at %d buckets, want %s at %d", i, s.action, st.Stage, st.Split.ChallengerBuckets, s.stage, s.buckets)
				}
				if len(st.Transitions) != okSteps {
					t.Fatalf("step %d: %d transitions recorded, want %d", i, len(st.Transitions), okSteps)
				}
				if s.reasonIs != "" && st.Transitions[len(st.Transitions)-1].Reason != s.reasonIs {
					t.Errorf("reason %q, want %q", st.Transitions[len(st.Transitions)-1].Reason, s.reasonIs)
				}
			}
		})
	}
}

func TestRolloutRejectsOtherChallenger(t *testing.T) {
	router, _ := risk.NewRouter("test", 0)
	r := engine.NewRollout(engine.RolloutConfig{Router: router, Champion: risk.V21(), Challenger: risk.V3(), Decisions: openStore(t)})
	if _, err := r.Act(context.Background(), engine.ActionStart, "v9", ""); orderflow.ErrorCode(err) != orderflow.EInvalid || orderflow.ErrorField(err) != "challenger" {
		t.Errorf("challenger v9: %v, want invalid_argument on challenger", err)
	}
	if router.ChallengerBuckets() != 0 {
		t.Error("a refused action moved the split")
	}
}
