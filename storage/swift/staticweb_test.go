package swift

import (
	"net/http"
	"strings"
	"testing"
)

func TestStaticWeb(t *testing.T) {
	e := newEnv(t)
	site := "/v1/AUTH_p1/site"
	e.must(http.StatusCreated, "PUT", site, alice, "", "X-Container-Read", ".r:*,.rlistings")
	e.must(http.StatusCreated, "PUT", site+"/index.html", alice, "<h1>home</h1>", "Content-Type", "text/html")
	e.must(http.StatusCreated, "PUT", site+"/docs/a.txt", alice, "a")
	e.must(http.StatusCreated, "PUT", site+"/docs/sub/b.txt", alice, "b")
	e.must(http.StatusCreated, "PUT", site+"/404error.html", alice, "lost")

	// Not a web site yet: the plain listing.
	if r := e.must(http.StatusOK, "GET", site, "", ""); strings.Contains(r.body, "<html>") {
		t.Fatalf("listing before web metadata: %q", r.body)
	}
	e.must(http.StatusNoContent, "POST", site, alice, "", "X-Container-Meta-Web-Index", "index.html",
		"X-Container-Meta-Web-Listings", "true", "X-Container-Meta-Web-Listings-CSS", "listings.css", "X-Container-Meta-Web-Error", "error.html")

	// The index object for the container, without and with its slash.
	for _, p := range []string{site, site + "/"} {
		r := e.must(http.StatusOK, "GET", p, "", "")
		if r.body != "<h1>home</h1>" || r.header.Get("Etag") == "" {
			t.Errorf("GET %s: %q, etag %q", p, r.body, r.header.Get("Etag"))
		}
	}
	// A directory without an index is listed, with the stylesheet
	// linked relative to the container and a parent link.
	r := e.must(http.StatusOK, "GET", site+"/docs/", "", "")
	for _, want := range []string{`<link rel="stylesheet" type="text/css" href="../listings.css" />`, `href="a.txt"`, `href="sub/"`, `href="../"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("docs/ listing lacks %s:\n%s", want, r.body)
		}
	}
	// A directory named without its slash is redirected to it.
	c := *e.Srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Get(e.Srv.URL + site + "/docs")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != site+"/docs/" {
		t.Errorf("GET docs: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// Objects are served as usual; a missing one gets the error page.
	if r := e.must(http.StatusOK, "GET", site+"/docs/a.txt", "", ""); r.body != "a" {
		t.Errorf("object: %q", r.body)
	}
	if r := e.must(http.StatusNotFound, "GET", site+"/nothing", "", ""); r.body != "lost" {
		t.Errorf("missing object: %q", r.body)
	}

	// Listings with the stylesheet at the top level, when there is no
	// index.
	e.must(http.StatusNoContent, "POST", site, alice, "", "X-Container-Meta-Web-Index", "")
	r = e.must(http.StatusOK, "GET", site, "", "")
	if !strings.Contains(r.body, `<link rel="stylesheet" type="text/css" href="listings.css" />`) || !strings.Contains(r.body, `<base href="/v1/AUTH_p1/site/" />`) || !strings.Contains(r.body, `href="index.html"`) {
		t.Errorf("top listing:\n%s", r.body)
	}
	// An authenticated caller sees the plain listing unless it asks
	// for web mode.
	if r := e.must(http.StatusOK, "GET", site, alice, ""); strings.Contains(r.body, "<html>") {
		t.Errorf("authenticated listing without X-Web-Mode is HTML")
	}
	if r := e.must(http.StatusOK, "GET", site, alice, "", "X-Web-Mode", "true"); !strings.Contains(r.body, "<html>") {
		t.Errorf("X-Web-Mode listing is not HTML: %q", r.body)
	}
	// Another project's token in web mode gets no more than it has.
	e.must(http.StatusNoContent, "POST", site, alice, "", "X-Container-Read", ".r:*")
	e.must(http.StatusForbidden, "GET", site, "bob-tok", "", "X-Web-Mode", "true")
	// Without .rlistings, the public sees pages but no listing.
	e.must(http.StatusUnauthorized, "GET", site+"/docs/", "", "")
	e.must(http.StatusOK, "GET", site+"/docs/a.txt", "", "")

	// A private web site is neither listed nor served to anonymous
	// callers.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/private", alice, "", "X-Container-Meta-Web-Listings", "true", "X-Container-Meta-Web-Index", "index.html")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/private/index.html", alice, "secret")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/private/d/x", alice, "secret")
	for _, p := range []string{"/v1/AUTH_p1/private", "/v1/AUTH_p1/private/", "/v1/AUTH_p1/private/d/", "/v1/AUTH_p1/private/d"} {
		if r := e.do("GET", p, "", ""); r.status != http.StatusUnauthorized || strings.Contains(r.body, "secret") || strings.Contains(r.body, "index.html") {
			t.Errorf("anonymous GET %s: %d %q", p, r.status, r.body)
		}
	}
}
