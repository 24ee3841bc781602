package redisstream

import (
	"github.com/orderflow/orderflow"
	"github.com/redis/go-redis/v9"
)

// EventsOf decodes a stream entry for the external tests, which look at
// entries in Redis directly.
func EventsOf(m redis.XMessage) []orderflow.Event {
	evs, _, _ := decode(m)
	return evs
}
