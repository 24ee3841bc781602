package lab

import (
	"context"
	"testing"
)

// TestChannelSemantics pins the behaviours the channels experiment reports,
// so a reader can see them as assertions and not only as a report.
func TestChannelSemantics(t *testing.T) {
	f, err := observeChannels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"UnbufferedSendWithoutReceiverDoesNotProceed", f.unbufferedSendNoReceiver, false},
		{"UnbufferedSendWithWaitingReceiverProceeds", f.unbufferedSendReceiver, true},
		{"BufferedTakesCapacitySendsThenRefuses", f.bufferedAccepted, 4},
		{"ClosedYieldsBufferedValuesFirst", f.closedDrainsBufferedFirst, true},
		{"ClosedReceiveGivesZero", f.closedValue, 0},
		{"ClosedReceiveGivesNotOK", f.closedOK, false},
		{"SendOnClosedPanics", f.sendOnClosedPanics, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestChannelCostsRun(t *testing.T) {
	for _, fn := range []func(int){chPingPong, chBuffered, chSelectDefault, chClosedRecv} {
		fn(100)
	}
}
