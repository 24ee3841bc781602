package lab

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"
)

func init() {
	Register(Experiment{
		Name:  "channels",
		Title: "channel semantics (unbuffered, buffered, select default, closed) and their cost per operation",
		Run:   runChannels,
	})
}

// chanFacts are the behaviours the claim is about, observed rather than
// assumed. Each field is what the program saw.
type chanFacts struct {
	unbufferedSendNoReceiver  bool          // a non-blocking send on an unbuffered channel with no receiver went through
	unbufferedSendReceiver    bool          // ... went through once a receiver waited
	receiverWait              time.Duration // how long until the receiver was found waiting
	bufferedAccepted          int           // non-blocking sends a cap-4 channel took before refusing
	closedValue               int           // value received from a closed channel
	closedOK                  bool          // ok flag received from a closed channel
	closedDrainsBufferedFirst bool          // a closed, buffered channel still yields its buffered values
	sendOnClosedPanics        bool
}

// observeChannels probes each behaviour with non-blocking operations, so a
// wrong belief shows up as a wrong value instead of a hung program.
func observeChannels(ctx context.Context) (chanFacts, error) {
	var f chanFacts

	unbuf := make(chan int)
	select {
	case unbuf <- 1:
		f.unbufferedSendNoReceiver = true
	default:
	}

	got := make(chan int, 1)
	go func() { got <- <-unbuf }() // owned: ends once the send below, or the drain after it, happens
	start := time.Now()
	for !f.unbufferedSendReceiver {
		select {
		case unbuf <- 2:
			f.unbufferedSendReceiver = true
		default:
			if ctx.Err() != nil || time.Since(start) > 5*time.Second {
				unbuf <- 0 // let the receiver finish before giving up
				<-got
				return f, fmt.Errorf("channels: receiver never became ready: %w", context.Cause(ctx))
			}
			runtime.Gosched()
		}
	}
	f.receiverWait = time.Since(start)
	<-got

	buf := make(chan int, 4)
	for i := 0; i < 10; i++ {
		select {
		case buf <- i:
			f.bufferedAccepted++
			continue
		default:
		}
		break
	}

	closed := make(chan int, 1)
	closed <- 7
	close(closed)
	v, ok := <-closed
	f.closedDrainsBufferedFirst = v == 7 && ok
	f.closedValue, f.closedOK = <-closed
	f.sendOnClosedPanics = sendPanics(closed)
	return f, nil
}

func sendPanics(ch chan int) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	ch <- 1
	return false
}

var chSinkInt int

func chPingPong(n int) {
	ping, pong := make(chan int), make(chan int)
	done := make(chan struct{})
	go func() { // owned: ends when ping is closed below
		defer close(done)
		for v := range ping {
			pong <- v
		}
	}()
	s := 0
	for i := range n {
		ping <- i
		s += <-pong
	}
	close(ping)
	<-done
	chSinkInt = s
}

func chBuffered(n int) {
	ch := make(chan int, 128)
	s := 0
	for i := range n {
		ch <- i
		s += <-ch
	}
	chSinkInt = s
}

func chSelectDefault(n int) {
	ch := make(chan int)
	s := 0
	for range n {
		select {
		case v := <-ch:
			s += v
		default:
			s++
		}
	}
	chSinkInt = s
}

func chClosedRecv(n int) {
	ch := make(chan int)
	close(ch)
	s := 0
	for range n {
		v, ok := <-ch
		if !ok {
			s += v + 1
		}
	}
	chSinkInt = s
}

func runChannels(ctx context.Context, opt Options) (Result, error) {
	p := planFor(opt)
	res := Result{
		Name: "channels",
		Claim: "An unbuffered send blocks until a receiver is ready; a buffered send does not block until the buffer is full; " +
			"a select with default never blocks; a receive from a closed channel returns the zero value and false at once.",
	}
	f, err := observeChannels(ctx)
	if err != nil {
		return res, err
	}
	res.Measurements = append(res.Measurements,
		Measurement{Name: "non-blocking sends taken by unbuffered chan, no receiver", Median: b2f(f.unbufferedSendNoReceiver), Unit: "sends", Runs: 1},
		Measurement{Name: "non-blocking sends taken by unbuffered chan, receiver waiting", Median: b2f(f.unbufferedSendReceiver), Unit: "sends", Runs: 1},
		Measurement{Name: "non-blocking sends taken by cap-4 chan (of 10 tried)", Median: float64(f.bufferedAccepted), Unit: "sends", Runs: 1},
	)
	costs := []struct {
		name string
		fn   func(int)
	}{
		{"unbuffered send+receive across goroutines (ping-pong, per round trip)", chPingPong},
		{"buffered send+receive, same goroutine", chBuffered},
		{"select with default, empty chan", chSelectDefault},
		{"receive from closed chan", chClosedRecv},
	}
	ns := map[string]float64{}
	for _, c := range costs {
		m, a, err := repeatOp(ctx, p, c.name, c.fn)
		if err != nil {
			return res, err
		}
		ns[c.name] = m.Median
		res.Measurements = append(res.Measurements, m, a)
	}
	runtime.KeepAlive(chSinkInt)

	checks := []struct {
		ok   bool
		what string
	}{
		{!f.unbufferedSendNoReceiver, "unbuffered send without receiver did not proceed"},
		{f.unbufferedSendReceiver, fmt.Sprintf("it proceeded once a receiver waited (after %s of polling)", f.receiverWait.Round(time.Microsecond))},
		{f.bufferedAccepted == 4, fmt.Sprintf("a cap-4 channel took %d sends without a receiver, then refused", f.bufferedAccepted)},
		{ns["select with default, empty chan"] < 1000, fmt.Sprintf("select-default costs %.1f ns (returns at once)", ns["select with default, empty chan"])},
		{f.closedValue == 0 && !f.closedOK, fmt.Sprintf("receive from closed channel gave (%d, %v)", f.closedValue, f.closedOK)},
	}
	var good, bad []string
	for _, c := range checks {
		if c.ok {
			good = append(good, c.what)
		} else {
			bad = append(bad, c.what)
		}
	}
	if len(bad) == 0 {
		res.Verdict = Holds
	} else {
		res.Verdict = Refuted
	}
	res.Condition = "semantics are the language's and hold everywhere; the costs are this machine's" + raceNote() +
		": observed " + strings.Join(good, "; ")
	if len(bad) > 0 {
		res.Condition += "; NOT observed: " + strings.Join(bad, "; ")
	}
	res.Notes = fmt.Sprintf("Two details the claim leaves out: a closed buffered channel first yields its buffered values (observed: %v), "+
		"and a send on a closed channel panics (observed: %v). An unbuffered round trip costs %.0fx a buffered send+receive in one goroutine: "+
		"the difference is the goroutine switch.", f.closedDrainsBufferedFirst, f.sendOnClosedPanics,
		ratio(ns["unbuffered send+receive across goroutines (ping-pong, per round trip)"], ns["buffered send+receive, same goroutine"]))
	return res, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
