//go:build integration

package integration

import (
	"encoding/json"
	"testing"
)

// tenant is a member user of a project of its own: its openstack CLI
// environment and an EC2 credential for S3 clients.
type tenant struct {
	Access    string `json:"access"`
	Secret    string `json:"secret"`
	ProjectID string `json:"project_id"`
	OS        []string
}

// twoTenants makes the object-storage tests' two tenants on node: alice
// in project demo and bob in project other, each a member there, their
// CLI environments with HOME home.
func twoTenants(t *testing.T, node *rackd, creds map[string]string, home string) (alice, bob tenant) {
	t.Helper()
	admin := osEnv(creds, node)
	for _, u := range []struct {
		project, user, pass string
		into                *tenant
	}{{"demo", "alice", "alice-pass-1", &alice}, {"other", "bob", "bob-pass-1", &bob}} {
		openstack(t, admin, "project", "create", u.project)
		openstack(t, admin, "user", "create", "--project", u.project, "--password", u.pass, u.user)
		openstack(t, admin, "role", "add", "--project", u.project, "--user", u.user, "member")
		u.into.OS = append(osEnv(creds, node, "OS_USERNAME="+u.user, "OS_PASSWORD="+u.pass, "OS_PROJECT_NAME="+u.project), "HOME="+home)
		if err := json.Unmarshal([]byte(openstack(t, u.into.OS, "ec2", "credentials", "create", "-f", "json")), u.into); err != nil || u.into.Access == "" {
			t.Fatalf("EC2 credential of %s: %v", u.user, err)
		}
	}
	return alice, bob
}

// awsEnv is the aws CLI's environment as c, with HOME home and no
// configuration file of the machine's.
func (c tenant) awsEnv(home string) []string {
	return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "AWS_ACCESS_KEY_ID=" + c.Access, "AWS_SECRET_ACCESS_KEY=" + c.Secret, "AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null"}
}
