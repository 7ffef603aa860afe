package identity

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// The signatures below come from outside this package: AWS's published
// signature v4 example (IAM ListUsers, 2015-08-30, its example secret)
// and Python's hmac and urllib.parse.quote, as Keystone computes v2.
const awsExampleSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

// ec2Cred makes project p, user u with the member role there, and an EC2
// credential access/secret of u on p.
func (f *fixture) ec2Cred(p, u, access, secret string) (projectID, userID string) {
	f.t.Helper()
	projectID, userID, _ = f.tenant(p, u, "member")
	blob := `{"access":"` + access + `","secret":"` + secret + `"}`
	if code, _, body := f.call("POST", "/credentials", f.admin, map[string]any{"credential": map[string]any{"type": "ec2", "user_id": userID, "project_id": projectID, "blob": blob}}); code != 201 {
		f.t.Fatalf("ec2 credential: %d %v", code, body)
	}
	return projectID, userID
}

func TestS3Tokens(t *testing.T) {
	f := newFixture(t)
	pid, uid := f.ec2Cred("s3p", "s3u", "AKIDEXAMPLE", awsExampleSecret)
	f.ec2Cred("v2p", "v2u", "181920", "secretKey")
	v4 := "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
	v2 := "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/bucket/photo.jpg"
	req := func(access, toSign, sig string) map[string]any {
		return map[string]any{"credentials": map[string]any{"access": access, "token": base64.StdEncoding.EncodeToString([]byte(toSign)), "signature": sig}}
	}
	code, h, body := f.call("POST", "/s3tokens", "", req("AKIDEXAMPLE", v4, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"))
	if code != 200 || h.Get("X-Subject-Token") == "" {
		t.Fatalf("s3tokens v4: %d %v", code, body)
	}
	tok := body["token"].(map[string]any)
	if tok["project"].(map[string]any)["id"] != pid || tok["user"].(map[string]any)["id"] != uid || len(tok["roles"].([]any)) == 0 {
		t.Fatalf("s3tokens v4 token: %v", tok)
	}
	if _, err := f.svc.Validate(t.Context(), h.Get("X-Subject-Token")); err != nil {
		t.Fatalf("the s3 token does not validate: %v", err)
	}
	if code, _, body := f.call("POST", "/s3tokens", "", req("181920", v2, "pcrdDr7OvsvZoEYYKpm9/xvTCp4=")); code != 200 {
		t.Fatalf("s3tokens v2: %d %v", code, body)
	}
	for name, c := range map[string]struct {
		body map[string]any
		code int
	}{
		"wrong signature":   {req("AKIDEXAMPLE", v4, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d8"), 401},
		"other secret's v2": {req("AKIDEXAMPLE", v2, "pcrdDr7OvsvZoEYYKpm9/xvTCp4="), 401},
		"unknown access":    {req("nobody", v4, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"), 401},
		"service not s3":    {req("AKIDEXAMPLE", strings.Replace(v4, "/iam/", "/ec2/", 1), "x"), 401},
		"no credentials":    {map[string]any{}, 400},
		"no token":          {map[string]any{"credentials": map[string]any{"access": "AKIDEXAMPLE", "signature": "x"}}, 400},
		"token not base64":  {map[string]any{"credentials": map[string]any{"access": "AKIDEXAMPLE", "signature": "x", "token": "!!"}}, 400},
	} {
		if code, _, body := f.call("POST", "/s3tokens", "", c.body); code != c.code {
			t.Errorf("%s: %d %v, want %d", name, code, body, c.code)
		}
	}
	// A user without a role on the credential's project gets no token.
	if code, _, _ := f.call("DELETE", "/projects/"+pid+"/users/"+uid+"/roles/"+f.roleID("member"), f.admin, nil); code != 204 {
		t.Fatal("revoke")
	}
	if code, _, _ := f.call("POST", "/s3tokens", "", req("AKIDEXAMPLE", v4, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")); code != 401 {
		t.Fatalf("no role on the project: %d, want 401", code)
	}
}

func TestEC2Tokens(t *testing.T) {
	f := newFixture(t)
	f.ec2Cred("s3p", "s3u", "AKIDEXAMPLE", awsExampleSecret)
	f.ec2Cred("v2p", "v2u", "181920", "secretKey")
	f.now = time.Date(2015, 8, 30, 12, 40, 0, 0, time.UTC)
	v4 := func(sig string) map[string]any {
		return map[string]any{"credentials": map[string]any{
			"access": "AKIDEXAMPLE", "signature": sig, "host": "iam.amazonaws.com", "verb": "GET", "path": "/",
			"params": map[string]string{"Action": "ListUsers", "Version": "2010-05-08"},
			"headers": map[string]string{
				"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Host": "iam.amazonaws.com", "X-Amz-Date": "20150830T123600Z",
				"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + sig,
			},
			"body_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		}}
	}
	good := "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	if code, h, body := f.call("POST", "/ec2tokens", "", v4(good)); code != 200 || h.Get("X-Subject-Token") == "" {
		t.Fatalf("ec2tokens v4: %d %v", code, body)
	}
	v2 := func(host string) map[string]any {
		return map[string]any{"ec2Credentials": map[string]any{
			"access": "181920", "signature": "f67E4lG0Vudsa2zziA2Cvq+vp+iuHLCDCaaxeJ0LD8Q=", "host": host, "verb": "GET", "path": "/",
			"params": map[string]string{"Action": "DescribeInstances", "AWSAccessKeyId": "181920", "SignatureVersion": "2", "SignatureMethod": "HmacSHA256", "Timestamp": "2015-08-30T12:36:00Z", "Filter.1.Value": "a b~c*d"},
		}}
	}
	if code, _, body := f.call("POST", "/ec2tokens", "", v2("ec2.example.com")); code != 200 {
		t.Fatalf("ec2tokens v2: %d %v", code, body)
	}
	if code, _, body := f.call("POST", "/ec2tokens", "", v2("ec2.example.com:8773")); code != 200 {
		t.Fatalf("ec2tokens v2 signed without the port: %d %v", code, body)
	}
	if code, _, _ := f.call("POST", "/ec2tokens", "", v2("other.example.com")); code != 401 {
		t.Fatalf("ec2tokens v2 for another host: %d, want 401", code)
	}
	if code, _, _ := f.call("POST", "/ec2tokens", "", v4(strings.Repeat("0", 64))); code != 401 {
		t.Fatalf("ec2tokens v4 wrong signature: %d, want 401", code)
	}
	f.now = time.Date(2015, 8, 30, 13, 0, 0, 0, time.UTC)
	if code, _, body := f.call("POST", "/ec2tokens", "", v4(good)); code != 401 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "expired") {
		t.Fatalf("ec2tokens 24 minutes after the request was signed: %d %v, want 401 expired", code, body)
	}
}
