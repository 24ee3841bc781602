package risk

import (
	"math"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
)

// Windows of the velocity features. They are part of the features'
// definition (a model trained on 1 h counts must be fed 1 h counts), so they
// are constants, not settings.
const (
	ShortWindow = time.Hour
	LongWindow  = 24 * time.Hour
)

// NightStart and NightEnd bound night time in the order's local hour:
// NightStart <= hour < NightEnd.
const (
	NightStart = 0
	NightEnd   = 6
)

// Features are what a model sees of one order: the order itself plus the
// user's recent history, as of the moment the order was observed. They are
// plain numbers so scoring costs nanoseconds.
type Features struct {
	// LogAmount is ln(1 + amount in major units), amount_minor / 100: every
	// currency of the synthetic data has two decimals. The log makes a
	// doubling count the same at 50 as at 5,000.
	LogAmount float64
	// Orders1h and Orders24h count the user's orders created in the last
	// hour and day, THIS ORDER INCLUDED (so they are at least 1).
	Orders1h, Orders24h int
	// Devices24h counts distinct device ids over the user's orders of the
	// last day, this order's included; orders without a device id add none.
	Devices24h int
	// PriorOrders is how many earlier orders of the user the counters
	// remember (0: the first order we know of).
	PriorOrders int
	// AmountZ is the z-score of ln(amount) against the user's earlier
	// orders: (ln a − mean) / max(std, MinAmountStd). 0 when PriorOrders is
	// 0, so a first order is neither usual nor unusual.
	AmountZ float64
	// AgeHours is the time since the user's first remembered order, in
	// hours; 0 for the first one.
	AgeHours float64
	// Items is the total quantity over the order's lines.
	Items int
	// LocalHour is the hour (0-23) of the order's creation in its region's
	// local time (RegionOffset); Night is NightStart <= LocalHour < NightEnd.
	LocalHour int
	Night     bool
	// Internal marks an employee's order.
	Internal bool
}

// MinAmountStd floors the standard deviation of AmountZ (in ln units): a user
// with two identical past orders has std 0, and without a floor any other
// amount would be infinitely unusual. 0.5 is about a factor 1.65.
const MinAmountStd = 0.5

// Extract computes the features of o from the user's snapshot s, which the
// Counters returned when they observed o.
func Extract(o *orderflow.Order, s Snapshot) Features {
	f := Features{
		LogAmount:   math.Log1p(float64(o.AmountMinor) / 100),
		Orders1h:    s.Orders1h,
		Orders24h:   s.Orders24h,
		Devices24h:  s.Devices24h,
		PriorOrders: s.PriorOrders,
		Internal:    o.Internal,
	}
	if s.PriorOrders > 0 {
		f.AmountZ = (math.Log(float64(max(o.AmountMinor, 1))) - s.MeanLogAmount) / max(s.StdLogAmount, MinAmountStd)
	}
	if !s.FirstSeen.IsZero() && o.CreatedAt.After(s.FirstSeen) {
		f.AgeHours = o.CreatedAt.Sub(s.FirstSeen).Hours()
	}
	for _, it := range o.Items {
		f.Items += int(it.Qty)
	}
	f.LocalHour = LocalHour(o.Region, o.CreatedAt)
	f.Night = NightStart <= f.LocalHour && f.LocalHour < NightEnd
	return f
}

// regionOffsets are the UTC offsets, in hours, of the regions we know. None
// of them observes daylight saving time except the US and EU ones, which we
// keep at standard time: an hour's error in summer moves night by an hour,
// which the models tolerate, and a fixed table needs no tz database.
var regionOffsets = map[string]int{
	"east-china": 8, "north-china": 8, "south-china": 8, "west-china": 8,
	"central-china": 8, "hong-kong": 8, "singapore": 8,
	"japan": 9, "korea": 9,
	"eu-west": 0, "eu-central": 1,
	"us-east": -5, "us-central": -6, "us-west": -8,
}

// RegionOffset returns the UTC offset used for a region's local time: the
// table above for known regions, UTC+8 for any other region ending in
// "-china" (the CNY regions), UTC otherwise.
func RegionOffset(region string) time.Duration {
	if h, ok := regionOffsets[region]; ok {
		return time.Duration(h) * time.Hour
	}
	if strings.HasSuffix(region, "-china") {
		return 8 * time.Hour
	}
	return 0
}

// LocalHour returns the hour of t (0-23) in region's local time.
func LocalHour(region string, t time.Time) int {
	return t.UTC().Add(RegionOffset(region)).Hour()
}
