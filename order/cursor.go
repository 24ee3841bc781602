package order

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/orderflow/orderflow"
)

// cursor is the decoded form of ListParams.Cursor. It carries the filters it
// was issued for, so a client cannot page one query with another's cursor and
// silently skip or repeat orders.
type cursor struct {
	CreatedAt int64            `json:"t"` // Unix nanoseconds
	ID        string           `json:"i"`
	UserID    string           `json:"u,omitempty"`
	Status    orderflow.Status `json:"s,omitempty"`
}

// encodeCursor makes the opaque next_cursor after o for the given filters.
func encodeCursor(o *orderflow.Order, userID string, status orderflow.Status) string {
	b, _ := json.Marshal(cursor{CreatedAt: o.CreatedAt.UnixNano(), ID: o.ID, UserID: userID, Status: status})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses s and checks it was issued for these filters.
func decodeCursor(s, userID string, status orderflow.Status) (*orderflow.OrderCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, orderflow.Invalid("cursor", "cursor is malformed")
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		return nil, orderflow.Invalid("cursor", "cursor is malformed")
	}
	if c.UserID != userID || c.Status != status {
		return nil, orderflow.Invalid("cursor", "cursor was issued for other filters")
	}
	return &orderflow.OrderCursor{CreatedAt: time.Unix(0, c.CreatedAt).UTC(), ID: c.ID}, nil
}
