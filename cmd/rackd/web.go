package main

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/web"
)

// mountWeb serves the web console: its page at `/` for browsers, json
// (rackd's JSON answer) at `/` for every other client, and its assets.
func mountWeb(r chi.Router, json http.HandlerFunc) error {
	c, err := web.New()
	if err != nil {
		return err
	}
	r.Method(http.MethodGet, "/", c.Root(json))
	r.Mount(web.AssetPrefix, c.Assets())
	return nil
}
