package s3

import (
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/rackstack/rackstack/storage/object"
)

// ACLs. Rackstack keeps access rules per bucket (the container's Swift
// read and write ACLs) and none per object: every object belongs to the
// bucket's project. GET ?acl answers what those rules really grant; a
// write is taken only when it asks for what is already true or can be
// made true ("private"), and anything that would grant access to
// someone else is refused with NotImplemented rather than accepted and
// ignored: a client told its object is public-read when it is not, or
// private when it is not, is worse off than one told no.

const xsiNS = "http://www.w3.org/2001/XMLSchema-instance"

// allUsers is S3's group of everyone, signed or not.
const allUsers = "http://acs.amazonaws.com/groups/global/AllUsers"

type grantee struct {
	XMLNS       string `xml:"xmlns:xsi,attr"`
	Type        string `xml:"xsi:type,attr"`
	ID          string `xml:"ID,omitempty"`
	DisplayName string `xml:"DisplayName,omitempty"`
	URI         string `xml:"URI,omitempty"`
}

type grant struct {
	Grantee    grantee `xml:"Grantee"`
	Permission string  `xml:"Permission"`
}

type accessControlPolicy struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ AccessControlPolicy"`
	Owner   owner    `xml:"Owner"`
	Grants  []grant  `xml:"AccessControlList>Grant"`
}

// aclRequest is a PUT ?acl body as clients send it.
type aclRequest struct {
	XMLName xml.Name `xml:"AccessControlPolicy"`
	Owner   struct {
		ID string `xml:"ID"`
	} `xml:"Owner"`
	Grants []struct {
		Grantee struct {
			Type         string `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
			ID           string `xml:"ID"`
			URI          string `xml:"URI"`
			EmailAddress string `xml:"EmailAddress"`
		} `xml:"Grantee"`
		Permission string `xml:"Permission"`
	} `xml:"AccessControlList>Grant"`
}

// swiftGrants reads a container's Swift ACLs as S3 grants: who besides
// the project may list the bucket (bucket READ), write into it (bucket
// WRITE) or read its objects (object READ). A referrer rule (".r:...") is
// shown as everyone: the Referer header is the client's to choose.
type swiftGrants struct {
	publicObjects, publicListing bool
	readers, writers             []string
}

func grantsOf(c *object.Container) swiftGrants {
	var g swiftGrants
	for _, e := range strings.Split(c.ReadACL, ",") {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case e == ".rlistings":
			g.publicListing = true
		case strings.HasPrefix(e, ".r:"):
			if !strings.HasPrefix(e, ".r:-") {
				g.publicObjects = true
			}
		case !strings.HasPrefix(e, "."):
			g.readers = append(g.readers, e)
		}
	}
	for _, e := range strings.Split(c.WriteACL, ",") {
		if e = strings.TrimSpace(e); e != "" && !strings.HasPrefix(e, ".") {
			g.writers = append(g.writers, e)
		}
	}
	g.publicListing = g.publicListing && g.publicObjects
	return g
}

func (q *request) ownerGrant() grant {
	o := q.owner()
	return grant{Grantee: grantee{XMLNS: xsiNS, Type: "CanonicalUser", ID: o.ID, DisplayName: o.DisplayName}, Permission: "FULL_CONTROL"}
}

func userGrant(who, perm string) grant {
	return grant{Grantee: grantee{XMLNS: xsiNS, Type: "CanonicalUser", ID: who, DisplayName: who}, Permission: perm}
}

func everyone(perm string) grant {
	return grant{Grantee: grantee{XMLNS: xsiNS, Type: "Group", URI: allUsers}, Permission: perm}
}

// bucketPolicy is the bucket's ACL: the project's FULL_CONTROL and what
// its Swift ACLs grant.
func (q *request) bucketPolicy(c *object.Container) accessControlPolicy {
	g := grantsOf(c)
	p := accessControlPolicy{Owner: q.owner(), Grants: []grant{q.ownerGrant()}}
	if g.publicListing {
		p.Grants = append(p.Grants, everyone("READ"))
	}
	for _, r := range g.readers {
		p.Grants = append(p.Grants, userGrant(r, "READ"))
	}
	for _, w := range g.writers {
		p.Grants = append(p.Grants, userGrant(w, "WRITE"))
	}
	return p
}

// objectPolicy is an object's ACL: the project's FULL_CONTROL and the
// reads its bucket's Swift ACL grants.
func (q *request) objectPolicy(c *object.Container) accessControlPolicy {
	g := grantsOf(c)
	p := accessControlPolicy{Owner: q.owner(), Grants: []grant{q.ownerGrant()}}
	if g.publicObjects {
		p.Grants = append(p.Grants, everyone("READ"))
	}
	for _, r := range g.readers {
		p.Grants = append(p.Grants, userGrant(r, "READ"))
	}
	return p
}

// grantHeaders are the request headers that grant a permission.
var grantHeaders = []string{"x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp", "x-amz-grant-full-control"}

// ownerOnlyACLs are the canned ACLs that give no one but the owner any
// access. Every object's owner here is its bucket's, so the
// bucket-owner-* ones are "private" too.
var ownerOnlyACLs = map[string]bool{"private": true, "bucket-owner-full-control": true, "bucket-owner-read": true}

// cannedACL checks a request's x-amz-acl and x-amz-grant-* headers: it
// returns the canned ACL ("" if none) when it gives the owner alone
// access (or is one of extra), and answers NotImplemented otherwise.
func (q *request) cannedACL(extra ...string) (string, bool) {
	for _, h := range grantHeaders {
		if q.r.Header.Get(h) != "" {
			q.fail("NotImplemented", http.StatusNotImplemented, "granting access with "+h+" is not implemented: buckets and objects are private to their project")
			return "", false
		}
	}
	acl := q.r.Header.Get("x-amz-acl")
	if acl == "" || ownerOnlyACLs[acl] {
		return acl, true
	}
	for _, e := range extra {
		if acl == e {
			return acl, true
		}
	}
	q.fail("NotImplemented", http.StatusNotImplemented, "the canned ACL x-amz-acl: "+acl+" is not implemented: only private is")
	return "", false
}

// writeACLHolds checks the x-amz-acl and grants of an object write
// (PutObject, CopyObject, CreateMultipartUpload): a private ACL is
// refused too when the bucket's ACL lets others read the object anyway.
func (q *request) writeACLHolds() bool {
	acl, ok := q.cannedACL()
	if !ok || acl == "" {
		return ok
	}
	c, err := q.h.Store.Container(q.r.Context(), q.project(), q.bucket)
	if err != nil {
		q.bucketFail(err)
		return false
	}
	return q.objectCanBePrivate(c, acl)
}

func (q *request) objectCanBePrivate(c *object.Container, acl string) bool {
	if g := grantsOf(c); g.publicObjects || len(g.readers) > 0 {
		q.fail("NotImplemented", http.StatusNotImplemented, "the canned ACL "+acl+" cannot be honoured for one object: the bucket's ACL lets others read every object in it (objects have no ACL of their own here); make the bucket private first")
		return false
	}
	return true
}

// putACL reads a PUT ?acl: either x-amz-acl or an AccessControlPolicy
// body, never both. It returns the ACL's name for messages when the ACL
// gives the owner alone access, and answers the request otherwise.
func (q *request) putACL() (string, bool) {
	acl, ok := q.cannedACL()
	if !ok {
		return "", false
	}
	hasBody := q.r.ContentLength > 0 || q.r.ContentLength < 0 && q.r.Header.Get("x-amz-decoded-content-length") != "0"
	if acl != "" {
		if hasBody {
			q.fail("UnexpectedContent", http.StatusBadRequest, "this request does not support content: give either x-amz-acl or an AccessControlPolicy body")
			return "", false
		}
		return acl, true
	}
	if !hasBody {
		q.fail("MissingSecurityHeader", http.StatusBadRequest, "your request was missing a required header: x-amz-acl (or an AccessControlPolicy body)")
		return "", false
	}
	var req aclRequest
	if !q.decodeXML(&req) {
		return "", false
	}
	me := q.owner().ID
	if req.Owner.ID != "" && req.Owner.ID != me {
		q.fail("AccessDenied", http.StatusForbidden, "the ACL's Owner/ID "+req.Owner.ID+" is not the owner "+me+": ownership cannot be changed")
		return "", false
	}
	full := false
	for _, g := range req.Grants {
		who := g.Grantee.ID + g.Grantee.URI + g.Grantee.EmailAddress
		if g.Grantee.ID != me || g.Grantee.URI != "" || g.Grantee.EmailAddress != "" {
			q.fail("NotImplemented", http.StatusNotImplemented, "granting "+g.Permission+" to "+who+" is not implemented: only the owner's FULL_CONTROL is")
			return "", false
		}
		if g.Permission != "FULL_CONTROL" {
			q.fail("NotImplemented", http.StatusNotImplemented, "an ACL giving the owner "+g.Permission+" rather than FULL_CONTROL is not implemented")
			return "", false
		}
		full = true
	}
	if !full {
		q.fail("NotImplemented", http.StatusNotImplemented, "an ACL without the owner's FULL_CONTROL is not implemented")
		return "", false
	}
	return "an owner-only AccessControlPolicy", true
}

// bucketACL answers GET and PUT ?acl on a bucket. A private ACL put on a
// bucket with Swift ACLs removes them: afterwards only the project has
// access, as S3's "private" says.
func (q *request) bucketACL() {
	switch q.r.Method {
	case http.MethodGet:
		c, err := q.h.Store.Container(q.r.Context(), q.project(), q.bucket)
		if err != nil {
			q.bucketFail(err)
			return
		}
		writeXML(q.w, http.StatusOK, q.bucketPolicy(c))
	case http.MethodPut:
		if _, ok := q.putACL(); !ok {
			return
		}
		c, err := q.h.Store.Container(q.r.Context(), q.project(), q.bucket)
		if err != nil {
			q.bucketFail(err)
			return
		}
		if c.ReadACL != "" || c.WriteACL != "" {
			nc := *c
			nc.ReadACL, nc.WriteACL = "", ""
			if err := q.h.Store.UpdateContainer(q.r.Context(), nc); err != nil {
				q.bucketFail(err)
				return
			}
		}
		q.w.WriteHeader(http.StatusOK)
	default:
		q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "?acl is read with GET and written with PUT")
	}
}

// objectACL answers GET and PUT ?acl on an object.
func (q *request) objectACL() {
	ctx := q.r.Context()
	var acl string
	if q.r.Method == http.MethodPut {
		var ok bool
		if acl, ok = q.putACL(); !ok {
			return
		}
	} else if q.r.Method != http.MethodGet {
		q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "?acl is read with GET and written with PUT")
		return
	}
	if _, err := q.h.Store.Head(ctx, q.project(), q.bucket, q.key); err != nil {
		q.noSuchKey(err, q.bucket, q.key)
		return
	}
	c, err := q.h.Store.Container(ctx, q.project(), q.bucket)
	if err != nil {
		q.bucketFail(err)
		return
	}
	if q.r.Method == http.MethodGet {
		writeXML(q.w, http.StatusOK, q.objectPolicy(c))
		return
	}
	if !q.objectCanBePrivate(c, acl) {
		return
	}
	q.w.WriteHeader(http.StatusOK)
}
