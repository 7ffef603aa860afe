package volstate

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Message is a Cinder user message: what an asynchronous operation of
// Project's that failed tells its user (a volume that went to error, an
// extend that failed), until Expires.
type Message struct {
	ID           string    `json:"id"`
	Project      string    `json:"project"`
	RequestID    string    `json:"request_id"`
	EventID      string    `json:"event_id"`
	UserMessage  string    `json:"user_message"`
	Level        string    `json:"level"`
	ResourceType string    `json:"resource_type"`
	ResourceUUID string    `json:"resource_uuid,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	Expires      time.Time `json:"expires"`
}

// MessageTable and the message commands.
const (
	MessageTable     = "volume_messages"
	CmdCreateMessage = "volume.message.create"
	CmdDeleteMessage = "volume.message.delete"
)

func messageTable() store.Table {
	return store.NewTable(MessageTable, &Message{}, store.StringIndex("project", "Project", false))
}

// CreateMessageCmd records a message; the expired ones go with it, as
// Cinder's periodic clean-up drops them.
type CreateMessageCmd struct {
	Row Message   `json:"row"`
	Now time.Time `json:"now"`
}

func applyCreateMessage(tx *memdb.Txn, c CreateMessageCmd) (any, error) {
	for _, m := range store.All[Message](tx, MessageTable, "id") {
		if !c.Now.Before(m.Expires) {
			if err := tx.Delete(MessageTable, m); err != nil {
				return nil, err
			}
		}
	}
	if store.Get[Message](tx, MessageTable, c.Row.ID) != nil {
		// The same proposal again (an unknown outcome retried).
		return nil, nil
	}
	row := c.Row
	return nil, tx.Insert(MessageTable, &row)
}

// DeleteMessageCmd deletes a message.
type DeleteMessageCmd struct {
	ID string `json:"id"`
}

func applyDeleteMessage(tx *memdb.Txn, c DeleteMessageCmd) (any, error) {
	m := store.Get[Message](tx, MessageTable, c.ID)
	if m == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Message %s could not be found.", c.ID)
	}
	return nil, tx.Delete(MessageTable, m)
}
