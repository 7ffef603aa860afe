package identity

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

// TestOAuthSignatureRFC5849 checks the signature base string and the
// HMAC-SHA1 signature against RFC 5849's own example (section 1.2).
func TestOAuthSignatureRFC5849(t *testing.T) {
	r := httptest.NewRequest("GET", "http://photos.example.net/photos?file=vacation.jpg&size=original", nil)
	r.Header.Set("Authorization", `OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_token="nnch734d00sl2jdk", oauth_signature_method="HMAC-SHA1", oauth_timestamp="1191242096", oauth_nonce="kllo9940pd9333jh", oauth_version="1.0", oauth_signature="tR3%2BTy81lMeYAr%2FFid0kMTYa%2FWM%3D"`)
	o, err := parseOAuth(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
	if o.base != want {
		t.Fatalf("base string\n%s\nwant\n%s", o.base, want)
	}
	at := time.Unix(1191242096, 0)
	if err := o.verify("kd94hf93k423kf44", "pfkkdhi9sl3r4s00", at); err != nil {
		t.Fatalf("the RFC's signature: %v", err)
	}
	if err := o.verify("kd94hf93k423kf44", "another", at); err == nil {
		t.Fatal("a wrong token secret verified")
	}
	if err := o.verify("kd94hf93k423kf44", "pfkkdhi9sl3r4s00", at.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("a stale request: %v", err)
	}
	// PLAINTEXT: the signature is the two secrets (RFC 5849 3.4.4).
	o.method, o.signature = "PLAINTEXT", "kd94hf93k423kf44&pfkkdhi9sl3r4s00"
	if err := o.verify("kd94hf93k423kf44", "pfkkdhi9sl3r4s00", at); err != nil {
		t.Fatalf("PLAINTEXT: %v", err)
	}
	if err := o.verify("kd94hf93k423kf44", "other", at); err == nil {
		t.Fatal("PLAINTEXT with a wrong token secret verified")
	}
	o.method = "RSA-SHA1"
	if err := o.verify("kd94hf93k423kf44", "pfkkdhi9sl3r4s00", at); err == nil {
		t.Fatal("RSA-SHA1 was taken without a key")
	}
}

// oauthCall makes an OAuth-signed request as an OAuth client does and
// returns the status and the body.
func (f *fixture) oauthCall(method, path, consumer, cs, token, ts, verifier string, hdr map[string]string, body string) (int, string) {
	code, out, _ := f.oauthDo(method, path, consumer, cs, token, ts, verifier, hdr, body)
	return code, out
}

func (f *fixture) oauthDo(method, path, consumer, cs, token, ts, verifier string, hdr map[string]string, body string) (int, string, http.Header) {
	f.t.Helper()
	u := f.srv.URL + "/identity/v3" + path
	params := map[string]string{"oauth_consumer_key": consumer, "oauth_signature_method": "HMAC-SHA1", "oauth_version": "1.0",
		"oauth_timestamp": strconv.FormatInt(f.now.Unix(), 10), "oauth_nonce": "n" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	if token != "" {
		params["oauth_token"] = token
	}
	if verifier != "" {
		params["oauth_verifier"] = verifier
	}
	if token == "" && strings.HasSuffix(path, "request_token") {
		params["oauth_callback"] = "oob"
	}
	header := func(sig string) string {
		var parts []string
		for k, v := range params {
			parts = append(parts, fmt.Sprintf(`%s="%s"`, k, oauthEscape(v)))
		}
		if sig != "" {
			parts = append(parts, `oauth_signature="`+oauthEscape(sig)+`"`)
		}
		return "OAuth " + strings.Join(parts, ", ")
	}
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// The base string as the server will see the request.
	probe := httptest.NewRequest(method, u, nil)
	probe.Header.Set("Authorization", header(""))
	o, err := parseOAuth(probe)
	if err != nil {
		f.t.Fatal(err)
	}
	mac := hmac.New(sha1.New, []byte(oauthEscape(cs)+"&"+oauthEscape(ts)))
	mac.Write([]byte(o.base))
	req.Header.Set("Authorization", header(base64.StdEncoding.EncodeToString(mac.Sum(nil))))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw), res.Header
}

func formOf(t *testing.T, s string) (id, secret string) {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil || v.Get("oauth_token") == "" || v.Get("oauth_token_secret") == "" || v.Get("oauth_expires_at") == "" {
		t.Fatalf("OAuth answer %q: %v", s, err)
	}
	return v.Get("oauth_token"), v.Get("oauth_token_secret")
}

// TestOAuth1Flow: a consumer gets a request token for a project, the
// user authorizes it with one of its roles, the consumer trades it for
// an access token and authenticates with it: a token on the project with
// the authorized role only, that cannot be rescoped or delegate further,
// and that dies with its access token. Each step refuses a bad
// signature, and secrets are never shown again nor stored in clear.
func TestOAuth1Flow(t *testing.T) {
	f, _ := sealedFixture(t)
	pid, uid, utok := f.tenant("oproj", "olive", "member")
	f.call("PUT", "/projects/"+pid+"/users/"+uid+"/roles/"+f.roleID("reader"), f.admin, nil)
	code, _, body := f.call("POST", "/OS-OAUTH1/consumers", f.admin, map[string]any{"consumer": map[string]any{"description": "ci"}})
	if code != 201 {
		t.Fatalf("consumer create: %d %v", code, body)
	}
	cons := body["consumer"].(map[string]any)
	ck, cs := cons["id"].(string), cons["secret"].(string)
	if code, _, body := f.call("GET", "/OS-OAUTH1/consumers/"+ck, f.admin, nil); code != 200 || body["consumer"].(map[string]any)["secret"] != nil {
		t.Fatalf("consumer show: %d %v", code, body)
	}
	if code, _, _ := f.call("GET", "/OS-OAUTH1/consumers", utok, nil); code != 403 {
		t.Fatalf("a member lists consumers: %d", code)
	}
	if code, _, body := f.call("PATCH", "/OS-OAUTH1/consumers/"+ck, f.admin, map[string]any{"consumer": map[string]any{"secret": "x"}}); code != 400 {
		t.Fatalf("consumer secret update: %d %v", code, body)
	}

	proj := map[string]string{"Requested-Project-Id": pid}
	if code, _ := f.oauthCall("POST", "/OS-OAUTH1/request_token", ck, "wrong", "", "", "", proj, ""); code != 401 {
		t.Fatalf("request token with a bad signature: %d", code)
	}
	code, out := f.oauthCall("POST", "/OS-OAUTH1/request_token", ck, cs, "", "", "", proj, "")
	if code != 201 {
		t.Fatalf("request token: %d %s", code, out)
	}
	rk, rs := formOf(t, out)
	// Before it is authorized, it cannot be traded.
	if code, _ := f.oauthCall("POST", "/OS-OAUTH1/access_token", ck, cs, rk, rs, "nope", nil, ""); code != 401 {
		t.Fatalf("access token before authorization: %d", code)
	}
	// The user may delegate only roles it holds there.
	if code, _, body := f.call("PUT", "/OS-OAUTH1/authorize/"+rk, utok, map[string]any{"roles": []any{map[string]any{"name": "admin"}}}); code < 400 {
		t.Fatalf("authorize with a role not held: %d %v", code, body)
	}
	code, _, body = f.call("PUT", "/OS-OAUTH1/authorize/"+rk, utok, map[string]any{"roles": []any{map[string]any{"name": "reader"}}})
	if code != 200 {
		t.Fatalf("authorize: %d %v", code, body)
	}
	verifier := body["token"].(map[string]any)["oauth_verifier"].(string)
	if code, _, _ := f.call("PUT", "/OS-OAUTH1/authorize/"+rk, utok, map[string]any{"roles": []any{map[string]any{"name": "reader"}}}); code != 401 {
		t.Fatalf("authorize twice: %d", code)
	}
	if code, _ := f.oauthCall("POST", "/OS-OAUTH1/access_token", ck, cs, rk, rs, "wrongver", nil, ""); code != 401 {
		t.Fatalf("access token with a wrong verifier: %d", code)
	}
	code, out = f.oauthCall("POST", "/OS-OAUTH1/access_token", ck, cs, rk, rs, verifier, nil, "")
	if code != 201 {
		t.Fatalf("access token: %d %s", code, out)
	}
	ak, as := formOf(t, out)
	if code, _ := f.oauthCall("POST", "/OS-OAUTH1/access_token", ck, cs, rk, rs, verifier, nil, ""); code != 401 {
		t.Fatalf("the request token traded twice: %d", code)
	}

	auth := `{"auth":{"identity":{"methods":["oauth1"],"oauth1":{}}}}`
	if code, _ := f.oauthCall("POST", "/auth/tokens", ck, cs, ak, "wrong", "", nil, auth); code != 401 {
		t.Fatalf("oauth1 auth with a bad signature: %d", code)
	}
	code, out = f.oauthCall("POST", "/auth/tokens", ck, cs, ak, as, "", nil, auth)
	if code != 201 || !strings.Contains(out, `"OS-OAUTH1":{"access_token_id":"`+ak+`","consumer_id":"`+ck+`"}`) || !strings.Contains(out, `"name":"reader"`) || strings.Contains(out, `"name":"member"`) {
		t.Fatalf("oauth1 auth: %d %s", code, out)
	}
	otok := f.oauthToken(ck, cs, ak, as)
	if code, _, body := f.call("GET", "/auth/tokens", f.admin, nil, "X-Subject-Token", otok); code != 200 || body["token"].(map[string]any)["project"].(map[string]any)["id"] != pid {
		t.Fatalf("validate the OAuth token: %d %v", code, body)
	}
	// It works as the user, on the project, with the delegated role.
	if code, _, body := f.call("GET", "/users/"+uid, otok, nil); code != 200 {
		t.Fatalf("the OAuth token reads its user: %d %v", code, body)
	}
	// Not a way to more tokens or to delegation.
	tokAuth := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": otok}}}}
	if code, _, _ := f.call("POST", "/auth/tokens", "", tokAuth); code != 403 {
		t.Fatalf("a token from an OAuth token: %d", code)
	}
	if code, _, _ := f.call("POST", "/users/"+uid+"/application_credentials", otok, map[string]any{"application_credential": map[string]any{"name": "x"}}); code != 403 {
		t.Fatalf("an application credential from an OAuth token: %d", code)
	}

	// The user sees its access token and its roles; another user does not.
	if code, _, body := f.call("GET", "/users/"+uid+"/OS-OAUTH1/access_tokens", utok, nil); code != 200 || len(body["access_tokens"].([]any)) != 1 {
		t.Fatalf("list access tokens: %d %v", code, body)
	}
	if code, _, body := f.call("GET", "/users/"+uid+"/OS-OAUTH1/access_tokens/"+ak+"/roles", utok, nil); code != 200 || len(body["roles"].([]any)) != 1 {
		t.Fatalf("access token roles: %d %v", code, body)
	}
	_, _, otherTok := f.tenant("other", "oscar", "member")
	if code, _, _ := f.call("GET", "/users/"+uid+"/OS-OAUTH1/access_tokens", otherTok, nil); code != 403 {
		t.Fatalf("another user lists them: %d", code)
	}
	// Secrets are sealed in the state.
	snapBytes, _, err := store.SnapshotRoundTrip(f.local.State, Schema())
	if err != nil {
		t.Fatal(err)
	}
	snap := string(snapBytes)
	for _, secret := range []string{cs, rs, as, verifier} {
		if strings.Contains(snap, secret) {
			t.Fatalf("a secret is in the state in clear")
		}
	}
	// Deleting the access token voids the token from it.
	if code, _, _ := f.call("DELETE", "/users/"+uid+"/OS-OAUTH1/access_tokens/"+ak, utok, nil); code != 204 {
		t.Fatalf("delete access token: %d", code)
	}
	if code, _, _ := f.call("GET", "/auth/tokens", f.admin, nil, "X-Subject-Token", otok); code != 404 {
		t.Fatalf("a token from a deleted access token: %d", code)
	}
	// A consumer's deletion takes its tokens.
	code, out = f.oauthCall("POST", "/OS-OAUTH1/request_token", ck, cs, "", "", "", proj, "")
	rk2, _ := formOf(t, out)
	if code, _, _ := f.call("DELETE", "/OS-OAUTH1/consumers/"+ck, f.admin, nil); code != 204 {
		t.Fatalf("delete consumer: %d", code)
	}
	if code, _, _ := f.call("PUT", "/OS-OAUTH1/authorize/"+rk2, utok, map[string]any{"roles": []any{map[string]any{"name": "reader"}}}); code != 404 {
		t.Fatalf("authorize a deleted consumer's request token: %d", code)
	}
}

// oauthToken authenticates with an access token and returns the token.
func (f *fixture) oauthToken(ck, cs, ak, as string) string {
	f.t.Helper()
	code, out, h := f.oauthDo("POST", "/auth/tokens", ck, cs, ak, as, "", nil, `{"auth":{"identity":{"methods":["oauth1"],"oauth1":{}}}}`)
	if code != 201 || h.Get("X-Subject-Token") == "" {
		f.t.Fatalf("oauth1 auth: %d %s", code, out)
	}
	return h.Get("X-Subject-Token")
}
