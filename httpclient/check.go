package httpclient

import "strings"

// TB is the part of testing.TB the body checks need. testing.T and
// testing.B satisfy it; a test of the checks themselves can pass a fake.
// Declaring it here keeps "testing" out of production binaries.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(func())
}

// AssertNoOpenBodies reports an error on tb when c has response bodies that
// were handed out and not closed. Call it when every request of the test has
// finished; CheckBodies does that for you.
func AssertNoOpenBodies(tb TB, c *Client) {
	tb.Helper()
	s := c.Stats()
	if s.OpenBodies == 0 {
		return
	}
	msg := "set httpclient.Config.TrackBodies to see which requests"
	if len(s.OpenBodyNames) > 0 {
		msg = "requests: " + strings.Join(s.OpenBodyNames, ", ")
	}
	tb.Errorf("httpclient %q: %d response bodies opened and never closed (%d opened, %d closed); %s",
		c.name, s.OpenBodies, s.BodiesOpened, s.BodiesClosed, msg)
}

// CheckBodies arranges for AssertNoOpenBodies to run when the test ends, so
// a test that forgets resp.Body.Close fails instead of leaking connections
// unnoticed. Call it right after creating the client:
//
//	c := httpclient.New(httpclient.Config{TrackBodies: true})
//	httpclient.CheckBodies(t, c)
//
// The check runs at cleanup time, after the test function has returned, so
// bodies closed by deferred calls in the test are already accounted for.
func CheckBodies(tb TB, c *Client) {
	tb.Helper()
	tb.Cleanup(func() {
		tb.Helper()
		AssertNoOpenBodies(tb, c)
	})
}
