package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/risk"
)

// Rollout stages.
const (
	StageFixed      = "fixed"       // no rollout started: the champion decides for everyone
	StageCanary     = "canary"      // the challenger decides for a growing share
	StagePaused     = "paused"      // frozen at the current split
	StageFull       = "full"        // the challenger decides for everyone
	StageRolledBack = "rolled_back" // back to the champion for everyone
)

// Rollout actions (POST /v1/risk/rollout).
const (
	ActionStart    = "start"
	ActionAdvance  = "advance"
	ActionPause    = "pause"
	ActionRollback = "rollback"
)

// StartBuckets is the split a rollout starts at: 5 % of users.
const StartBuckets = risk.Buckets / 20

// maxTransitions is how many recent transitions a Rollout remembers.
const maxTransitions = 50

// Transition is one change of a rollout's stage or split, with its reason.
type Transition struct {
	Action      string    `json:"action"`
	FromStage   string    `json:"from_stage"`
	ToStage     string    `json:"to_stage"`
	FromBuckets int       `json:"from_buckets"`
	ToBuckets   int       `json:"to_buckets"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

// Split is the traffic split between the versions, in routing buckets.
type Split struct {
	ChallengerBuckets int     `json:"challenger_buckets"`
	Buckets           int     `json:"buckets"`
	ChallengerPercent float64 `json:"challenger_percent"`
}

// RolloutStatus is what GET /v1/risk/rollout answers.
type RolloutStatus struct {
	Stage      string `json:"stage"`
	Champion   string `json:"champion"`
	Challenger string `json:"challenger"`
	Split      Split  `json:"split"`
	// Counts are new decisions per version since this engine started.
	Counts map[string]int64 `json:"counts"`
	// Labelled is how many labelled decisions Versions were measured on.
	Labelled    int                   `json:"labelled"`
	Versions    []risk.VersionMetrics `json:"versions"`
	Transitions []Transition          `json:"transitions"`
}

// RolloutConfig wires a Rollout; every field is required.
type RolloutConfig struct {
	Router     *risk.Router
	Champion   risk.Scorer
	Challenger risk.Scorer
	Decisions  orderflow.DecisionStore
	Engine     *Engine // its decision counts
	Now        func() time.Time
}

// Rollout is the manual rollout of a challenger model: an operator moves the
// split with start (5 %), advance (doubles, up to 100 %), pause (freeze) and
// rollback (0 %), and every move is recorded with its reason. An automatic
// canary controller would drive the same moves from the online metrics.
type Rollout struct {
	cfg RolloutConfig

	mu          sync.Mutex
	stage       string
	transitions []Transition
}

// NewRollout returns a rollout at the router's current split: stage fixed
// at 0, canary above it.
func NewRollout(cfg RolloutConfig) *Rollout {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	stage := StageFixed
	switch n := cfg.Router.ChallengerBuckets(); {
	case n == risk.Buckets:
		stage = StageFull
	case n > 0:
		stage = StageCanary
	}
	return &Rollout{cfg: cfg, stage: stage}
}

// Status reports the stage, the split, per-version counts and the online
// metrics of both versions over the labelled decisions.
func (r *Rollout) Status(ctx context.Context) (*RolloutStatus, error) {
	ds, err := r.cfg.Decisions.LabelledDecisions(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("rollout: labelled decisions: %w", err)
	}
	versions := risk.Evaluate(ds, r.cfg.Champion, r.cfg.Challenger)
	counts := map[string]int64{}
	if r.cfg.Engine != nil {
		counts = r.cfg.Engine.DecisionCounts()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.cfg.Router.ChallengerBuckets()
	return &RolloutStatus{
		Stage:      r.stage,
		Champion:   r.cfg.Champion.Version(),
		Challenger: r.cfg.Challenger.Version(),
		Split: Split{ChallengerBuckets: n, Buckets: risk.Buckets,
			ChallengerPercent: 100 * float64(n) / risk.Buckets},
		Counts:      counts,
		Labelled:    len(ds),
		Versions:    versions,
		Transitions: append([]Transition{}, r.transitions...),
	}, nil
}

// Act applies an operator's action to the rollout of challenger (which must
// be the configured challenger's version; empty means it). A move the stage
// forbids (advance before start, advance while paused) is a conflict.
func (r *Rollout) Act(ctx context.Context, action, challenger, reason string) (*RolloutStatus, error) {
	if challenger != "" && challenger != r.cfg.Challenger.Version() {
		return nil, orderflow.Invalid("challenger", "challenger must be %s, the only challenger this engine runs", r.cfg.Challenger.Version())
	}
	if err := r.act(action, reason); err != nil {
		return nil, err
	}
	return r.Status(ctx)
}

func (r *Rollout) act(action, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	from, fromN := r.stage, r.cfg.Router.ChallengerBuckets()
	to, toN := from, fromN
	switch action {
	case ActionStart:
		to = StageCanary
		if fromN == 0 {
			toN = StartBuckets
		}
	case ActionAdvance:
		switch from {
		case StageFixed, StageRolledBack:
			return orderflow.Errorf(orderflow.EConflict, "rollout is %s: start it first", from)
		case StagePaused:
			return orderflow.Errorf(orderflow.EConflict, "rollout is paused: start it again to resume")
		}
		toN = min(max(fromN*2, StartBuckets), risk.Buckets)
		to = StageCanary
		if toN == risk.Buckets {
			to = StageFull
		}
	case ActionPause:
		if from == StageFixed || from == StageRolledBack {
			return orderflow.Errorf(orderflow.EConflict, "rollout is %s: nothing to pause", from)
		}
		to = StagePaused
	case ActionRollback:
		to, toN = StageRolledBack, 0
	default:
		return orderflow.Invalid("action", "action must be start, advance, pause or rollback")
	}
	if err := r.cfg.Router.SetChallengerBuckets(toN); err != nil {
		return orderflow.Wrap(orderflow.EInternal, err, "set split")
	}
	if reason == "" {
		reason = "manual " + action
	}
	r.stage = to
	r.transitions = append(r.transitions, Transition{
		Action: action, FromStage: from, ToStage: to, FromBuckets: fromN, ToBuckets: toN,
		Reason: reason, At: r.cfg.Now().UTC(),
	})
	if len(r.transitions) > maxTransitions {
		r.transitions = r.transitions[len(r.transitions)-maxTransitions:]
	}
	return nil
}
