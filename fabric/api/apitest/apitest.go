// Package apitest holds test doubles for the HTTP kit in fabric/api, shared
// by every service's tests so that each does not grow its own.
package apitest

import (
	"context"

	"github.com/rackstack/rackstack/fabric/api"
)

// Tokens is an api.Authenticator over fixed tokens: each key authenticates
// as its principal, and any other token is refused with
// api.ErrUnauthorized, as the identity service refuses a bad one.
type Tokens map[string]*api.Principal

var _ api.Authenticator = Tokens(nil)

// Validate returns the principal the token stands for.
func (t Tokens) Validate(_ context.Context, token string) (*api.Principal, error) {
	if p, ok := t[token]; ok {
		return p, nil
	}
	return nil, api.ErrUnauthorized
}
