package s3

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/storage/object"
)

func taggingBody(kv ...string) []byte {
	var b strings.Builder
	b.WriteString(`<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>`)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "<Tag><Key>%s</Key><Value>%s</Value></Tag>", kv[i], kv[i+1])
	}
	b.WriteString("</TagSet></Tagging>")
	return []byte(b.String())
}

// tags fetches path?tagging as "k=v" strings in the order sent.
func (e *env) tags(path string) []string {
	e.T.Helper()
	r := e.must(http.StatusOK, "", "GET", path+"?tagging", alice, nil)
	var t struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ Tagging"`
		Tags    []struct {
			Key   string `xml:"Key"`
			Value string `xml:"Value"`
		} `xml:"TagSet>Tag"`
	}
	if err := xml.Unmarshal(r.body, &t); err != nil {
		e.T.Fatalf("GET %s?tagging: %v: %s", path, err, r.body)
	}
	out := []string{}
	for _, tg := range t.Tags {
		out = append(out, tg.Key+"="+tg.Value)
	}
	return out
}

func (e *env) tagCount(path string) string {
	e.T.Helper()
	g := e.must(http.StatusOK, "", "GET", path, alice, nil).header.Get("x-amz-tagging-count")
	if h := e.must(http.StatusOK, "", "HEAD", path, alice, nil).header.Get("x-amz-tagging-count"); h != g {
		e.T.Errorf("%s: x-amz-tagging-count GET %q, HEAD %q", path, g, h)
	}
	return g
}

func TestObjectTagging(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/k", "payload")
	if g := e.tags("/bkt/k"); len(g) != 0 {
		t.Errorf("tags of a fresh object: %v", g)
	}
	if c := e.tagCount("/bkt/k"); c != "" {
		t.Errorf("tag count of a fresh object: %q", c)
	}
	e.must(http.StatusOK, "", "PUT", "/bkt/k?tagging", alice, taggingBody("zeta", "last", "alpha", "first", "empty", ""))
	if g := e.tags("/bkt/k"); !equal(g, "alpha=first", "empty=", "zeta=last") {
		t.Errorf("tags after PUT: %v", g)
	}
	if c := e.tagCount("/bkt/k"); c != "3" {
		t.Errorf("x-amz-tagging-count = %q, want 3", c)
	}
	// A metadata update (Swift's POST) keeps them.
	o, err := e.Svc.Head(context.Background(), "p1", "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.SetMeta(context.Background(), o, object.Attrs{Meta: map[string]string{"m": "1"}}); err != nil {
		t.Fatal(err)
	}
	if c := e.tagCount("/bkt/k"); c != "3" {
		t.Errorf("x-amz-tagging-count after a metadata update = %q", c)
	}
	// Replaced, not merged.
	e.must(http.StatusOK, "", "PUT", "/bkt/k?tagging", alice, taggingBody("only", "one"))
	if g := e.tags("/bkt/k"); !equal(g, "only=one") {
		t.Errorf("tags after second PUT: %v", g)
	}

	long := strings.Repeat("k", 128)
	wide := strings.Repeat("\U0001F600", 64) // 128 UTF-16 units
	e.must(http.StatusOK, "", "PUT", "/bkt/k?tagging", alice, taggingBody(long, strings.Repeat("v", 256), wide, "x"))
	many := make([]string, 0, 22)
	for i := range 11 {
		many = append(many, fmt.Sprintf("k%d", i), "v")
	}
	refused := map[string][]byte{
		"11 tags":          taggingBody(many...),
		"key too long":     taggingBody(long+"k", "v"),
		"wide key":         taggingBody(wide+"\U0001F600", "v"),
		"value too long":   taggingBody("k", strings.Repeat("v", 257)),
		"duplicate key":    taggingBody("k", "1", "k", "2"),
		"empty key":        taggingBody("", "v"),
		"aws: prefix":      taggingBody("aws:cloudformation:stack", "v"),
		"AWS: prefix case": taggingBody("AWS:x", "v"),
	}
	for name, body := range refused {
		t.Run(name, func(t *testing.T) {
			e.with(t).must(http.StatusBadRequest, "InvalidTag", "PUT", "/bkt/k?tagging", alice, body)
		})
	}
	e.must(http.StatusBadRequest, "MalformedXML", "PUT", "/bkt/k?tagging", alice, []byte("<Tagging><TagSet>"))
	e.must(http.StatusBadRequest, "MalformedXML", "PUT", "/bkt/k?tagging", alice, []byte("<Tagging/>"))
	e.must(http.StatusBadRequest, "MalformedXML", "PUT", "/bkt/k?tagging", alice, []byte("<Other><TagSet/></Other>"))
	if g := e.tags("/bkt/k"); len(g) != 2 {
		t.Errorf("tags after refused PUTs: %v", g)
	}

	e.must(http.StatusOK, "", "GET", "/bkt/k?tagging", "reader-key", nil)
	e.must(http.StatusForbidden, "AccessDenied", "PUT", "/bkt/k?tagging", "reader-key", taggingBody("a", "b"))
	e.must(http.StatusNotFound, "NoSuchBucket", "PUT", "/bkt/k?tagging", "bob-key", taggingBody("a", "b"))
	e.must(http.StatusNotFound, "NoSuchKey", "PUT", "/bkt/nope?tagging", alice, taggingBody("a", "b"))
	e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/nope?tagging", alice, nil)
	e.must(http.StatusNotFound, "NoSuchKey", "DELETE", "/bkt/nope?tagging", alice, nil)
	e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/nob/k?tagging", alice, nil)
	e.must(http.StatusNotFound, "", "HEAD", "/bkt/nope", alice, nil)

	// DELETE ?tagging removes the tags and keeps the object.
	e.must(http.StatusNoContent, "", "DELETE", "/bkt/k?tagging", alice, nil)
	if g := e.tags("/bkt/k"); len(g) != 0 {
		t.Errorf("tags after DELETE: %v", g)
	}
	if got := e.get("/bkt/k"); got != "payload" {
		t.Errorf("object after DELETE ?tagging: %q", got)
	}
	if c := e.tagCount("/bkt/k"); c != "" {
		t.Errorf("tag count after DELETE: %q", c)
	}
}

func TestTaggingHeaderOnWrites(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/src", "data", "x-amz-tagging", "project=blue&note=two%20words&empty=")
	if g := e.tags("/bkt/src"); !equal(g, "empty=", "note=two words", "project=blue") {
		t.Errorf("PutObject tags: %v", g)
	}
	// Overwriting the object starts over.
	e.put("/bkt/over", "1", "x-amz-tagging", "a=1")
	e.put("/bkt/over", "2")
	if c := e.tagCount("/bkt/over"); c != "" {
		t.Errorf("an overwritten object kept its tags: count %q", c)
	}

	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprintf("k%d=v", i)
	}
	e.must(http.StatusBadRequest, "InvalidTag", "PUT", "/bkt/bad", alice, []byte("x"), "x-amz-tagging", strings.Join(many, "&"))
	e.must(http.StatusBadRequest, "InvalidTag", "PUT", "/bkt/bad", alice, []byte("x"), "x-amz-tagging", "a=1&a=2")
	e.must(http.StatusBadRequest, "InvalidArgument", "PUT", "/bkt/bad", alice, []byte("x"), "x-amz-tagging", "a=%zz")
	e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/bad", alice, nil)

	// CopyObject: the source's tags by default, x-amz-tagging's with
	// REPLACE.
	e.must(http.StatusOK, "", "PUT", "/bkt/copy", alice, nil, "x-amz-copy-source", "/bkt/src", "x-amz-tagging", "ignored=yes")
	if g := e.tags("/bkt/copy"); !equal(g, "empty=", "note=two words", "project=blue") {
		t.Errorf("copied tags: %v", g)
	}
	e.must(http.StatusOK, "", "PUT", "/bkt/repl", alice, nil, "x-amz-copy-source", "/bkt/src", "x-amz-tagging-directive", "REPLACE", "x-amz-tagging", "fresh=1")
	if g := e.tags("/bkt/repl"); !equal(g, "fresh=1") {
		t.Errorf("replaced tags: %v", g)
	}
	e.must(http.StatusOK, "", "PUT", "/bkt/none", alice, nil, "x-amz-copy-source", "/bkt/src", "x-amz-tagging-directive", "REPLACE")
	if g := e.tags("/bkt/none"); len(g) != 0 {
		t.Errorf("REPLACE with no tags: %v", g)
	}
	e.must(http.StatusBadRequest, "InvalidArgument", "PUT", "/bkt/x", alice, nil, "x-amz-copy-source", "/bkt/src", "x-amz-tagging-directive", "MERGE")
	e.must(http.StatusBadRequest, "InvalidTag", "PUT", "/bkt/x", alice, nil, "x-amz-copy-source", "/bkt/src", "x-amz-tagging-directive", "REPLACE", "x-amz-tagging", "aws:x=1")
	e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/x", alice, nil)

	// CreateMultipartUpload: the completed object has them.
	r := e.must(http.StatusOK, "", "POST", "/bkt/multi?uploads", alice, nil, "x-amz-tagging", "stage=upload")
	var res struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	p := e.uploadPart("multi", res.UploadID, 1, []byte("one part"))
	e.must(http.StatusOK, "", "POST", "/bkt/multi?uploadId="+res.UploadID, alice, completeBody(1, p))
	if g := e.tags("/bkt/multi"); !equal(g, "stage=upload") {
		t.Errorf("multipart object tags: %v", g)
	}
	e.must(http.StatusBadRequest, "InvalidTag", "POST", "/bkt/multi2?uploads", alice, nil, "x-amz-tagging", "=v")
}

func TestBucketTagging(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/k", "v")
	e.must(http.StatusNotFound, "NoSuchTagSet", "GET", "/bkt?tagging", alice, nil)
	e.must(http.StatusOK, "", "PUT", "/bkt?tagging", alice, taggingBody("cost-center", "42", "env", "test"))
	if g := e.tags("/bkt"); !equal(g, "cost-center=42", "env=test") {
		t.Errorf("bucket tags %v", g)
	}
	// Buckets take up to 50 tags; the other rules are the objects'.
	fifty := make([]string, 0, 102)
	for i := range 50 {
		fifty = append(fifty, fmt.Sprintf("k%02d", i), "v")
	}
	e.must(http.StatusOK, "", "PUT", "/bkt?tagging", alice, taggingBody(fifty...))
	e.must(http.StatusBadRequest, "InvalidTag", "PUT", "/bkt?tagging", alice, taggingBody(append(fifty, "k50", "v")...))
	e.must(http.StatusBadRequest, "InvalidTag", "PUT", "/bkt?tagging", alice, taggingBody("k", "1", "k", "2"))
	e.must(http.StatusBadRequest, "InvalidTag", "PUT", "/bkt?tagging", alice, taggingBody(strings.Repeat("k", 129), "v"))
	if g := e.tags("/bkt"); len(g) != 50 {
		t.Errorf("bucket tags after refusals: %d", len(g))
	}
	// Other container writes (Swift's POST) keep them.
	c, err := e.Svc.Container(context.Background(), "p1", "bkt")
	if err != nil {
		t.Fatal(err)
	}
	nc := *c
	nc.Meta = map[string]string{"color": "blue"}
	if err := e.Svc.UpdateContainer(context.Background(), nc); err != nil {
		t.Fatal(err)
	}
	if g := e.tags("/bkt"); len(g) != 50 {
		t.Errorf("bucket tags after a metadata update: %d", len(g))
	}
	e.must(http.StatusForbidden, "AccessDenied", "PUT", "/bkt?tagging", "reader-key", taggingBody("a", "b"))
	e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/bkt?tagging", "bob-key", nil)
	// Never a CreateBucket or a DeleteBucket.
	e.must(http.StatusNotFound, "NoSuchBucket", "PUT", "/fresh?tagging", alice, taggingBody("a", "b"))
	e.must(http.StatusNotFound, "", "HEAD", "/fresh", alice, nil)
	e.must(http.StatusNoContent, "", "DELETE", "/bkt?tagging", alice, nil)
	e.must(http.StatusNotFound, "NoSuchTagSet", "GET", "/bkt?tagging", alice, nil)
	e.must(http.StatusOK, "", "HEAD", "/bkt", alice, nil)
	if got := e.get("/bkt/k"); got != "v" {
		t.Errorf("object after bucket tagging: %q", got)
	}
}
