package chaos

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"
)

// Side says where a fault applies: in the server middleware or in the client
// transport. A service that is both (the risk engine serves and calls) can
// slow its callers without slowing its own outgoing calls, or the reverse.
type Side string

// The two sides a fault can target.
const (
	Server Side = "server"
	Client Side = "client"
)

// Limits of the admin input: large enough for any experiment, small enough
// that a typo ("200s" for "200ms") cannot wedge a service for hours.
const (
	MaxLatency     = 5 * time.Minute
	MaxCPUDuration = time.Hour
)

// Scope narrows a fault to some requests. The zero Scope matches every
// request on both sides.
type Scope struct {
	// Sides lists where the fault applies; empty means both.
	Sides []Side
	// PathPrefix limits the fault to URL paths with this prefix ("/v1/risk/");
	// empty means every path.
	PathPrefix string
}

func (s Scope) matches(side Side, path string) bool {
	if len(s.Sides) > 0 && !slices.Contains(s.Sides, side) {
		return false
	}
	return len(path) >= len(s.PathPrefix) && path[:len(s.PathPrefix)] == s.PathPrefix
}

// Latency delays matching requests by Fixed plus a uniform random part in
// [0, Jitter), with the given Probability. The delay ends early when the
// request's context ends.
type Latency struct {
	Fixed       time.Duration
	Jitter      time.Duration
	Probability float64
	Scope
}

// ErrorFault fails matching requests with the given Probability. With
// Status set (400..599) the server middleware answers that status with an
// error body, and the client transport synthesizes the same response without
// sending the request. With Drop set instead, the server aborts the
// connection (panic(http.ErrAbortHandler)) and the client transport returns
// ErrDropped: a dropped connection, whose outcome the caller cannot know.
type ErrorFault struct {
	Status      int
	Drop        bool
	Probability float64
	Scope
}

// CPUBurn makes the process burn Share of one core (0..1) for Duration, to
// see how latency and the breaker react to a noisy neighbour. Until is set
// by Injector.Set and ignored on input.
type CPUBurn struct {
	Share    float64
	Duration time.Duration
	Until    time.Time
}

// Settings is the complete fault configuration. A nil section injects
// nothing, so the zero Settings turns chaos off. Set replaces the whole
// configuration: there is no partial update to reason about.
type Settings struct {
	Latency *Latency
	Error   *ErrorFault
	CPU     *CPUBurn
}

// FieldError is a validation failure of Settings; Field is the JSON path of
// the offending value ("latency.probability"), empty when the input does not
// parse as a whole.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "chaos: " + e.Message
	}
	return "chaos: " + e.Field + ": " + e.Message
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Validate reports the first invalid value as a *FieldError, in the order
// the JSON form lists them.
func (s Settings) Validate() error {
	if err := s.Latency.validate(); err != nil {
		return err
	}
	if err := s.Error.validate(); err != nil {
		return err
	}
	return s.CPU.validate()
}

func (l *Latency) validate() error {
	if l == nil {
		return nil
	}
	if err := validFixed("latency.fixed", l.Fixed); err != nil {
		return err
	}
	if l.Jitter < 0 || l.Fixed+l.Jitter > MaxLatency {
		return fieldErr("latency.jitter", "must be at least 0s, and fixed+jitter at most %s", MaxLatency)
	}
	if err := validProbability("latency.probability", l.Probability); err != nil {
		return err
	}
	return l.Scope.validate("latency")
}

func validFixed(field string, d time.Duration) error {
	if d < 0 || d > MaxLatency {
		return fieldErr(field, "must be between 0s and %s", MaxLatency)
	}
	return nil
}

func (e *ErrorFault) validate() error {
	if e == nil {
		return nil
	}
	switch {
	case e.Drop && e.Status != 0:
		return fieldErr("error.status", "status and drop exclude each other")
	case !e.Drop:
		if err := validStatus("error.status", e.Status); err != nil {
			return err
		}
	}
	if err := validProbability("error.probability", e.Probability); err != nil {
		return err
	}
	return e.Scope.validate("error")
}

func validStatus(field string, status int) error {
	if status < 400 || status > 599 {
		return fieldErr(field, "must be an HTTP error status 400..599 (or set drop)")
	}
	return nil
}

func (c *CPUBurn) validate() error {
	if c == nil {
		return nil
	}
	if err := validShare("cpu.share", c.Share); err != nil {
		return err
	}
	if c.Share > 0 && c.Duration <= 0 {
		return fieldErr("cpu.duration", "must be above 0s and at most %s", MaxCPUDuration)
	}
	return validBurnDuration("cpu.duration", c.Duration)
}

func validShare(field string, share float64) error {
	if math.IsNaN(share) || share < 0 || share > 1 {
		return fieldErr(field, "must be between 0 and 1 (a share of one core)")
	}
	return nil
}

func validBurnDuration(field string, d time.Duration) error {
	if d < 0 || d > MaxCPUDuration {
		return fieldErr(field, "must be above 0s and at most %s", MaxCPUDuration)
	}
	return nil
}

func validProbability(field string, p float64) error {
	if math.IsNaN(p) || p < 0 || p > 1 {
		return fieldErr(field, "must be between 0 and 1")
	}
	return nil
}

func (s Scope) validate(section string) error {
	for i, side := range s.Sides {
		if err := validSide(fmt.Sprintf("%s.sides[%d]", section, i), side); err != nil {
			return err
		}
	}
	return validPrefix(section+".path_prefix", s.PathPrefix)
}

func validSide(field string, side Side) error {
	if side != Server && side != Client {
		return fieldErr(field, "must be %q or %q", Server, Client)
	}
	return nil
}

func validPrefix(field, prefix string) error {
	if prefix != "" && prefix[0] != '/' {
		return fieldErr(field, "must start with /")
	}
	return nil
}

// clone copies s deeply, so a caller that keeps and mutates its Settings
// after Set cannot race with the requests reading them.
func (s Settings) clone() Settings {
	if s.Latency != nil {
		l := *s.Latency
		l.Sides = slices.Clone(l.Sides)
		s.Latency = &l
	}
	if s.Error != nil {
		e := *s.Error
		e.Sides = slices.Clone(e.Sides)
		s.Error = &e
	}
	if s.CPU != nil {
		c := *s.CPU
		s.CPU = &c
	}
	return s
}

// LogValue renders the settings as nested groups, so the change log of the
// admin handler is structured and greppable ("new.error.status").
func (s Settings) LogValue() slog.Value {
	var attrs []slog.Attr
	if l := s.Latency; l != nil {
		attrs = append(attrs, slog.Group("latency",
			slog.Duration("fixed", l.Fixed), slog.Duration("jitter", l.Jitter),
			slog.Float64("probability", l.Probability),
			slog.Any("sides", l.Sides), slog.String("path_prefix", l.PathPrefix)))
	}
	if e := s.Error; e != nil {
		attrs = append(attrs, slog.Group("error",
			slog.Int("status", e.Status), slog.Bool("drop", e.Drop),
			slog.Float64("probability", e.Probability),
			slog.Any("sides", e.Sides), slog.String("path_prefix", e.PathPrefix)))
	}
	if c := s.CPU; c != nil {
		attrs = append(attrs, slog.Group("cpu",
			slog.Float64("share", c.Share), slog.Duration("duration", c.Duration)))
	}
	if len(attrs) == 0 {
		return slog.StringValue("off")
	}
	return slog.GroupValue(attrs...)
}
