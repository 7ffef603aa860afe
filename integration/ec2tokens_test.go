//go:build integration

package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// Keystone's /v3/ec2tokens and /v3/s3tokens, as a gateway in front of
// the cloud uses them: an EC2 credential made with the real CLI, a
// request signed by another implementation (minio-go's SigV4 signer),
// and the cloud answers with a token for the credential's project only
// when the signature is right.
func TestEC2TokensRealSignatures(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "ec2tok")
	admin := osEnv(openrc(t, n.dataDir), n)

	var cred struct{ Access, Secret, Project_ID string }
	if err := json.Unmarshal([]byte(openstack(t, admin, "ec2", "credentials", "create", "-f", "json")), &cred); err != nil || cred.Access == "" {
		t.Fatalf("ec2 credentials create: %v", err)
	}
	post := func(path string, body any) (int, http.Header, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		res, err := (&http.Client{Timeout: 20 * time.Second}).Post(n.url()+"/identity/v3"+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, res.Header, out
	}
	ec2Body := func(secret string) map[string]any {
		req, _ := http.NewRequest("GET", "https://ec2.example.com:8773/?Action=DescribeInstances&Version=2016-11-15", nil)
		req.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
		req = signer.SignV4(*req, cred.Access, secret, "", "RegionOne")
		params, headers := map[string]string{}, map[string]string{"Host": req.Host}
		for k, v := range req.URL.Query() {
			params[k] = v[0]
		}
		for k, v := range req.Header {
			headers[k] = v[0]
		}
		auth := req.Header.Get("Authorization")
		_, sig, _ := strings.Cut(auth, "Signature=")
		return map[string]any{"credentials": map[string]any{"access": cred.Access, "signature": sig, "host": req.Host,
			"verb": "GET", "path": "/", "params": params, "headers": headers, "body_hash": req.Header.Get("X-Amz-Content-Sha256")}}
	}
	code, h, body := post("/ec2tokens", ec2Body(cred.Secret))
	if code != 200 || h.Get("X-Subject-Token") == "" {
		t.Fatalf("ec2tokens with a minio-go SigV4 signature: %d %v", code, body)
	}
	if p := body["token"].(map[string]any)["project"].(map[string]any)["id"]; p != cred.Project_ID {
		t.Fatalf("ec2 token for project %v, want %s", p, cred.Project_ID)
	}
	// The token works: the CLI lists projects with it.
	tokEnv := []string{"PATH=/usr/bin:/bin", "OS_AUTH_TYPE=v3token", "OS_AUTH_URL=" + n.url() + "/identity/v3", "OS_TOKEN=" + h.Get("X-Subject-Token"), "OS_PROJECT_ID=" + cred.Project_ID}
	if out := openstack(t, tokEnv, "project", "show", cred.Project_ID, "-f", "value", "-c", "id"); strings.TrimSpace(out) != cred.Project_ID {
		t.Fatalf("project show with the ec2 token: %q", out)
	}
	if code, _, body := post("/ec2tokens", ec2Body("not-the-secret")); code != 401 {
		t.Fatalf("ec2tokens signed with another secret: %d %v", code, body)
	}

	// s3tokens: AWS's published SigV4 example, under a credential made
	// with its example secret through the CLI's generic credentials.
	user := strings.TrimSpace(openstack(t, admin, "token", "issue", "-f", "value", "-c", "user_id"))
	blob := `{"access": "AKIDEXAMPLE", "secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}`
	openstack(t, admin, "credential", "create", "--type", "ec2", "--project", cred.Project_ID, user, blob)
	toSign := "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
	s3 := func(sig string) map[string]any {
		return map[string]any{"credentials": map[string]any{"access": "AKIDEXAMPLE", "signature": sig, "token": base64.StdEncoding.EncodeToString([]byte(toSign))}}
	}
	if code, h, body := post("/s3tokens", s3("5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")); code != 200 || h.Get("X-Subject-Token") == "" {
		t.Fatalf("s3tokens with AWS's example signature: %d %v", code, body)
	}
	if code, _, _ := post("/s3tokens", s3("5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d8")); code != 401 {
		t.Fatalf("s3tokens with a wrong signature: %d", code)
	}
}
