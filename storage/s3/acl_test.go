package s3

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"testing"
)

type aclXML struct {
	XMLName xml.Name `xml:"AccessControlPolicy"`
	Owner   struct {
		ID          string `xml:"ID"`
		DisplayName string `xml:"DisplayName"`
	} `xml:"Owner"`
	Grants []struct {
		Grantee struct {
			Type        string `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
			ID          string `xml:"ID"`
			DisplayName string `xml:"DisplayName"`
			URI         string `xml:"URI"`
		} `xml:"Grantee"`
		Permission string `xml:"Permission"`
	} `xml:"AccessControlList>Grant"`
}

// grants fetches path?acl and returns its grants as "type:who:permission".
func (e *env) grants(path string) []string {
	e.T.Helper()
	r := e.must(http.StatusOK, "", "GET", path+"?acl", alice, nil)
	var p aclXML
	if err := xml.Unmarshal(r.body, &p); err != nil {
		e.T.Fatalf("GET %s?acl: %v: %s", path, err, r.body)
	}
	if p.Owner.ID != "p1" || p.Owner.DisplayName != "one" {
		e.T.Errorf("GET %s?acl owner %+v, want the project as ListBuckets shows it (p1, one)", path, p.Owner)
	}
	var out []string
	for _, g := range p.Grants {
		out = append(out, g.Grantee.Type+":"+g.Grantee.ID+g.Grantee.URI+":"+g.Permission)
	}
	return out
}

func equal(a []string, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const ownerFull = "CanonicalUser:p1:FULL_CONTROL"

func aclBody(grantee string, perm string) []byte {
	return []byte(`<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>p1</ID></Owner><AccessControlList><Grant>` +
		grantee + `<Permission>` + perm + `</Permission></Grant></AccessControlList></AccessControlPolicy>`)
}

const (
	xsi        = `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`
	ownerUser  = `<Grantee ` + xsi + ` xsi:type="CanonicalUser"><ID>p1</ID></Grantee>`
	otherUser  = `<Grantee ` + xsi + ` xsi:type="CanonicalUser"><ID>p2</ID></Grantee>`
	allUsersGr = `<Grantee ` + xsi + ` xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>`
)

func TestGetACL(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/k", "v")
	if g := e.grants("/bkt"); !equal(g, ownerFull) {
		t.Errorf("bucket ACL %v", g)
	}
	if g := e.grants("/bkt/k"); !equal(g, ownerFull) {
		t.Errorf("object ACL %v", g)
	}
	e.must(http.StatusOK, "", "GET", "/bkt/k?acl", "reader-key", nil)
	e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/nope?acl", alice, nil)
	e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/nope/k?acl", alice, nil)
	e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/bkt?acl", "bob-key", nil)
	e.must(http.StatusForbidden, "AccessDenied", "GET", "/bkt?acl", "", nil)

	// What the bucket's Swift ACLs grant is shown, not hidden.
	c, err := e.Svc.Container(context.Background(), "p1", "bkt")
	if err != nil {
		t.Fatal(err)
	}
	nc := *c
	nc.ReadACL, nc.WriteACL = ".r:*,.rlistings,p2:bob", "p3:*"
	if err := e.Svc.UpdateContainer(context.Background(), nc); err != nil {
		t.Fatal(err)
	}
	if g := e.grants("/bkt"); !equal(g, ownerFull, "Group:"+allUsers+":READ", "CanonicalUser:p2:bob:READ", "CanonicalUser:p3:*:WRITE") {
		t.Errorf("bucket ACL with Swift ACLs: %v", g)
	}
	if g := e.grants("/bkt/k"); !equal(g, ownerFull, "Group:"+allUsers+":READ", "CanonicalUser:p2:bob:READ") {
		t.Errorf("object ACL with Swift ACLs: %v", g)
	}
}

func TestPutACL(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/k", "v")
	refused := map[string]struct {
		body   []byte
		hdr    []string
		status int
		code   string
	}{
		"public-read":          {nil, []string{"x-amz-acl", "public-read"}, 501, "NotImplemented"},
		"public-read-write":    {nil, []string{"x-amz-acl", "public-read-write"}, 501, "NotImplemented"},
		"authenticated-read":   {nil, []string{"x-amz-acl", "authenticated-read"}, 501, "NotImplemented"},
		"grant header":         {nil, []string{"x-amz-grant-read", `id="p2"`}, 501, "NotImplemented"},
		"grant full control":   {nil, []string{"x-amz-grant-full-control", `uri="` + allUsers + `"`}, 501, "NotImplemented"},
		"body to everyone":     {aclBody(allUsersGr, "READ"), nil, 501, "NotImplemented"},
		"body to another":      {aclBody(otherUser, "FULL_CONTROL"), nil, 501, "NotImplemented"},
		"owner read only":      {aclBody(ownerUser, "READ"), nil, 501, "NotImplemented"},
		"header and body":      {aclBody(ownerUser, "FULL_CONTROL"), []string{"x-amz-acl", "private"}, 400, "UnexpectedContent"},
		"neither":              {nil, nil, 400, "MissingSecurityHeader"},
		"not an ACL":           {[]byte(`<VersioningConfiguration/>`), nil, 400, "MalformedXML"},
		"grant and private":    {nil, []string{"x-amz-acl", "private", "x-amz-grant-write", `id="p2"`}, 501, "NotImplemented"},
		"another owner":        {[]byte(`<AccessControlPolicy><Owner><ID>p2</ID></Owner><AccessControlList><Grant>` + ownerUser + `<Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>`), nil, 403, "AccessDenied"},
		"reader's private":     {nil, []string{"x-amz-acl", "private"}, 403, "AccessDenied"},
		"anonymous private":    {nil, []string{"x-amz-acl", "private"}, 403, "AccessDenied"},
		"bob's private (none)": {nil, []string{"x-amz-acl", "private"}, 404, ""},
	}
	who := map[string]string{"reader's private": "reader-key", "anonymous private": "", "bob's private (none)": "bob-key"}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			access, ok := who[name]
			if !ok {
				access = alice
			}
			e.must(tc.status, tc.code, "PUT", "/bkt?acl", access, tc.body, tc.hdr...)
			e.must(tc.status, tc.code, "PUT", "/bkt/k?acl", access, tc.body, tc.hdr...)
		})
	}
	if g := e.grants("/bkt"); !equal(g, ownerFull) {
		t.Errorf("bucket ACL after refusals %v", g)
	}
	for _, path := range []string{"/bkt", "/bkt/k"} {
		e.must(http.StatusOK, "", "PUT", path+"?acl", alice, nil, "x-amz-acl", "private")
		e.must(http.StatusOK, "", "PUT", path+"?acl", alice, aclBody(ownerUser, "FULL_CONTROL"))
	}
	e.must(http.StatusOK, "", "PUT", "/bkt/k?acl", alice, nil, "x-amz-acl", "bucket-owner-full-control")
	e.must(http.StatusNotFound, "NoSuchKey", "PUT", "/bkt/nope?acl", alice, nil, "x-amz-acl", "private")
	// A PUT ?acl never creates a bucket, a DELETE ?acl never deletes one.
	e.must(http.StatusNotFound, "NoSuchBucket", "PUT", "/fresh?acl", alice, nil, "x-amz-acl", "private")
	e.must(http.StatusNotFound, "", "HEAD", "/fresh", alice, nil)
	e.must(http.StatusMethodNotAllowed, "MethodNotAllowed", "DELETE", "/bkt?acl", alice, nil)
	e.must(http.StatusMethodNotAllowed, "MethodNotAllowed", "DELETE", "/bkt/k?acl", alice, nil)
	if got := e.get("/bkt/k"); got != "v" {
		t.Errorf("object after ACL requests: %q", got)
	}
}

// A bucket made public-read (Swift's ".r:*") says so; private on one of
// its objects cannot be honoured and is refused; private on the bucket
// takes the public read away.
func TestPrivateACLOfAPublicBucket(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusOK, "", "PUT", "/pub", alice, nil, "x-amz-acl", "public-read")
	e.put("/pub/k", "v")
	if g := e.grants("/pub/k"); !equal(g, ownerFull, "Group:"+allUsers+":READ") {
		t.Errorf("object of a public-read bucket: ACL %v", g)
	}
	e.must(http.StatusNotImplemented, "NotImplemented", "PUT", "/pub/k?acl", alice, nil, "x-amz-acl", "private")
	e.must(http.StatusNotImplemented, "NotImplemented", "PUT", "/pub/k2", alice, []byte("x"), "x-amz-acl", "private")
	e.must(http.StatusNotFound, "NoSuchKey", "GET", "/pub/k2", alice, nil)
	e.put("/pub/k3", "no ACL asked for")

	e.must(http.StatusOK, "", "PUT", "/pub?acl", alice, nil, "x-amz-acl", "private")
	c, err := e.Svc.Container(context.Background(), "p1", "pub")
	if err != nil || c.ReadACL != "" || c.WriteACL != "" {
		t.Fatalf("bucket after private: %+v, %v", c, err)
	}
	if g := e.grants("/pub/k"); !equal(g, ownerFull) {
		t.Errorf("object ACL after the bucket went private: %v", g)
	}
	e.must(http.StatusOK, "", "PUT", "/pub/k?acl", alice, nil, "x-amz-acl", "private")
}

// Writes with an ACL granting access are refused before anything is
// written; owner-only ACLs are taken.
func TestWriteACLHeaders(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/src", "v")
	refusals := []struct {
		method, path string
		hdr          []string
		gone         string
	}{
		{"PUT", "/bkt/a", []string{"x-amz-acl", "public-read"}, "/bkt/a"},
		{"PUT", "/bkt/a", []string{"x-amz-grant-read", `uri="` + allUsers + `"`}, "/bkt/a"},
		{"PUT", "/bkt/a", []string{"x-amz-acl", "public-read", "x-amz-copy-source", "/bkt/src"}, "/bkt/a"},
		{"POST", "/bkt/a?uploads", []string{"x-amz-acl", "authenticated-read"}, ""},
		{"PUT", "/newb", []string{"x-amz-acl", "public-read-write"}, "/newb"},
		{"PUT", "/newb", []string{"x-amz-acl", "authenticated-read"}, "/newb"},
		{"PUT", "/newb", []string{"x-amz-grant-write", `id="p2"`}, "/newb"},
	}
	for _, r := range refusals {
		e.must(http.StatusNotImplemented, "NotImplemented", r.method, r.path, alice, nil, r.hdr...)
		if r.gone != "" {
			e.must(http.StatusNotFound, "", "HEAD", r.gone, alice, nil)
		}
	}
	if r := e.must(http.StatusOK, "", "GET", "/bkt?uploads", alice, nil); bytes.Contains(r.body, []byte("<Upload>")) {
		t.Errorf("a refused CreateMultipartUpload left an upload: %s", r.body)
	}
	e.put("/bkt/b", "x", "x-amz-acl", "private")
	e.put("/bkt/c", "x", "x-amz-acl", "bucket-owner-full-control")
	e.must(http.StatusOK, "", "PUT", "/bkt/d", alice, nil, "x-amz-acl", "private", "x-amz-copy-source", "/bkt/src")
	e.must(http.StatusOK, "", "POST", "/bkt/e?uploads", alice, nil, "x-amz-acl", "private")
	e.must(http.StatusOK, "", "PUT", "/privb", alice, nil, "x-amz-acl", "private")
}
