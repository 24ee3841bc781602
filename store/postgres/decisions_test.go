package postgres_test

import (
	"testing"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/store/storetest"
)

// TestDecisionStoreContract runs the decision-store contract that
// store/sqlite runs too: one suite, every implementation.
func TestDecisionStoreContract(t *testing.T) {
	storetest.RunDecisions(t, func(t *testing.T) orderflow.DecisionStore { return MustOpen(t) })
}
