package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

// trustAuth is a password login of user scoped by a trust.
func trustAuth(user, password, trust string) map[string]any {
	a := passwordAuth(user, password, "")
	a["auth"].(map[string]any)["scope"] = map[string]any{"OS-TRUST:trust": map[string]any{"id": trust}}
	return a
}

// trustScene is a trustor holding member and two more roles on its
// project, a trustee in another project, and a bystander.
type trustScene struct {
	f                         *fixture
	project, trustor, trustee string
	torTok, teeTok, otherTok  string
	delegated, kept           string // role ids: one to delegate, one not
	otherID                   string
}

func newTrustScene(t *testing.T) *trustScene {
	f := newFixture(t)
	sc := &trustScene{f: f}
	sc.project, sc.trustor, _ = f.tenant("heat-stack", "tor", "member")
	_, sc.trustee, sc.teeTok = f.tenant("heat-svc", "tee", "member")
	_, sc.otherID, sc.otherTok = f.tenant("else", "eve", "member")
	sc.delegated = f.mk("/roles", "role", map[string]any{"name": "delegated"})
	sc.kept = f.mk("/roles", "role", map[string]any{"name": "kept"})
	for _, r := range []string{sc.delegated, sc.kept} {
		if code, _, _ := f.call("PUT", "/projects/"+sc.project+"/users/"+sc.trustor+"/roles/"+r, f.admin, nil); code != 204 {
			t.Fatalf("grant: %d", code)
		}
	}
	sc.torTok = f.login("tor", "tor-pw", "heat-stack")
	return sc
}

// mkTrust creates a trust as the trustor with fields added to the
// defaults (delegating role "delegated" to the trustee, impersonating).
func (sc *trustScene) mkTrust(fields map[string]any) map[string]any {
	sc.f.t.Helper()
	code, _, body := sc.f.call("POST", "/OS-TRUST/trusts", sc.torTok, map[string]any{"trust": sc.trustFields(fields)})
	if code != 201 {
		sc.f.t.Fatalf("create trust: %d %v", code, body)
	}
	return body["trust"].(map[string]any)
}

func (sc *trustScene) trustFields(fields map[string]any) map[string]any {
	in := map[string]any{"trustor_user_id": sc.trustor, "trustee_user_id": sc.trustee, "project_id": sc.project,
		"impersonation": true, "roles": []any{map[string]any{"name": "delegated"}}}
	for k, v := range fields {
		if v == nil {
			delete(in, k)
		} else {
			in[k] = v
		}
	}
	return in
}

// trustToken logs the trustee in by the trust.
func (sc *trustScene) trustToken(trust string) (int, string, map[string]any) {
	sc.f.t.Helper()
	code, h, body := sc.f.call("POST", "/auth/tokens", "", trustAuth("tee", "tee-pw", trust))
	return code, h.Get("X-Subject-Token"), body
}

func TestTrustCreateShowListRoles(t *testing.T) {
	sc := newTrustScene(t)
	f := sc.f
	exp := "2026-11-24T13:00:00.000000Z"
	tr := sc.mkTrust(map[string]any{"expires_at": exp, "remaining_uses": 5})
	id := tr["id"].(string)
	if tr["trustor_user_id"] != sc.trustor || tr["trustee_user_id"] != sc.trustee || tr["project_id"] != sc.project ||
		tr["impersonation"] != true || tr["expires_at"] != exp || tr["remaining_uses"] != float64(5) ||
		tr["allow_redelegation"] != false || !strings.Contains(tr["links"].(map[string]any)["self"].(string), "/v3/OS-TRUST/trusts/"+id) {
		t.Fatalf("created trust: %v", tr)
	}
	if got := roleNamesOf(tr["roles"]); len(got) != 1 || got[0] != "delegated" {
		t.Fatalf("roles: %v", tr["roles"])
	}
	// Trustor, trustee and admin see it; anyone else is refused.
	for _, tok := range []string{sc.torTok, sc.teeTok, f.admin} {
		if code, _, body := f.call("GET", "/OS-TRUST/trusts/"+id, tok, nil); code != 200 || body["trust"].(map[string]any)["id"] != id {
			t.Fatalf("show: %d %v", code, body)
		}
	}
	if code, _, _ := f.call("GET", "/OS-TRUST/trusts/"+id, sc.otherTok, nil); code != 403 {
		t.Fatalf("show by a stranger: %d", code)
	}
	if code, _, _ := f.call("GET", "/OS-TRUST/trusts/nope", sc.torTok, nil); code != 404 {
		t.Fatalf("show a missing trust: %d", code)
	}
	// Its roles: the delegated one, not the one kept.
	code, _, body := f.call("GET", "/OS-TRUST/trusts/"+id+"/roles", sc.teeTok, nil)
	if code != 200 || len(body["roles"].([]any)) != 1 || body["roles"].([]any)[0].(map[string]any)["id"] != sc.delegated {
		t.Fatalf("trust roles: %d %v", code, body)
	}
	code, _, body = f.call("GET", "/OS-TRUST/trusts/"+id+"/roles/"+sc.delegated, sc.torTok, nil)
	if code != 200 || !strings.Contains(body["role"].(map[string]any)["links"].(map[string]any)["self"].(string), "/v3/roles/"+sc.delegated) {
		t.Fatalf("trust role: %d %v", code, body)
	}
	for _, m := range []string{"GET", "HEAD"} {
		if code, _, _ := f.call(m, "/OS-TRUST/trusts/"+id+"/roles/"+sc.kept, sc.torTok, nil); code != 404 {
			t.Fatalf("%s a role not delegated: %d", m, code)
		}
	}
	if code, _, _ := f.call("HEAD", "/OS-TRUST/trusts/"+id+"/roles/"+sc.delegated, sc.torTok, nil); code != 200 {
		t.Fatalf("HEAD a delegated role: %d", code)
	}

	// Listing: each user sees the trusts it is part of; an admin all.
	other := sc.f.mk("/projects", "project", map[string]any{"name": "p3"})
	f.call("PUT", "/projects/"+other+"/users/"+sc.otherID+"/roles/"+f.roleID("member"), f.admin, nil)
	eveTok := f.login("eve", "eve-pw", "p3")
	if code, _, body := f.call("POST", "/OS-TRUST/trusts", eveTok, map[string]any{"trust": map[string]any{
		"trustor_user_id": sc.otherID, "trustee_user_id": sc.trustee, "project_id": other, "impersonation": false, "roles": []any{map[string]any{"id": f.roleID("member")}}}}); code != 201 {
		t.Fatalf("second trust: %d %v", code, body)
	}
	count := func(tok, query string) int {
		t.Helper()
		code, _, body := f.call("GET", "/OS-TRUST/trusts"+query, tok, nil)
		if code != 200 {
			t.Fatalf("list %s: %d %v", query, code, body)
		}
		for _, v := range body["trusts"].([]any) {
			if _, ok := v.(map[string]any)["roles"]; ok {
				t.Fatalf("a listing holds roles: %v", v)
			}
		}
		return len(body["trusts"].([]any))
	}
	for _, c := range []struct {
		tok, query string
		want       int
	}{
		{sc.torTok, "", 1}, {sc.teeTok, "", 2}, {eveTok, "", 1}, {f.admin, "", 2}, {f.admin, "/", 2},
		{sc.torTok, "?trustor_user_id=" + sc.trustor, 1}, {sc.teeTok, "?trustee_user_id=" + sc.trustee, 2},
		{f.admin, "?trustor_user_id=" + sc.otherID, 1},
	} {
		if got := count(c.tok, c.query); got != c.want {
			t.Errorf("list %q: %d trusts, want %d", c.query, got, c.want)
		}
	}
	if code, _, _ := f.call("GET", "/OS-TRUST/trusts?trustor_user_id="+sc.trustor, eveTok, nil); code != 403 {
		t.Fatalf("listing another user's trusts: %d", code)
	}

	// Only the trustor (or an admin) deletes it.
	if code, _, _ := f.call("DELETE", "/OS-TRUST/trusts/"+id, sc.teeTok, nil); code != 403 {
		t.Fatalf("delete by the trustee: %d", code)
	}
	if code, _, _ := f.call("DELETE", "/OS-TRUST/trusts/"+id, sc.torTok, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := f.call("GET", "/OS-TRUST/trusts/"+id, sc.torTok, nil); code != 404 {
		t.Fatalf("show a deleted trust: %d", code)
	}
}

func TestTrustCreateRefusals(t *testing.T) {
	sc := newTrustScene(t)
	f := sc.f
	for _, c := range []struct {
		name   string
		tok    string
		fields map[string]any
		code   int
		field  string
	}{
		{"not the trustor", sc.teeTok, nil, 403, ""},
		{"no trustee", sc.torTok, map[string]any{"trustee_user_id": nil}, 400, "trustee_user_id"},
		{"no impersonation", sc.torTok, map[string]any{"impersonation": nil}, 400, "impersonation"},
		{"impersonation not a boolean", sc.torTok, map[string]any{"impersonation": "yes"}, 400, "impersonation"},
		{"unknown trustee", sc.torTok, map[string]any{"trustee_user_id": "ghost"}, 404, ""},
		{"unknown project", sc.torTok, map[string]any{"project_id": "ghost"}, 404, ""},
		{"unknown role", sc.torTok, map[string]any{"roles": []any{map[string]any{"name": "ghost"}}}, 404, ""},
		{"role not held", sc.torTok, map[string]any{"roles": []any{map[string]any{"name": "admin"}}}, 403, ""},
		{"project without roles", sc.torTok, map[string]any{"roles": []any{}}, 403, ""},
		{"bad expiry", sc.torTok, map[string]any{"expires_at": "bad.123Z"}, 400, "expires_at"},
		{"no uses", sc.torTok, map[string]any{"remaining_uses": 0}, 400, "remaining_uses"},
		{"fractional uses", sc.torTok, map[string]any{"remaining_uses": 1.5}, 400, "remaining_uses"},
		{"uses with redelegation", sc.torTok, map[string]any{"remaining_uses": 2, "allow_redelegation": true}, 400, "remaining_uses"},
		{"too deep a redelegation", sc.torTok, map[string]any{"allow_redelegation": true, "redelegation_count": 9}, 403, ""},
	} {
		code, _, body := f.call("POST", "/OS-TRUST/trusts", c.tok, map[string]any{"trust": sc.trustFields(c.fields)})
		msg, _ := body["error"].(map[string]any)["message"].(string)
		if code != c.code || !strings.Contains(msg, c.field) {
			t.Errorf("%s: %d %v, want %d naming %q", c.name, code, body, c.code, c.field)
		}
	}
	// A token from a restricted application credential makes no trust.
	id, secret := f.mkAppCred(sc.trustor, sc.torTok, map[string]any{"name": "ci"})
	_, h, _ := f.call("POST", "/auth/tokens", "", appCredAuthByID(id, secret))
	if code, _, _ := f.call("POST", "/OS-TRUST/trusts", h.Get("X-Subject-Token"), map[string]any{"trust": sc.trustFields(nil)}); code != 403 {
		t.Fatalf("trust from a restricted application credential: %d", code)
	}
	if n := len(store.All[Trust](f.local.Local(), tTrusts, "id")); n != 0 {
		t.Fatalf("refused requests left %d trusts", n)
	}
}

func TestTrustScopedToken(t *testing.T) {
	sc := newTrustScene(t)
	f := sc.f
	for _, impersonate := range []bool{true, false} {
		tr := sc.mkTrust(map[string]any{"impersonation": impersonate})
		id := tr["id"].(string)
		code, tok, body := sc.trustToken(id)
		if code != 201 {
			t.Fatalf("trust-scoped token: %d %v", code, body)
		}
		tb := body["token"].(map[string]any)
		ot := tb["OS-TRUST:trust"].(map[string]any)
		if ot["id"] != id || ot["impersonation"] != impersonate || ot["trustor_user"].(map[string]any)["id"] != sc.trustor || ot["trustee_user"].(map[string]any)["id"] != sc.trustee {
			t.Fatalf("OS-TRUST:trust: %v", ot)
		}
		wantUser := sc.trustee
		if impersonate {
			wantUser = sc.trustor
		}
		if tb["user"].(map[string]any)["id"] != wantUser || tb["project"].(map[string]any)["id"] != sc.project {
			t.Fatalf("impersonation=%v: user %v project %v", impersonate, tb["user"], tb["project"])
		}
		// The delegated role and what it implies, nothing the trustor kept.
		if got := strings.Join(roleNamesOf(tb["roles"]), ","); got != "delegated" {
			t.Fatalf("token roles %q", got)
		}
		p, err := f.svc.Validate(context.Background(), tok)
		if err != nil || p.UserID != wantUser || p.ProjectID != sc.project || p.HasRole("member") || p.HasRole("kept") {
			t.Fatalf("validate: %+v %v", p, err)
		}
		// GET /v3/auth/tokens shows the same.
		code, _, body = f.call("GET", "/auth/tokens", f.admin, nil, "X-Subject-Token", tok)
		if code != 200 || body["token"].(map[string]any)["OS-TRUST:trust"] == nil {
			t.Fatalf("validate through the API: %d %v", code, body)
		}

		// What a token scoped by a trust may not do.
		for _, c := range []struct {
			what, method, path string
			body               any
		}{
			{"make a trust", "POST", "/OS-TRUST/trusts", map[string]any{"trust": map[string]any{"trustor_user_id": sc.trustee, "trustee_user_id": sc.otherID, "project_id": sc.project, "impersonation": false, "roles": []any{map[string]any{"name": "delegated"}}}}},
			{"make an application credential", "POST", "/users/" + p.UserID + "/application_credentials", map[string]any{"application_credential": map[string]any{"name": "x"}}},
			{"make an EC2 credential", "POST", "/users/" + p.UserID + "/credentials/OS-EC2", map[string]any{"tenant_id": sc.project}},
			{"make a credential", "POST", "/credentials", map[string]any{"credential": map[string]any{"user_id": p.UserID, "type": "totp", "blob": "x"}}},
		} {
			if code, _, body := f.call(c.method, c.path, tok, c.body); code != 403 {
				t.Errorf("impersonation=%v: %s with a trust token: %d %v", impersonate, c.what, code, body)
			}
		}
		rescope := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": tok}}}}
		if code, _, _ := f.call("POST", "/auth/tokens", "", rescope); code != 403 {
			t.Fatalf("a token from a trust token: %d", code)
		}

		// Deleting the trust voids its tokens.
		if code, _, _ := f.call("DELETE", "/OS-TRUST/trusts/"+id, sc.torTok, nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		if _, err := f.svc.Validate(context.Background(), tok); err == nil {
			t.Fatal("a token validated after its trust was deleted")
		}
		if code, _, _ := sc.trustToken(id); code != 404 {
			t.Fatalf("token from a deleted trust: %d", code)
		}
	}
	// Only the trustee uses a trust.
	id := sc.mkTrust(nil)["id"].(string)
	if code, _, _ := f.call("POST", "/auth/tokens", "", trustAuth("eve", "eve-pw", id)); code != 403 {
		t.Fatalf("a stranger using the trust: %d", code)
	}
	// With the token method: the trustee's own token, scoped by the trust.
	unscoped := f.login("tee", "tee-pw", "")
	byToken := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": unscoped}},
		"scope": map[string]any{"OS-TRUST:trust": map[string]any{"id": id}}}}
	if code, _, body := f.call("POST", "/auth/tokens", "", byToken); code != 201 || body["token"].(map[string]any)["OS-TRUST:trust"] == nil {
		t.Fatalf("trust scope with the token method: %d %v", code, body)
	}
}

func TestTrustUsesExpiryAndLostAccess(t *testing.T) {
	sc := newTrustScene(t)
	f := sc.f
	id := sc.mkTrust(map[string]any{"remaining_uses": 2})["id"].(string)
	for i := 0; i < 2; i++ {
		if code, _, body := sc.trustToken(id); code != 201 {
			t.Fatalf("use %d: %d %v", i+1, code, body)
		}
	}
	code, _, body := sc.trustToken(id)
	if code != 403 {
		t.Fatalf("a third use of a trust of two: %d %v", code, body)
	}
	_, _, body = f.call("GET", "/OS-TRUST/trusts/"+id, sc.torTok, nil)
	if got := body["trust"].(map[string]any)["remaining_uses"]; got != float64(0) {
		t.Fatalf("remaining_uses = %v", got)
	}

	// Expiry bounds the tokens and the trust.
	exp := f.now.Add(20 * time.Minute)
	id = sc.mkTrust(map[string]any{"expires_at": exp.Format(time.RFC3339)})["id"].(string)
	code, tok, body := sc.trustToken(id)
	if code != 201 || body["token"].(map[string]any)["expires_at"] != exp.Format(timeFormat) {
		t.Fatalf("token of an expiring trust: %d %v", code, body)
	}
	f.now = exp
	if code, _, _ := sc.trustToken(id); code != 401 {
		t.Fatalf("expired trust: %d", code)
	}
	if _, err := f.svc.Validate(context.Background(), tok); err == nil {
		t.Fatal("a token of an expired trust validated")
	}
	f.now = exp.Add(-10 * time.Minute)

	// The trustor losing a delegated role voids the tokens; given back,
	// the trust works again (it is not deleted, as in Keystone).
	id = sc.mkTrust(nil)["id"].(string)
	_, tok, _ = sc.trustToken(id)
	grant := "/projects/" + sc.project + "/users/" + sc.trustor + "/roles/" + sc.delegated
	if code, _, _ := f.call("DELETE", grant, f.admin, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if _, err := f.svc.Validate(context.Background(), tok); err == nil {
		t.Fatal("a trust token validated after the trustor lost the role")
	}
	if code, _, _ := sc.trustToken(id); code != 403 {
		t.Fatalf("trust token after the trustor lost the role: %d", code)
	}
	f.call("PUT", grant, f.admin, nil)
	code, tok, _ = sc.trustToken(id)
	if code != 201 {
		t.Fatalf("trust token with the role back: %d", code)
	}

	// The trustor's tokens revoked (a password change) revoke the trust's.
	f.now = f.now.Add(time.Second)
	if code, _, _ := f.call("PATCH", "/users/"+sc.trustor, f.admin, map[string]any{"user": map[string]any{"password": "new-pw"}}); code != 200 {
		t.Fatalf("password change: %d", code)
	}
	if _, err := f.svc.Validate(context.Background(), tok); err == nil {
		t.Fatal("a trust token validated after the trustor's tokens were revoked")
	}
	f.now = f.now.Add(time.Second)
	_, tok, _ = sc.trustToken(id)
	// A disabled trustor: its trusts give nothing.
	if code, _, _ := f.call("PATCH", "/users/"+sc.trustor, f.admin, map[string]any{"user": map[string]any{"enabled": false}}); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	if _, err := f.svc.Validate(context.Background(), tok); err == nil {
		t.Fatal("a trust token validated after the trustor was disabled")
	}
	if code, _, _ := sc.trustToken(id); code != 403 {
		t.Fatalf("trust token of a disabled trustor: %d", code)
	}
	f.call("PATCH", "/users/"+sc.trustor, f.admin, map[string]any{"user": map[string]any{"enabled": true}})

	// Deleting the trustee, or the project, takes the trusts with it.
	f.now = f.now.Add(time.Second)
	sc.torTok = f.login("tor", "new-pw", "heat-stack")
	toEve := sc.mkTrust(map[string]any{"trustee_user_id": sc.otherID})["id"].(string)
	if code, _, _ := f.call("DELETE", "/users/"+sc.trustee, f.admin, nil); code != 204 {
		t.Fatalf("delete trustee: %d", code)
	}
	if left := store.All[Trust](f.local.Local(), tTrusts, "id"); len(left) != 1 || left[0].ID != toEve {
		t.Fatalf("trusts after the trustee was deleted: %+v, want only the one to another trustee", left)
	}
	if code, _, _ := f.call("DELETE", "/projects/"+sc.project, f.admin, nil); code != 204 {
		t.Fatalf("delete project: %d", code)
	}
	if n := len(store.All[Trust](f.local.Local(), tTrusts, "id")); n != 0 {
		t.Fatalf("%d trusts outlive their project", n)
	}
}

// Two nodes reading the same state both see one use left; Raft orders
// their consume commands and the second is refused, so the last use is
// spent once.
func TestTrustLastUseSpentOnce(t *testing.T) {
	sc := newTrustScene(t)
	f := sc.f
	id := sc.mkTrust(map[string]any{"remaining_uses": 1})["id"].(string)
	ctx := context.Background()
	at := f.now
	if _, err := f.local.Propose(ctx, cmdTrustConsume, trustConsumeCmd{ID: id, At: at}); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := f.local.Propose(ctx, cmdTrustConsume, trustConsumeCmd{ID: id, At: at})
	var ae *store.ApplyError
	if !errors.As(err, &ae) || !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("second use of the last: %v, want a refusal", err)
	}
	if tr := store.Get[Trust](f.local.Local(), tTrusts, id); tr == nil || *tr.RemainingUses != 0 {
		t.Fatalf("trust after the race: %+v", tr)
	}
	// An expired trust is not used, by the proposer's clock.
	id = sc.mkTrust(map[string]any{"remaining_uses": 3, "expires_at": at.Add(time.Minute).Format(time.RFC3339)})["id"].(string)
	if _, err := f.local.Propose(ctx, cmdTrustConsume, trustConsumeCmd{ID: id, At: at.Add(time.Minute)}); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("use of an expired trust: %v", err)
	}
}

func TestTrustRedelegation(t *testing.T) {
	sc := newTrustScene(t)
	f := sc.f
	// A trust that does not allow redelegation cannot be redelegated.
	plain := sc.mkTrust(nil)["id"].(string)
	_, plainTok, _ := sc.trustToken(plain)
	second := map[string]any{"trustor_user_id": sc.trustee, "trustee_user_id": sc.otherID, "project_id": sc.project,
		"impersonation": false, "roles": []any{map[string]any{"name": "delegated"}}}
	if code, _, _ := f.call("POST", "/OS-TRUST/trusts", plainTok, map[string]any{"trust": second}); code != 403 {
		t.Fatalf("redelegating a trust that forbids it: %d", code)
	}

	tr := sc.mkTrust(map[string]any{"allow_redelegation": true, "redelegation_count": 2,
		"roles": []any{map[string]any{"name": "delegated"}, map[string]any{"name": "member"}}})
	if tr["allow_redelegation"] != true || tr["redelegation_count"] != float64(2) {
		t.Fatalf("redelegatable trust: %v", tr)
	}
	_, tok, _ := sc.trustToken(tr["id"].(string))
	with := func(fields map[string]any) map[string]any {
		in := map[string]any{}
		for k, v := range second {
			in[k] = v
		}
		for k, v := range fields {
			in[k] = v
		}
		return map[string]any{"trust": in}
	}
	if code, _, body := f.call("POST", "/OS-TRUST/trusts", tok, with(map[string]any{"roles": []any{map[string]any{"name": "kept"}}})); code != 403 {
		t.Errorf("redelegating a role not in the trust: %d %v", code, body)
	}
	if code, _, body := f.call("POST", "/OS-TRUST/trusts", tok, with(map[string]any{"remaining_uses": 1})); code != 403 {
		t.Errorf("redelegating with a use limit: %d %v", code, body)
	}
	noImp := sc.mkTrust(map[string]any{"allow_redelegation": true, "impersonation": false})
	_, noImpTok, _ := sc.trustToken(noImp["id"].(string))
	if code, _, body := f.call("POST", "/OS-TRUST/trusts", noImpTok, with(map[string]any{"impersonation": true})); code != 403 {
		t.Errorf("redelegating impersonation the trust does not give: %d %v", code, body)
	}
	second["allow_redelegation"] = true
	code, _, body := f.call("POST", "/OS-TRUST/trusts", tok, map[string]any{"trust": second})
	if code != 201 {
		t.Fatalf("redelegate: %d %v", code, body)
	}
	red := body["trust"].(map[string]any)
	if red["redelegated_trust_id"] != tr["id"] || red["redelegation_count"] != float64(1) || red["trustor_user_id"] != sc.trustee {
		t.Fatalf("redelegated trust: %v", red)
	}
	// The third user gets the redelegated roles on the project.
	code, _, body = f.call("POST", "/auth/tokens", "", trustAuth("eve", "eve-pw", red["id"].(string)))
	if code != 201 || strings.Join(roleNamesOf(body["token"].(map[string]any)["roles"]), ",") != "delegated" {
		t.Fatalf("token from the redelegated trust: %d %v", code, body)
	}
	// Deleting the original takes the redelegated one.
	if code, _, _ := f.call("DELETE", "/OS-TRUST/trusts/"+tr["id"].(string), sc.torTok, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := f.call("GET", "/OS-TRUST/trusts/"+red["id"].(string), f.admin, nil); code != 404 {
		t.Fatalf("a redelegated trust outlives its origin: %d", code)
	}
}
