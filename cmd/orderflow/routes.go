package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/orderflow/orderflow/httpapi/riskapi"
	"github.com/orderflow/orderflow/risk/engine"
)

// defaultStuckAfter applies when the app was built without flags (tests).
const defaultStuckAfter = 10 * time.Minute

// extraRoutes returns the routes mounted beside httpapi's. Admin: the chaos
// switches and the stuck orders in every mode, the dead letters in serve.
// Public, in serve: the risk engine's routes (labels, reviews, rollout).
func (a *app) extraRoutes() (public, admin map[string]http.Handler, err error) {
	public, admin = map[string]http.Handler{}, map[string]http.Handler{}
	admin["GET /admin/chaos"] = a.chaos.Handler()
	admin["PUT /admin/chaos"] = a.chaos.Handler()
	stuckAfter := a.cfg.StuckAfter
	if stuckAfter <= 0 {
		stuckAfter = defaultStuckAfter
	}
	if err := a.metrics.Registry.Register(riskapi.StuckGauge(a.store, stuckAfter, nil)); err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	acfg := riskapi.AdminConfig{Stuck: a.store, StuckAfter: stuckAfter}
	if a.risk != nil {
		acfg.DeadLetters = a.risk.bus
		a.risk.rollout = engine.NewRollout(engine.RolloutConfig{
			Router: a.risk.router, Champion: a.risk.assessor.Champion, Challenger: a.risk.assessor.Challenger,
			Decisions: a.store, Engine: a.risk.engine,
		})
		for p, h := range riskapi.Routes(riskapi.Config{Reviewer: a.risk.engine, Labels: a.store, Rollout: a.risk.rollout}) {
			public[p] = h
		}
	}
	for p, h := range riskapi.AdminRoutes(acfg) {
		admin[p] = h
	}
	return public, admin, nil
}
