//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestOAuth1CLI: Keystone's OS-OAUTH1 delegation end to end with the
// real openstack CLI (keystoneclient's OAuth client and keystoneauth's
// v3oauth1 plugin, which sign with oauthlib): an admin registers a
// consumer; the consumer asks for a request token on a project; the
// project's user authorizes it with one of its roles; the consumer
// trades it for an access token and logs in with that, getting a token on
// the project as the user; a wrong secret or verifier fails with a
// non-zero exit; deleting the consumer ends the delegation.
func TestOAuth1CLI(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "oauth1", "--disk", t.TempDir(), "--s3-listen", "off")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	pid := strings.TrimSpace(openstack(t, admin, "project", "create", "oproj", "-f", "value", "-c", "id"))
	uid := strings.TrimSpace(openstack(t, admin, "user", "create", "--password", "olive-pw", "--project", "oproj", "olive", "-f", "value", "-c", "id"))
	openstack(t, admin, "role", "add", "--project", "oproj", "--user", "olive", "member")
	user := osEnv(creds, n, "OS_USERNAME=olive", "OS_PASSWORD=olive-pw", "OS_PROJECT_NAME=oproj")

	cons := showJSON(t, admin, "consumer", "create", "--description", "ci robot")
	ck, cs := cons["id"].(string), cons["secret"].(string)
	if out, err := openstackErr(user, "consumer", "list"); err == nil {
		t.Fatalf("a member lists consumers:\n%s", out)
	}
	if out, err := openstackErr(admin, "request", "token", "create", "--consumer-key", ck, "--consumer-secret", "wrong", "--project", pid); err == nil {
		t.Fatalf("a request token with a wrong consumer secret:\n%s", out)
	}
	rt := showJSON(t, admin, "request", "token", "create", "--consumer-key", ck, "--consumer-secret", cs, "--project", pid)
	rk, rs := rt["key"].(string), rt["secret"].(string)
	if out, err := openstackErr(user, "request", "token", "authorize", "--request-key", rk, "--role", "admin"); err == nil {
		t.Fatalf("authorized with a role the user does not hold:\n%s", out)
	}
	verifier := strings.TrimSpace(openstack(t, user, "request", "token", "authorize", "--request-key", rk, "--role", "member", "-f", "value", "-c", "oauth_verifier"))
	if out, err := openstackErr(admin, "access", "token", "create", "--consumer-key", ck, "--consumer-secret", cs, "--request-key", rk, "--request-secret", rs, "--verifier", "wrongver"); err == nil {
		t.Fatalf("an access token with a wrong verifier:\n%s", out)
	}
	at := showJSON(t, admin, "access", "token", "create", "--consumer-key", ck, "--consumer-secret", cs, "--request-key", rk, "--request-secret", rs, "--verifier", verifier)
	ak, as := at["key"].(string), at["secret"].(string)

	// The consumer logs in with the access token alone.
	consumer := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "OS_AUTH_URL=" + n.url() + "/identity/v3", "OS_IDENTITY_API_VERSION=3"}
	login := func(secret string) (string, error) {
		return openstackErr(consumer, "--os-auth-type", "v3oauth1", "--os-consumer-key", ck, "--os-consumer-secret", cs,
			"--os-access-key", ak, "--os-access-secret", secret, "token", "issue", "-f", "value", "-c", "project_id", "-c", "user_id")
	}
	out, err := login(as)
	if err != nil || !strings.Contains(out, pid) || !strings.Contains(out, uid) {
		t.Fatalf("log in with the access token: %v\n%s", err, out)
	}
	if out, err := login("wrong"); err == nil {
		t.Fatalf("logged in with a wrong access secret:\n%s", out)
	}
	openstack(t, admin, "consumer", "delete", ck)
	if out, err := login(as); err == nil {
		t.Fatalf("logged in after the consumer was deleted:\n%s", out)
	}
}
