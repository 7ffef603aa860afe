package store

import (
	"encoding/json"
	"errors"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
)

func TestTypedDecodesTheBodyOrRefusesIt(t *testing.T) {
	type cmd struct {
		Name string `json:"name"`
	}
	var seen []string
	h := Typed(func(_ *memdb.Txn, c cmd) (any, error) {
		seen = append(seen, c.Name)
		return c.Name + "!", nil
	})
	out, err := h(nil, 7, json.RawMessage(`{"name":"a"}`))
	if err != nil || out != "a!" {
		t.Fatalf("good body: %v, %v", out, err)
	}
	if _, err := h(nil, 8, json.RawMessage(`{"name":5}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad body: err %v, want invalid", err)
	}
	if len(seen) != 1 {
		t.Fatalf("the handler ran for a body that did not decode: %v", seen)
	}
}
