package redisstream

import (
	"github.com/orderflow/orderflow"
	"github.com/redis/go-redis/v9"
)

// EventOf decodes a stream entry for the external tests, which look at
// entries in Redis directly.
func EventOf(m redis.XMessage) orderflow.Event {
	e, _, _ := decode(m)
	return e
}
