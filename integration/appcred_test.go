//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// Application credentials with the real CLI: made with a password login,
// then the CLI authenticates with nothing but the credential's id and
// secret (clouds.yaml's auth_type v3applicationcredential, as Terraform
// and cloud-provider-openstack use), holds only the role delegated, and
// is refused once the credential is deleted.
func TestApplicationCredentialCLI(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "appcred")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)

	out := openstack(t, admin, "application", "credential", "create", "--role", "member", "cred1", "-f", "json")
	var ac struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		Roles  any    `json:"roles"`
	}
	if err := json.Unmarshal([]byte(out), &ac); err != nil || ac.ID == "" || ac.Secret == "" {
		t.Fatalf("application credential create: %v\n%s", err, out)
	}
	if shown := openstack(t, admin, "application", "credential", "show", "cred1", "-f", "json"); strings.Contains(shown, ac.Secret) {
		t.Fatalf("show returns the secret: %s", shown)
	}

	// Only the credential: no user, password or project.
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir(),
		"OS_AUTH_URL=" + n.url() + "/identity/v3", "OS_IDENTITY_API_VERSION=3",
		"OS_AUTH_TYPE=v3applicationcredential",
		"OS_APPLICATION_CREDENTIAL_ID=" + ac.ID, "OS_APPLICATION_CREDENTIAL_SECRET=" + ac.Secret}
	for _, k := range []string{"OS_REGION_NAME", "OS_INTERFACE", "OS_CACERT"} {
		if v, ok := creds[k]; ok {
			env = append(env, k+"="+v)
		}
	}
	tok := openstack(t, env, "token", "issue", "-f", "json")
	if !strings.Contains(tok, `"project_id"`) {
		t.Fatalf("token issue with an application credential: %s", tok)
	}
	if out := openstack(t, env, "application", "credential", "list", "-f", "json"); !strings.Contains(out, ac.ID) {
		t.Fatalf("application credential list with the credential: %s", out)
	}
	// It holds member, not the admin's admin: admin calls are refused.
	if out, err := openstackErr(env, "project", "create", "not-allowed"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("an admin call through a member credential: err=%v %s", err, out)
	}

	openstack(t, admin, "application", "credential", "delete", "cred1")
	if out, err := openstackErr(env, "token", "issue"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("token issue with a deleted credential: err=%v %s", err, out)
	}
}
