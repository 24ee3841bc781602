package local

import "time"

// Break ends the current lease on key behind its holder's back, the way an
// expiry would on a distributed lock. Tests use it to check that Done closes
// and that the stale holder's Release and writes are refused.
func (l *Locker) Break(key string) bool { return l.breakLock(key) }

// SetClock replaces the clock tokens are built from.
func SetClock(l *Locker, now func() time.Time) { l.now = now }
