// Package web serves the web console: one HTML page and the static
// modules it loads, embedded in the binary so there is nothing to build or
// install. The console is only a client: every action it offers goes
// through the same public APIs the CLI uses (Keystone, Nova, Neutron, …),
// with the user's token in an X-Auth-Token header. This package must not
// grow an API of its own.
//
// Why there is no CSRF token: the console never authenticates with a
// cookie. The Keystone token lives in a JavaScript variable of the page and
// is sent as X-Auth-Token, a header a cross-site form or image cannot set
// (and a cross-site fetch could set only after a CORS preflight rackd does
// not grant), so a forged request from another site carries no credential.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed assets
var embedded embed.FS

// AssetPrefix is where the console's static files are served. The next
// path element is a hash of their content, so they can be cached for a
// year and a new build is fetched at once.
const AssetPrefix = "/ui/"

// contentSecurityPolicy allows scripts, styles, images and connections
// from this origin only and no inline script. Inline styles are allowed:
// xterm.js themes its terminal with a generated <style> element; a style
// cannot run code.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentType is the type of a file the console ships, "" for any other
// kind. The host's mime.types is not consulted, so the answer does not
// vary by machine.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".md", ".txt":
		return "text/plain; charset=utf-8"
	}
	return ""
}

// Console serves the console's page and assets.
type Console struct {
	files   fs.FS
	version string
	index   []byte
}

// New returns the console over the embedded assets.
func New() (*Console, error) {
	files, err := fs.Sub(embedded, "assets")
	if err != nil {
		return nil, fmt.Errorf("open assets: %w", err)
	}
	return newConsole(files)
}

func newConsole(files fs.FS) (*Console, error) {
	h := sha256.New()
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hash assets: %w", err)
	}
	c := &Console{files: files, version: hex.EncodeToString(h.Sum(nil))[:16]}
	page, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return nil, fmt.Errorf("read index.html: %w", err)
	}
	c.index = []byte(strings.ReplaceAll(string(page), "{{ASSETS}}", c.AssetBase()))
	return c, nil
}

// AssetBase is the path under which this build's assets are served,
// ending in a slash.
func (c *Console) AssetBase() string { return AssetPrefix + c.version + "/" }

// Root answers `/`: the console's page for a browser (one that accepts
// text/html) and other for everyone else, so tools that read rackd's JSON
// answer at `/` keep getting it.
func (c *Console) Root(other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept")
		if !wantsHTML(r) {
			other.ServeHTTP(w, r)
			return
		}
		secure(w.Header())
		w.Header().Set("Content-Type", contentType("index.html"))
		// The page names the assets by content hash: it must be
		// revalidated, they need not be.
		w.Header().Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		w.Write(c.index)
	})
}

// Assets serves the files under AssetPrefix; mount it there.
func (c *Console) Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w.Header())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, c.AssetBase())
		if !ok {
			// Another build's asset: a page loaded before an upgrade.
			// Not found, rather than today's file under yesterday's name.
			http.NotFound(w, r)
			return
		}
		name := path.Clean(rest)
		typ := contentType(name)
		b, err := fs.ReadFile(c.files, name)
		if typ == "" || err != nil || name == "index.html" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", typ)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(b)
	})
}

// secure sets the headers every console response carries.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// wantsHTML reports whether the client asked for HTML: browsers list
// text/html in Accept; curl, the SDKs and rackctl do not.
func wantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); k == "q" {
				if q, err := strconv.ParseFloat(v, 64); err == nil && q == 0 {
					return false // "not HTML, please"
				}
			}
		}
		return true
	}
	return false
}
