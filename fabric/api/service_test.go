package api

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

func TestBaseCheck(t *testing.T) {
	if _, err := (Base{}).Check("compute"); err == nil || !strings.Contains(err.Error(), "compute: Config.Repl") {
		t.Fatalf("no store: %v", err)
	}
	// Check only needs a store to be given, not to work.
	var l *store.Local
	if _, err := (Base{Repl: l}).Check("image"); err == nil || !strings.Contains(err.Error(), "image: Config.Auth") {
		t.Fatalf("no authenticator: %v", err)
	}
	b, err := Base{Repl: l, Auth: noAuth{}}.Check("image")
	if err != nil || b.Log == nil || b.Now == nil || b.Prefix != "/image" {
		t.Fatalf("defaults: %v, %+v", err, b)
	}
}

func TestBaseURL(t *testing.T) {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Host = "cloud:8080"
	if got := (Base{Prefix: "/network"}).URL(r); got != "http://cloud:8080/network" {
		t.Errorf("plain: %s", got)
	}
	r.Header.Set("X-Forwarded-Proto", "https")
	if got := BaseURL(r, ""); got != "https://cloud:8080" {
		t.Errorf("forwarded: %s", got)
	}
	r.Header.Set("X-Forwarded-Proto", "gopher")
	r.TLS = &tls.ConnectionState{}
	if got := BaseURL(r, ""); got != "https://cloud:8080" {
		t.Errorf("tls, bogus forwarded proto: %s", got)
	}
	if got := (Base{PublicURL: "https://api.example/", Prefix: "/image"}).URL(r); got != "https://api.example/image" {
		t.Errorf("public: %s", got)
	}
}

type noAuth struct{}

func (noAuth) Validate(context.Context, string) (*Principal, error) { return nil, nil }
