package risk

import (
	"slices"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
)

// Stage is where a rollout of a challenger version stands.
type Stage string

// Stages of a rollout. Off: everyone on the champion, no rollout running.
// Canary and Ramp: a growing share of users on the challenger. Full: everyone
// on the challenger. Paused: the split frozen where it was. RolledBack:
// everyone back on the champion after a rollback.
const (
	StageOff        Stage = "off"
	StageCanary     Stage = "canary"
	StageRamp       Stage = "ramp"
	StageFull       Stage = "full"
	StagePaused     Stage = "paused"
	StageRolledBack Stage = "rolled_back"
)

// RolloutAction is what an operator asks of a rollout (POST /v1/risk/rollout).
type RolloutAction string

// The actions of API.md.
const (
	ActionStart    RolloutAction = "start"
	ActionAdvance  RolloutAction = "advance"
	ActionPause    RolloutAction = "pause"
	ActionRollback RolloutAction = "rollback"
)

// DefaultSteps are the challenger's shares, in buckets, that a rollout
// walks through: 1 %, 10 %, 50 %, 100 %. The first is the canary.
var DefaultSteps = []int{100, 1_000, 5_000, Buckets}

// MaxTransitions is how many recent transitions a rollout keeps.
const MaxTransitions = 20

// Transition is one change of a rollout's stage, with its reason.
type Transition struct {
	At                time.Time     `json:"at"`
	Action            RolloutAction `json:"action"`
	From              Stage         `json:"from"`
	To                Stage         `json:"to"`
	ChallengerBuckets int           `json:"challenger_buckets"`
	Reason            string        `json:"reason,omitempty"`
}

// RolloutState is a snapshot of a rollout, in the JSON shape GET
// /v1/risk/rollout can embed. Transitions are oldest first.
type RolloutState struct {
	Stage             Stage        `json:"stage"`
	Champion          string       `json:"champion"`
	Challenger        string       `json:"challenger"`
	ChallengerBuckets int          `json:"challenger_buckets"`
	Transitions       []Transition `json:"transitions"`
}

// Rollout moves a Router's split through Steps on an operator's actions:
//
//	off, rolled_back ──start──► canary (Steps[0])
//	canary, ramp ──advance──► ramp (next step), or full at the last step
//	paused ──advance──► the stage it paused, same split (resume)
//	canary, ramp, full ──pause──► paused (split unchanged)
//	any but off, rolled_back ──rollback──► rolled_back (split 0)
//
// Every other (stage, action) pair is a conflict and changes nothing. The
// split only grows until a rollback, so users only move champion →
// challenger (the Router's guarantee) until the operator decides otherwise.
// State lives in memory: a restarted process starts off; persisting it is
// the caller's choice. Safe for concurrent use.
type Rollout struct {
	router               *Router
	steps                []int
	champion, challenger string
	now                  func() time.Time
	mu                   sync.Mutex
	stage, pausedFrom    Stage
	step                 int
	transitions          []Transition
}

// NewRollout returns a rollout, off, that drives router (whose split it
// sets to 0) from champion to challenger through steps (nil means
// DefaultSteps; they must be increasing, within (0, Buckets]). now stamps
// transitions; nil means time.Now.
func NewRollout(router *Router, champion, challenger string, steps []int, now func() time.Time) (*Rollout, error) {
	if steps == nil {
		steps = DefaultSteps
	}
	if len(steps) == 0 || !slices.IsSorted(steps) || steps[0] <= 0 || steps[len(steps)-1] > Buckets || len(slices.Compact(slices.Clone(steps))) != len(steps) {
		return nil, orderflow.Errorf(orderflow.EInvalid, "rollout steps must increase within (0, %d]", Buckets)
	}
	if now == nil {
		now = time.Now
	}
	if err := router.SetChallengerBuckets(0); err != nil {
		return nil, err
	}
	return &Rollout{router: router, steps: slices.Clone(steps), champion: champion, challenger: challenger, now: now, stage: StageOff}, nil
}

// Do applies an action and returns the new state. challenger, if not empty,
// must name the rollout's challenger (the API's "challenger" field): a
// request for another version is invalid rather than silently applied to
// this one. reason is recorded with the transition.
func (r *Rollout) Do(action RolloutAction, challenger, reason string) (RolloutState, error) {
	if challenger != "" && challenger != r.challenger {
		return r.State(), orderflow.Invalid("challenger", "challenger %q is not deployed; this rollout is of %q", challenger, r.challenger)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	from, split := r.stage, r.router.ChallengerBuckets()
	to, step := from, r.step
	switch {
	case action == ActionStart && (from == StageOff || from == StageRolledBack):
		to, step = StageCanary, 0
	case action == ActionAdvance && (from == StageCanary || from == StageRamp):
		step = r.step + 1
		if step >= len(r.steps) {
			return r.stateLocked(), orderflow.Errorf(orderflow.EConflict, "rollout is at its last step; nothing to advance")
		}
		to = StageRamp
		if step == len(r.steps)-1 {
			to = StageFull
		}
	case action == ActionAdvance && from == StagePaused:
		to = r.pausedFrom
	case action == ActionPause && (from == StageCanary || from == StageRamp || from == StageFull):
		to, r.pausedFrom = StagePaused, from
	case action == ActionRollback && from != StageOff && from != StageRolledBack:
		to = StageRolledBack
	case action != ActionStart && action != ActionAdvance && action != ActionPause && action != ActionRollback:
		return r.stateLocked(), orderflow.Invalid("action", "action must be start, advance, pause or rollback")
	default:
		return r.stateLocked(), orderflow.Errorf(orderflow.EConflict, "cannot %s a rollout in stage %s", action, from)
	}
	switch to {
	case StageRolledBack:
		split = 0
	case StageCanary, StageRamp, StageFull:
		split = r.steps[step]
	}
	if err := r.router.SetChallengerBuckets(split); err != nil {
		return r.stateLocked(), err
	}
	r.stage, r.step = to, step
	r.transitions = append(r.transitions, Transition{
		At: r.now().UTC(), Action: action, From: from, To: to, ChallengerBuckets: split, Reason: reason,
	})
	if len(r.transitions) > MaxTransitions {
		r.transitions = slices.Delete(r.transitions, 0, len(r.transitions)-MaxTransitions)
	}
	return r.stateLocked(), nil
}

// State returns a snapshot of the rollout.
func (r *Rollout) State() RolloutState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stateLocked()
}

func (r *Rollout) stateLocked() RolloutState {
	return RolloutState{
		Stage: r.stage, Champion: r.champion, Challenger: r.challenger,
		ChallengerBuckets: r.router.ChallengerBuckets(),
		Transitions:       append([]Transition{}, r.transitions...), // [] not null in JSON
	}
}
