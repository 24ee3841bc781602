// Package risk is the compute of the risk engine: features of an order, the
// model versions that score them, the sticky router that picks a version per
// user, and the online metrics that compare versions on labelled orders.
//
// It does no I/O of its own. The only state it needs — per-user velocity
// counters — sits behind the Counters interface, so the engine can use the
// in-memory implementation (NewMemoryCounters) in one process and a shared
// store (Redis) when risk workers run as replicas.
//
// # The pipeline of one order
//
// Assessor.Assess observes the order in the Counters (one call, one round
// trip for a remote implementation), turns the returned Snapshot and the
// order into Features (Extract), asks the Router whether the user belongs to
// the challenger, scores the order with BOTH versions, and maps the routed
// version's score to a Decision through that version's Thresholds. The other
// version's score is the shadow: recorded in the RiskDecision to compare
// versions online (Evaluate), never sent.
//
// # Model versions
//
//   - v2.1 (V21): hand-written rules, points added per suspicious signal.
//   - v3 (V3): logistic regression over the same features, its weights fitted
//     offline on synthetic data (package risk/synth) by risk/cmd/train and
//     checked in as v3_weights.json. docs/models.md compares both on held-out
//     data.
//
// # Rollout
//
// Router routes by a split that can change at run time; Evaluate measures
// both versions, routed and shadow, on labelled decisions. The rollout
// controller that moves the split (POST /v1/risk/rollout) and renders
// GET /v1/risk/rollout lives with the engine (risk/engine).
//
// Scoring is arithmetic on a small struct: about 10 ns for v2.1 and 100 ns
// for v3, no allocation; Assess as a whole, counters included, costs about
// 1.3 µs of CPU (docs/benchmarks/risk.md).
package risk
