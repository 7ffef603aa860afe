package store

import (
	"encoding/json"

	memdb "github.com/hashicorp/go-memdb"
)

// Typed is the Handler of a command whose body decodes into C: the decode
// step every handler would otherwise begin with, written once. A body
// that does not decode is refused as invalid before h runs.
func Typed[C any](h func(tx *memdb.Txn, c C) (any, error)) Handler {
	return func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
		var c C
		if err := DecodeBody(body, &c); err != nil {
			return nil, err
		}
		return h(tx, c)
	}
}
