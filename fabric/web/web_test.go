package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func jsonAnswer(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"name": "rackstack"}`)
}

func serve(t *testing.T, h http.Handler, method, path, accept string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRootAnswersBrowsersWithThePageAndToolsWithJSON(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	root := c.Root(http.HandlerFunc(jsonAnswer))
	for name, tc := range map[string]struct {
		accept string
		html   bool
	}{
		"chromium":           {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8", true},
		"firefox":            {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		"curl":               {"*/*", false},
		"no accept":          {"", false},
		"json client":        {"application/json", false},
		"html refused":       {"application/json, text/html;q=0", false},
		"html low but wants": {"application/json, text/html;q=0.1", true},
	} {
		t.Run(name, func(t *testing.T) {
			resp := serve(t, root, http.MethodGet, "/", tc.accept)
			b := body(t, resp)
			if resp.Header.Get("Vary") != "Accept" {
				t.Errorf("Vary = %q, want Accept: caches must keep both answers apart", resp.Header.Get("Vary"))
			}
			if !tc.html {
				if b != `{"name": "rackstack"}` || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("got %q (%s), want the JSON answer", b, resp.Header.Get("Content-Type"))
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if !strings.Contains(b, `<form id="login-form" method="post"`) {
				t.Errorf("page lacks the login form:\n%s", b)
			}
			if strings.Contains(b, "{{ASSETS}}") || !strings.Contains(b, `src="`+c.AssetBase()+`app.js"`) {
				t.Errorf("page does not name the assets by this build's prefix %s:\n%s", c.AssetBase(), b)
			}
			if resp.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("Cache-Control = %q: the page must be revalidated", resp.Header.Get("Cache-Control"))
			}
			checkSecurityHeaders(t, resp)
		})
	}
}

func checkSecurityHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self';", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if m := regexp.MustCompile(`script-src[^;]*`).FindString(csp); strings.Contains(m, "unsafe") {
		t.Errorf("CSP allows unsafe scripts: %q", m)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Frame-Options %q, X-Content-Type-Options %q", resp.Header.Get("X-Frame-Options"), resp.Header.Get("X-Content-Type-Options"))
	}
}

func TestAssetsAreServedWithTheirTypeAndCachedForAYear(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	assets := c.Assets()
	for name, want := range map[string]string{
		"app.js":                     "text/javascript; charset=utf-8",
		"app.css":                    "text/css; charset=utf-8",
		"vendor/xterm/xterm.mjs":     "text/javascript; charset=utf-8",
		"vendor/xterm/xterm.css":     "text/css; charset=utf-8",
		"vendor/uplot/uPlot.esm.js":  "text/javascript; charset=utf-8",
		"vendor/uplot/uPlot.min.css": "text/css; charset=utf-8",
		"pages/instances.js":         "text/javascript; charset=utf-8",
	} {
		t.Run(name, func(t *testing.T) {
			resp := serve(t, assets, http.MethodGet, c.AssetBase()+name, "")
			b := body(t, resp)
			if resp.StatusCode != 200 || len(b) == 0 {
				t.Fatalf("%s: %d, %d bytes", name, resp.StatusCode, len(b))
			}
			if ct := resp.Header.Get("Content-Type"); ct != want {
				t.Errorf("Content-Type = %q, want %q", ct, want)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control = %q", cc)
			}
			checkSecurityHeaders(t, resp)
		})
	}
}

func TestAssetsRefuseWhatIsNotAnAsset(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	assets := c.Assets()
	for name, tc := range map[string]struct {
		method, path string
		status       int
	}{
		"another build's asset": {http.MethodGet, AssetPrefix + "0123456789abcdef/app.js", 404},
		"missing file":          {http.MethodGet, c.AssetBase() + "nope.js", 404},
		"directory":             {http.MethodGet, c.AssetBase() + "pages", 404},
		"escape":                {http.MethodGet, c.AssetBase() + "../../web.go", 404},
		"the page itself":       {http.MethodGet, c.AssetBase() + "index.html", 404},
		"post":                  {http.MethodPost, c.AssetBase() + "app.js", 405},
	} {
		t.Run(name, func(t *testing.T) {
			if resp := serve(t, assets, tc.method, tc.path, ""); resp.StatusCode != tc.status {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			}
		})
	}
}

func TestAssetBaseChangesWithTheAssets(t *testing.T) {
	page := &fstest.MapFile{Data: []byte(`<script src="{{ASSETS}}a.js"></script>`)}
	a, err := newConsole(fstest.MapFS{"index.html": page, "a.js": {Data: []byte("1")}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := newConsole(fstest.MapFS{"index.html": page, "a.js": {Data: []byte("2")}})
	if err != nil {
		t.Fatal(err)
	}
	if a.AssetBase() == b.AssetBase() {
		t.Errorf("both builds serve assets under %s: a browser would keep the old file for a year", a.AssetBase())
	}
}
