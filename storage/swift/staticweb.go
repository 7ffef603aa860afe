package swift

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"

	"github.com/rackstack/rackstack/storage/object"
)

// Static web sites (Swift's staticweb middleware): a container's
// X-Container-Meta-Web-Index names the object served for a directory
// path, Web-Listings: true lists a directory as HTML (styled by
// Web-Listings-CSS), and Web-Error names the page ("404"+name) served with
// a 404. It applies to anonymous GETs and HEADs, as a browser makes them,
// and, as in Swift, to authenticated ones that send X-Web-Mode: true.
// It grants nothing: an anonymous caller needs the container's public
// read ACL (.r:*) for pages and .rlistings besides for listings; an
// authenticated one needs what a plain read needs.

// webMode reports whether static web may answer the request.
func (q *request) webMode() bool {
	if q.container == "" || q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
		return false
	}
	return q.r.Header.Get("X-Auth-Token") == "" || configTrue(q.r.Header.Get("X-Web-Mode"))
}

func configTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on", "t", "y":
		return true
	}
	return false
}

// staticWeb answers a web-mode request when the container is a web site
// and reports whether it did; otherwise the request is served as usual.
func (q *request) staticWeb() bool {
	ctx := q.r.Context()
	c, err := q.h.Store.Container(ctx, q.project, q.container)
	if err != nil {
		return false
	}
	index, css, errPage := c.Meta["web-index"], c.Meta["web-listings-css"], c.Meta["web-error"]
	listings := configTrue(c.Meta["web-listings"])
	if index == "" && !listings && errPage == "" {
		return false
	}
	canList := true
	if q.r.Header.Get("X-Auth-Token") != "" {
		// Authenticated web mode: the usual read check decides.
		if !q.authorize() {
			return true
		}
	} else {
		if !publicRead(c.ReadACL, false) {
			return false // the usual check refuses it
		}
		canList = publicRead(c.ReadACL, true)
	}
	exists := func(name string) bool {
		_, err := q.h.Store.Head(ctx, q.project, q.container, name)
		return err == nil
	}
	dir := q.name == "" || strings.HasSuffix(q.name, "/")
	if !dir {
		if exists(q.name) {
			return false
		}
		// A directory named without its slash is redirected to it, so
		// relative links in its page resolve, as Swift does.
		if index != "" && exists(q.name+"/"+index) || listings && canList && q.hasUnder(q.name+"/") {
			q.w.Header().Set("Location", q.r.URL.Path+"/")
			q.w.WriteHeader(http.StatusMovedPermanently)
			return true
		}
		q.webError(c, http.StatusNotFound, "Not Found")
		return true
	}
	if index != "" && exists(q.name+index) {
		q.name += index
		q.getObject()
		return true
	}
	if !listings {
		if q.name == "" && index == "" {
			return false // an error page alone does not change listings
		}
		q.webError(c, http.StatusNotFound, "Not Found")
		return true
	}
	if !canList {
		q.webError(c, http.StatusUnauthorized, "Unauthorized: this container's listing is not public")
		return true
	}
	q.webListing(css)
	return true
}

// hasUnder reports whether any object's name starts with prefix.
func (q *request) hasUnder(prefix string) bool {
	entries, _, err := q.h.Store.List(q.r.Context(), q.project, q.container, object.ListOptions{Prefix: prefix, Limit: 1})
	return err == nil && len(entries) > 0
}

// webError answers status with the container's error page for it
// ("404"+Web-Error) when there is one, else with text.
func (q *request) webError(c *object.Container, status int, msg string) {
	if page := c.Meta["web-error"]; page != "" {
		name := fmt.Sprint(status) + page
		if _, err := q.h.Store.Head(q.r.Context(), q.project, q.container, name); err == nil {
			q.name = name
			q.r.Header.Del("Range")
			q.w = &statusWriter{ResponseWriter: q.w, status: status}
			q.getObject()
			return
		}
	}
	fail(q.w, q.r, status, msg)
}

// statusWriter sends status in place of a 200 (an error page's object).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if status == http.StatusOK {
		status = w.status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// webListing lists the directory q.name as Swift's staticweb does: its
// subdirectories and objects, with a parent link below the top, and the
// stylesheet linked relative to the container.
func (q *request) webListing(css string) {
	entries, _, err := q.h.Store.List(q.r.Context(), q.project, q.container, object.ListOptions{Prefix: q.name, Delimiter: "/", Limit: containerListLimit})
	if err != nil {
		q.failErr(err)
		return
	}
	if q.name != "" && len(entries) == 0 {
		fail(q.w, q.r, http.StatusNotFound, "Not Found")
		return
	}
	title := html.EscapeString("Listing of " + q.r.URL.Path)
	var b strings.Builder
	b.WriteString(`<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">` + "\n<html>\n <head>\n  <title>" + title + "</title>\n")
	// Links are relative to the directory; the container itself may be
	// asked for without its slash, so its page names its base (the path
	// as the client asked, under whatever prefix Swift is mounted at).
	if u, err := url.ParseRequestURI(q.r.RequestURI); err == nil && !strings.HasSuffix(u.Path, "/") {
		fmt.Fprintf(&b, "  <base href=\"%s/\" />\n", html.EscapeString(u.EscapedPath()))
	}
	if css != "" {
		href := css
		if !strings.HasPrefix(css, "/") && !strings.Contains(css, "://") {
			href = strings.Repeat("../", strings.Count(q.name, "/")) + css
		}
		fmt.Fprintf(&b, "  <link rel=\"stylesheet\" type=\"text/css\" href=\"%s\" />\n", html.EscapeString(href))
	}
	b.WriteString(" </head>\n <body>\n  <h1 id=\"title\">" + title + "</h1>\n  <table id=\"listing\">\n")
	b.WriteString("   <tr id=\"heading\"><th class=\"colname\">Name</th><th class=\"colsize\">Size</th><th class=\"coldate\">Date</th></tr>\n")
	if q.name != "" {
		b.WriteString("   <tr id=\"parent\" class=\"item\"><td class=\"colname\"><a href=\"../\">../</a></td><td class=\"colsize\">&nbsp;</td><td class=\"coldate\">&nbsp;</td></tr>\n")
	}
	for _, e := range entries {
		if e.Subdir != "" {
			rel := strings.TrimPrefix(e.Subdir, q.name)
			fmt.Fprintf(&b, "   <tr class=\"item subdir\"><td class=\"colname\"><a href=\"%s\">%s</a></td><td class=\"colsize\">&nbsp;</td><td class=\"coldate\">&nbsp;</td></tr>\n",
				html.EscapeString(escapePath(rel)), html.EscapeString(rel))
			continue
		}
		o := e.Object
		rel := strings.TrimPrefix(o.Name, q.name)
		fmt.Fprintf(&b, "   <tr class=\"item\"><td class=\"colname\"><a href=\"%s\">%s</a></td><td class=\"colsize\">%d</td><td class=\"coldate\">%s</td></tr>\n",
			html.EscapeString(escapePath(rel)), html.EscapeString(rel), o.Size, o.Modified.UTC().Format("2006-01-02 15:04:05"))
	}
	b.WriteString("  </table>\n </body>\n</html>\n")
	q.w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	q.w.Header().Set("Content-Length", fmt.Sprint(b.Len()))
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method == http.MethodGet {
		q.w.Write([]byte(b.String()))
	}
}
