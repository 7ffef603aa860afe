package network

import (
	"fmt"
	"strings"
	"testing"
)

// pageLinks are a list body's <key>_links by rel, each as a path under
// /network.
func pageLinks(t *testing.T, body map[string]any, key string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ls, _ := body[key+"_links"].([]any)
	for _, l := range ls {
		m := l.(map[string]any)
		href := m["href"].(string)
		i := strings.Index(href, "/network/")
		if i < 0 {
			t.Fatalf("link %s is not under /network/", href)
		}
		out[m["rel"].(string)] = href[i+len("/network"):]
	}
	return out
}

// TestPagingLinksWalkBothWays: as in Neutron, a full page has a next
// link even when it is the last, the empty page after it has none but a
// previous link to the last page, and previous links walk back to the
// first, so a client following links sees every row once each way.
func TestPagingLinksWalkBothWays(t *testing.T) {
	f := newFixture(t)
	for _, n := range []string{"c", "a", "b"} {
		f.network(alice, n)
	}
	names := func(body map[string]any) string {
		var out []string
		for _, n := range body["networks"].([]any) {
			out = append(out, n.(map[string]any)["name"].(string))
		}
		return strings.Join(out, ",")
	}
	path := "/v2.0/networks?limit=1&sort_key=name&sort_dir=asc"
	var fwd []string
	for range 3 {
		body := f.expect("GET", path, alice, nil, 200, "")
		fwd = append(fwd, names(body))
		next, ok := pageLinks(t, body, "networks")["next"]
		if !ok {
			t.Fatalf("page %s has no next link: %v", names(body), body["networks_links"])
		}
		path = next
	}
	if got := strings.Join(fwd, " "); got != "a b c" {
		t.Fatalf("forward walk: %s", got)
	}
	end := f.expect("GET", path, alice, nil, 200, "")
	links := pageLinks(t, end, "networks")
	if names(end) != "" || links["next"] != "" || links["previous"] == "" {
		t.Fatalf("page after the last: %v, links %v", end["networks"], links)
	}
	path = links["previous"]
	var back []string
	for i := range 3 {
		body := f.expect("GET", path, alice, nil, 200, "")
		back = append(back, names(body))
		l := pageLinks(t, body, "networks")
		if l["next"] == "" {
			t.Errorf("reverse page %d (%s) has no next link", i, names(body))
		}
		path = l["previous"]
	}
	if got := strings.Join(back, " "); got != "c b a" {
		t.Fatalf("backward walk: %s", got)
	}
	// Before the first: empty, and a reverse page that came short has no
	// previous link.
	start := f.expect("GET", path, alice, nil, 200, "")
	if l := pageLinks(t, start, "networks"); names(start) != "" || l["previous"] != "" {
		t.Fatalf("page before the first: %v, links %v", start["networks"], l)
	}
	// Without limit there are no links.
	if body := f.expect("GET", "/v2.0/networks", alice, nil, 200, ""); body["networks_links"] != nil {
		t.Fatalf("unpaged list has links: %v", fmt.Sprint(body["networks_links"]))
	}
}
