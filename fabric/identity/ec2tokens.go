package identity

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Keystone's EC2 and S3 token APIs: a service that received a request
// signed with an EC2 credential's secret (an S3 gateway, Swift's s3token
// middleware, an EC2 API) asks Keystone whether the signature is right,
// and gets a token for the credential's user on its project if it is.
//
//   - POST /v3/s3tokens: {"credentials": {"access", "signature", "token"}},
//     token being the base64 of the string the client signed: AWS
//     signature v4 (hex HMAC-SHA256 with the key derived from the string's
//     own scope line) or v2 (base64 HMAC-SHA1).
//   - POST /v3/ec2tokens: {"credentials" or "ec2Credentials": {"access",
//     "signature", "host", "verb", "path", "params", "headers",
//     "body_hash"}}: the request's parts, from which the string to sign is
//     rebuilt as keystoneclient's Ec2Signer does (signature version 2, or
//     4 from the Authorization header or X-Amz-* query parameters), and
//     its timestamp must be within ec2AuthTTL of now.
//
// Both answer 200 with the token in X-Subject-Token and its body, 401
// "Invalid EC2 signature." for a wrong signature and the usual 401 for an
// unknown access key, a disabled user or project, or no role on it.
// Neither needs a token: the signature is the authentication.

// ec2AuthTTL is how far an EC2 request's timestamp may be from now
// (Keystone's [credential] auth_ttl, 15 minutes).
const ec2AuthTTL = 15 * time.Minute

var errBadEC2Signature = &api.Error{Status: http.StatusUnauthorized, Msg: "Invalid EC2 signature."}

type ec2TokenRequest struct {
	Credentials    *ec2Creds `json:"credentials"`
	EC2Credentials *ec2Creds `json:"ec2Credentials"`
}

type ec2Creds struct {
	Access    string            `json:"access"`
	Signature string            `json:"signature"`
	Token     string            `json:"token"` // s3tokens: base64 string to sign
	Host      string            `json:"host"`
	Verb      string            `json:"verb"`
	Path      string            `json:"path"`
	Params    map[string]string `json:"params"`
	Headers   map[string]string `json:"headers"`
	BodyHash  string            `json:"body_hash"`
}

func (s *Service) readEC2Request(r *http.Request) (*ec2Creds, error) {
	var req ec2TokenRequest
	if err := api.DecodeLoose(r, &req); err != nil {
		return nil, err
	}
	c := req.Credentials
	if c == nil {
		c = req.EC2Credentials
	}
	switch {
	case c == nil:
		return nil, api.BadField("credentials", "'credentials' is a required property")
	case c.Access == "":
		return nil, api.BadField("credentials.access", "'access' is a required property")
	case c.Signature == "":
		return nil, api.BadField("credentials.signature", "'signature' is a required property")
	}
	return c, nil
}

// postS3Token is POST /v3/s3tokens.
func (s *Service) postS3Token(w http.ResponseWriter, r *http.Request) error {
	c, err := s.readEC2Request(r)
	if err != nil {
		return err
	}
	if c.Token == "" {
		return api.BadField("credentials.token", "'token' is a required property")
	}
	toSign, err := decodeBase64(c.Token)
	if err != nil {
		return api.BadField("credentials.token", "not base64")
	}
	return s.ec2Token(w, r, c.Access, func(secret string) bool {
		want, ok := s3Signature(toSign, secret)
		return ok && hmac.Equal([]byte(want), []byte(c.Signature))
	})
}

// postEC2Token is POST /v3/ec2tokens.
func (s *Service) postEC2Token(w http.ResponseWriter, r *http.Request) error {
	c, err := s.readEC2Request(r)
	if err != nil {
		return err
	}
	if err := checkEC2Timestamp(c, s.cfg.Now()); err != nil {
		return err
	}
	return s.ec2Token(w, r, c.Access, func(secret string) bool {
		// As Keystone: some clients sign the host without its port.
		hosts := []string{c.Host}
		if h, _, ok := strings.Cut(c.Host, ":"); ok {
			hosts = append(hosts, h)
		}
		for _, h := range hosts {
			cc := *c
			cc.Host = h
			if want, ok := ec2Signature(&cc, secret); ok && hmac.Equal([]byte(want), []byte(c.Signature)) {
				return true
			}
		}
		return false
	})
}

// ec2Token answers a token for the EC2 credential access if signed says
// the request was signed with its secret.
func (s *Service) ec2Token(w http.ResponseWriter, r *http.Request, access string, signed func(secret string) bool) error {
	// A key made through another node a moment ago, or a role granted
	// there on its project, is looked for again in state caught up with
	// the leader (ec2Again). A bad signature is no reason to: it is
	// answered from local state.
	var tx *memdb.Txn
	var cred *Credential
	err := s.ec2Again(r.Context(), func() error {
		var err error
		if tx, err = s.local(r.Context()); err != nil {
			return err
		}
		var secret string
		if cred, secret, err = s.ec2Credential(tx, access); err != nil {
			return err
		}
		if !signed(secret) {
			return errBadEC2Signature
		}
		if err := ec2CredentialUsable(tx, cred); err != nil {
			return fmt.Errorf("%w: %w", store.ErrForbidden, err)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrForbidden) {
		return errUnauthorized
	}
	if err != nil {
		return err
	}
	tok, err := s.issue(tx, claims{User: cred.UserID, Project: cred.ProjectID, Methods: []string{"ec2credential"}}, time.Time{})
	if err != nil {
		return err
	}
	p, cl, err := s.validate(tx, tok)
	if err != nil {
		return errUnauthorized
	}
	w.Header().Set("X-Subject-Token", tok)
	api.JSON(w, http.StatusOK, map[string]any{"token": s.tokenBody(r, tx, p, cl, true)})
	return nil
}

// ec2CredentialUsable refuses a credential whose user's domain or
// project is gone or disabled, or whose user holds no role on the
// project: the token would be refused anyway, with less said.
func ec2CredentialUsable(tx *memdb.Txn, c *Credential) error {
	u := store.Get[User](tx, tUsers, c.UserID)
	if d := store.Get[Domain](tx, tDomains, u.DomainID); d == nil || !d.Enabled {
		return errUnauthorized
	}
	p := store.Get[Project](tx, tProjects, c.ProjectID)
	if p == nil || !p.Enabled {
		return errUnauthorized
	}
	if len(effectiveRoles(tx, c.UserID, "project", p.ID)) == 0 {
		return errUnauthorized
	}
	return nil
}

// s3Signature is the signature of an S3 string to sign, as Keystone's
// s3tokens computes it: v4 when the string starts with AWS4 (its scope
// line gives the date, region and service; only s3, iam and sts), v2
// otherwise. ok is false for a v4 string that is not well formed.
func s3Signature(toSign []byte, secret string) (string, bool) {
	if !strings.HasPrefix(string(toSign), "AWS4") {
		m := hmac.New(sha1.New, []byte(secret))
		m.Write(toSign)
		return base64.StdEncoding.EncodeToString(m.Sum(nil)), true
	}
	parts := strings.Split(string(toSign), "\n")
	if len(parts) != 4 || parts[0] != "AWS4-HMAC-SHA256" {
		return "", false
	}
	scope := strings.Split(parts[2], "/")
	if len(scope) != 4 || scope[3] != "aws4_request" {
		return "", false
	}
	switch scope[2] {
	case "s3", "iam", "sts":
	default:
		return "", false
	}
	key := v4Key(secret, scope[0], scope[1], scope[2])
	return hex.EncodeToString(hmacSHA256(key, toSign)), true
}

// ec2Signature rebuilds the signature of an EC2 request from its parts,
// as keystoneclient's Ec2Signer: version 2 (HMAC-SHA256, base64) or 4.
func ec2Signature(c *ec2Creds, secret string) (string, bool) {
	if v, ok := c.Params["SignatureVersion"]; ok {
		if v != "2" {
			return "", false
		}
		params := maps.Clone(c.Params)
		delete(params, "Signature")
		params["SignatureMethod"] = "HmacSHA256"
		toSign := c.Verb + "\n" + c.Host + "\n" + c.Path + "\n" + canonicalEC2Query(params)
		return base64.StdEncoding.EncodeToString(hmacSHA256([]byte(secret), []byte(toSign))), true
	}
	authParam := func(name string) string {
		if v, ok := c.Params[name]; ok {
			return v
		}
		_, after, _ := strings.Cut(headerValue(c.Headers, "Authorization"), name+"=")
		v, _, _ := strings.Cut(after, ",")
		return strings.TrimSpace(v)
	}
	if !strings.HasPrefix(headerValue(c.Headers, "Authorization"), "AWS4-HMAC-SHA256") && c.Params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256" {
		return "", false
	}
	lower := map[string]string{}
	for k, v := range c.Headers {
		lower[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	signedHeaders := authParam("SignedHeaders")
	var hs []string
	for _, h := range strings.Split(signedHeaders, ";") {
		if v, ok := lower[h]; ok {
			hs = append(hs, h+":"+v)
		}
	}
	query := ""
	if !strings.EqualFold(c.Verb, "POST") {
		params := maps.Clone(c.Params)
		delete(params, "X-Amz-Signature")
		query = canonicalEC2Query(params)
	}
	canonical := strings.Join([]string{strings.ToUpper(c.Verb), c.Path, query, strings.Join(hs, "\n") + "\n", signedHeaders, c.BodyHash}, "\n")
	cred := strings.Split(authParam("Credential"), "/")
	if len(cred) != 5 {
		return "", false
	}
	date := c.Params["X-Amz-Date"]
	if date == "" {
		date = headerValue(c.Headers, "X-Amz-Date")
	}
	if !strings.HasPrefix(date, cred[1]) {
		return "", false
	}
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", date, strings.Join(cred[1:], "/"), hex.EncodeToString(sum[:])}, "\n")
	return hex.EncodeToString(hmacSHA256(v4Key(secret, cred[1], cred[2], cred[3]), []byte(toSign))), true
}

// checkEC2Timestamp refuses a request signed too long ago or for too far
// ahead (Keystone's auth_ttl), or expired by its own Expires parameter.
func checkEC2Timestamp(c *ec2Creds, now time.Time) error {
	expired := &api.Error{Status: http.StatusUnauthorized, Msg: "Credential has expired."}
	var at time.Time
	if v := c.Params["Timestamp"]; v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = time.Parse("2006-01-02T15:04:05", v); err != nil {
				return api.BadField("credentials.params.Timestamp", "not a timestamp")
			}
		}
		at = t
	} else if v := c.Params["X-Amz-Date"] + headerValue(c.Headers, "X-Amz-Date"); v != "" {
		t, err := time.Parse("20060102T150405Z", v)
		if err != nil {
			return api.BadField("credentials.headers.X-Amz-Date", "not an AWS timestamp (YYYYMMDDTHHMMSSZ)")
		}
		at = t
	}
	if v := c.Params["Expires"]; v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return api.BadField("credentials.params.Expires", "not a timestamp")
		}
		if now.After(t) {
			return expired
		}
	}
	if !at.IsZero() && (now.Sub(at) > ec2AuthTTL || at.Sub(now) > ec2AuthTTL) {
		return expired
	}
	return nil
}

// canonicalEC2Query is the sorted query string EC2 signatures cover:
// keys and values percent-encoded but for A-Z a-z 0-9 - _ . ~.
func canonicalEC2Query(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, awsEscape(k)+"="+awsEscape(params[k]))
	}
	return strings.Join(pairs, "&")
}

// awsEscape is Python's urllib.parse.quote(s, safe='-_~'), which
// Keystone signs with: url.QueryEscape but for a space, %20 there.
func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func v4Key(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// decodeBase64 reads standard or URL-safe base64, padded or not, as
// Python's urlsafe_b64decode accepts what clients send.
func decodeBase64(s string) ([]byte, error) {
	s = strings.NewReplacer("-", "+", "_", "/").Replace(strings.TrimSpace(s))
	s = strings.TrimRight(s, "=")
	return base64.RawStdEncoding.DecodeString(s)
}
