package identity

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// A token is "rs1." + base64url(claims JSON) + "." + base64url(HMAC-SHA256).
// Any node verifies it with the signing keys in the replicated state; no
// Raft round trip. Roles are not in the token: they are looked up when it is
// validated, so removing a role takes effect at once.
type claims struct {
	Key      string   `json:"k"`
	User     string   `json:"u"`
	Project  string   `json:"p,omitempty"`
	Domain   string   `json:"d,omitempty"` // domain scope
	System   bool     `json:"s,omitempty"` // system scope (the one system, "all")
	Methods  []string `json:"m"`
	IssuedAt int64    `json:"i"` // unix microseconds
	Expires  int64    `json:"e"` // unix microseconds
	Audit    []string `json:"a"`
	// AppCred is the application credential the token was issued from:
	// its roles bound the token's, and the token dies with it.
	AppCred string `json:"ac,omitempty"`
	// Trust is the trust the token is scoped by (User is its trustee):
	// its roles bound the token's, and the token dies with it.
	Trust string `json:"tr,omitempty"`
	// OAuth is the OS-OAUTH1 access token the token was issued from: its
	// roles bound the token's, and the token dies with it.
	OAuth string `json:"oa,omitempty"`
}

const tokenPrefix = "rs1."

var errBadToken = errors.New("token is not valid")

func (c claims) issued() time.Time  { return time.UnixMicro(c.IssuedAt).UTC() }
func (c claims) expires() time.Time { return time.UnixMicro(c.Expires).UTC() }

func sign(c claims, key *SigningKey) (string, error) {
	c.Key = key.ID
	raw, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	mac := hmac.New(sha256.New, key.Secret)
	mac.Write([]byte(body))
	return tokenPrefix + body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// parse checks the signature and decodes the claims; expiry and revocation
// are the caller's business.
func parse(tx *memdb.Txn, tok string) (claims, error) {
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		return claims{}, errBadToken
	}
	body, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return claims{}, errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return claims{}, errBadToken
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return claims{}, errBadToken
	}
	key := store.Get[SigningKey](tx, tKeys, c.Key)
	if key == nil {
		return claims{}, errBadToken
	}
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return claims{}, errBadToken
	}
	mac := hmac.New(sha256.New, key.Secret)
	mac.Write([]byte(body))
	if !hmac.Equal(mac.Sum(nil), want) {
		return claims{}, errBadToken
	}
	return c, nil
}

// newestKey returns the key new tokens are signed with.
func newestKey(tx *memdb.Txn) *SigningKey {
	var best *SigningKey
	for _, k := range store.All[SigningKey](tx, tKeys, "id") {
		if best == nil || k.CreatedAt.After(best.CreatedAt) || (k.CreatedAt.Equal(best.CreatedAt) && k.ID > best.ID) {
			best = k
		}
	}
	return best
}

// revoked reports whether a revocation covers the token.
func revoked(tx *memdb.Txn, c claims) bool {
	for _, a := range c.Audit {
		if raw, _ := tx.First(tRevocations, "id", "audit/"+a); raw != nil {
			return true
		}
	}
	// As Keystone's revocation events, revoking a user's tokens revokes
	// the tokens scoped by the trusts it gave too.
	users := []string{c.User}
	if c.Trust != "" {
		for _, t := range trustChain(tx, c.Trust) {
			users = append(users, t.TrustorID)
		}
	}
	issued := c.issued()
	for _, u := range users {
		for _, r := range store.All[Revocation](tx, tRevocations, "user", u) {
			if !issued.After(r.IssuedBefore) {
				return true
			}
		}
	}
	return false
}

func newKey(now time.Time) SigningKey {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	var id [8]byte
	rand.Read(id[:])
	return SigningKey{ID: base64.RawURLEncoding.EncodeToString(id[:]), Secret: secret[:], CreatedAt: now.UTC()}
}

func newAuditID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])[:22]
}
