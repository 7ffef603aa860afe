package apitest

import (
	"context"
	"errors"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
)

func TestTokens(t *testing.T) {
	alice := &api.Principal{UserID: "alice", ProjectID: "p1", Roles: []string{"member"}}
	auth := Tokens{"alice-token": alice}
	if p, err := auth.Validate(context.Background(), "alice-token"); err != nil || p != alice {
		t.Errorf("known token: %v, %v", p, err)
	}
	for _, tok := range []string{"", "other", "alice"} {
		if p, err := auth.Validate(context.Background(), tok); !errors.Is(err, api.ErrUnauthorized) || p != nil {
			t.Errorf("token %q: %v, %v; want ErrUnauthorized", tok, p, err)
		}
	}
}
