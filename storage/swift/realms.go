package swift

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
)

// Realms are the container sync realms of the cluster, as Swift's
// container-sync-realms.conf declares them: each realm a set of clusters
// that agreed to sync with each other, with its key (and key2, a second
// key incoming requests may be signed with while keys rotate) and each
// cluster's Swift endpoint. Names are case-insensitive (kept upper-case,
// as Swift does). The keys are secrets: nothing here logs or shows them.
type Realms struct {
	realms map[string]*realm
	// current is the realm and cluster this cloud is (/info marks it).
	currentRealm, currentCluster string
}

type realm struct {
	key, key2 string
	clusters  map[string]string // upper-case name → endpoint URL
}

// ParseRealms reads a container-sync-realms.conf: [realm] sections with
// key, key2 and cluster_NAME = endpoint options ('#' and ';' start
// comments; [DEFAULT] holds only Swift's reload interval, ignored: the
// file is read at start). A realm without key is an error here, where
// Swift would only refuse every request naming it.
func ParseRealms(r io.Reader) (*Realms, error) {
	rs := &Realms{realms: map[string]*realm{}}
	var cur *realm
	var curName string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			name, ok := strings.CutSuffix(line[1:], "]")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				return nil, fmt.Errorf("line %d: a section header is [name]", n)
			}
			if strings.EqualFold(name, "DEFAULT") {
				cur, curName = nil, ""
				continue
			}
			curName = strings.ToUpper(name)
			if rs.realms[curName] != nil {
				return nil, fmt.Errorf("line %d: realm %s declared twice", n, name)
			}
			cur = &realm{clusters: map[string]string{}}
			rs.realms[curName] = cur
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if i := strings.IndexAny(line, "=:"); i >= 0 && line[i] == ':' {
			k, v, ok = line[:i], line[i+1:], true
		}
		if !ok {
			return nil, fmt.Errorf("line %d: want option = value", n)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if cur == nil {
			continue // [DEFAULT]: Swift's mtime_check_interval
		}
		switch {
		case k == "key":
			cur.key = v
		case k == "key2":
			cur.key2 = v
		case strings.HasPrefix(k, "cluster_") && len(k) > len("cluster_"):
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("line %d: %s of realm %s: want an http(s) URL of a Swift endpoint (https://host/v1/)", n, k, curName)
			}
			cur.clusters[strings.ToUpper(k[len("cluster_"):])] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for name, r := range rs.realms {
		if r.key == "" {
			return nil, fmt.Errorf("realm %s has no key", name)
		}
	}
	return rs, nil
}

// NewRealm is a set of one realm, for a cloud that declares its own.
func NewRealm(name, key string, clusters map[string]string) *Realms {
	r := &realm{key: key, clusters: map[string]string{}}
	for c, ep := range clusters {
		r.clusters[strings.ToUpper(c)] = ep
	}
	return &Realms{realms: map[string]*realm{strings.ToUpper(name): r}}
}

// SetCurrent names this cloud's realm and cluster ("//REALM/CLUSTER", as
// Swift's container_sync middleware takes it), which must be declared.
func (rs *Realms) SetCurrent(v string) error {
	parts := strings.Split(strings.Trim(v, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("%q: want //realm/cluster", v)
	}
	r, c := strings.ToUpper(parts[0]), strings.ToUpper(parts[1])
	if rs.realms[r] == nil || rs.realms[r].clusters[c] == "" {
		return fmt.Errorf("%q: no such realm and cluster declared", v)
	}
	rs.currentRealm, rs.currentCluster = r, c
	return nil
}

// Empty reports whether no realm is declared: container sync is then off.
func (rs *Realms) Empty() bool { return rs == nil || len(rs.realms) == 0 }

// Names lists the realms, sorted.
func (rs *Realms) Names() []string {
	var out []string
	for n := range rs.realms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// keys returns a realm's key and key2 ("" when the realm is unknown).
func (rs *Realms) keys(name string) (key, key2 string) {
	if rs == nil {
		return "", ""
	}
	if r := rs.realms[strings.ToUpper(name)]; r != nil {
		return r.key, r.key2
	}
	return "", ""
}

// info is /info's container_sync, as Swift's middleware registers it:
// each realm that has clusters, with its clusters (names only; the
// current one marked).
func (rs *Realms) info() map[string]any {
	realms := map[string]any{}
	for name, r := range rs.realms {
		if len(r.clusters) == 0 {
			continue
		}
		cs := map[string]any{}
		for c := range r.clusters {
			entry := map[string]any{}
			if name == rs.currentRealm && c == rs.currentCluster {
				entry["current"] = true
			}
			cs[c] = entry
		}
		realms[name] = map[string]any{"clusters": cs}
	}
	return map[string]any{"realms": realms}
}

// syncTarget is a validated X-Container-Sync-To.
type syncTarget struct {
	URL      string // endpoint/account/container
	Realm    string // upper-case
	RealmKey string
}

// errFullURL is Swift's answer to a full URL when its container_sync
// middleware does not allow them (allow_full_urls = false): this cloud
// syncs only through realms, whose requests are signed.
var errFullURL = errors.New("Full URLs are not allowed for X-Container-Sync-To values. Only realm values of the format //realm/cluster/account/container are allowed.")

// syncTo validates an X-Container-Sync-To value as Swift's
// validate_sync_to does (with full URLs refused): //realm/cluster/
// account/container naming a declared realm with a key and a cluster
// of it. An empty value (after trailing slashes) is no target.
func (rs *Realms) syncTo(value string) (syncTarget, error) {
	v := strings.TrimRight(value, "/")
	if v == "" {
		return syncTarget{}, nil
	}
	if !strings.HasPrefix(v, "//") {
		return syncTarget{}, errFullURL
	}
	parts := strings.Split(v[2:], "/")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return syncTarget{}, fmt.Errorf("Invalid X-Container-Sync-To format %s: want //realm/cluster/account/container", pyRepr(value))
	}
	realmName, cluster, account, container := parts[0], parts[1], parts[2], parts[3]
	key, _ := rs.keys(realmName)
	if key == "" {
		return syncTarget{}, fmt.Errorf("No realm key for %s: the realm is not declared in this cloud's container sync realms", pyRepr(realmName))
	}
	ep := rs.realms[strings.ToUpper(realmName)].clusters[strings.ToUpper(cluster)]
	if ep == "" {
		return syncTarget{}, fmt.Errorf("No cluster endpoint for %s %s: realm %s has no such cluster", pyRepr(realmName), pyRepr(cluster), strings.ToUpper(realmName))
	}
	return syncTarget{URL: strings.TrimRight(ep, "/") + "/" + account + "/" + container, Realm: strings.ToUpper(realmName), RealmKey: key}, nil
}

// pyRepr quotes s as Python's %r does a plain string, as Swift's messages
// show values.
func pyRepr(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// syncSig is Swift's container_sync_realms get_sig: the hex HMAC-SHA1,
// under the realm's key, of the method, the URL-encoded path, the
// X-Timestamp, the nonce and the container's sync key, one per line.
func syncSig(method, path, timestamp, nonce, realmKey, userKey string) string {
	m := hmac.New(sha1.New, []byte(realmKey))
	io.WriteString(m, method+"\n"+path+"\n"+timestamp+"\n"+nonce+"\n"+userKey)
	return hex.EncodeToString(m.Sum(nil))
}

// pyQuote is Python's urllib.parse.quote(s, safe='/'), which Swift uses
// both to build the path a sync request signs (utils.quote of the object
// name) and to give the path it verifies (swob's Request.path): every
// byte but letters, digits, "_.-~" and "/" is %XX.
func pyQuote(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
