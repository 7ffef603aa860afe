package s3

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/storage/object"
)

type copyPartXML struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

// copyPart sends UploadPartCopy of src (with rng, if given) as part n of
// upload id of bkt/key and returns the result's ETag.
func (e *env) copyPart(key, id string, n int, src, rng string) string {
	e.T.Helper()
	hdr := []string{"x-amz-copy-source", src}
	if rng != "" {
		hdr = append(hdr, "x-amz-copy-source-range", rng)
	}
	r := e.must(http.StatusOK, "", "PUT", fmt.Sprintf("/bkt/%s?partNumber=%d&uploadId=%s", key, n, id), alice, nil, hdr...)
	var res copyPartXML
	if err := xml.Unmarshal(r.body, &res); err != nil || res.ETag == "" || res.LastModified == "" {
		e.T.Fatalf("CopyPartResult %s (%v)", r.body, err)
	}
	return res.ETag
}

func TestUploadPartCopy(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.bucket("src")
	big := make([]byte, object.MinPartSize+1000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	e.put("/src/big", string(big))
	e.put("/src/small", "tail bytes")

	id := e.createUpload("joined")
	// Part 1: a range of the big object; part 2: the whole small one
	// (listed, left out of the object); part 3 is uploaded normally, then
	// replaced by a copy.
	rng := big[500 : 500+object.MinPartSize]
	etag1 := e.copyPart("joined", id, 1, "/src/big", fmt.Sprintf("bytes=500-%d", 500+object.MinPartSize-1))
	if etag1 != quote(md5hex(rng)) {
		t.Errorf("part 1 ETag %s, want the md5 of the range %s", etag1, quote(md5hex(rng)))
	}
	etag2 := e.copyPart("joined", id, 2, "src/small", "") // no leading slash, as boto3 sends it
	if etag2 != quote(md5hex([]byte("tail bytes"))) {
		t.Errorf("part 2 ETag %s", etag2)
	}
	e.uploadPart("joined", id, 3, []byte("replaced"))
	etag3 := e.copyPart("joined", id, 3, "/src/small?versionId=null", "bytes=5-9")
	if etag3 != quote(md5hex([]byte("bytes"))) {
		t.Errorf("part 3 ETag %s", etag3)
	}

	var lp struct {
		Parts []struct {
			PartNumber int    `xml:"PartNumber"`
			ETag       string `xml:"ETag"`
			Size       int64  `xml:"Size"`
		} `xml:"Part"`
	}
	r := e.must(http.StatusOK, "", "GET", "/bkt/joined?uploadId="+id, alice, nil)
	if err := xml.Unmarshal(r.body, &lp); err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 3 || lp.Parts[0].Size != object.MinPartSize || lp.Parts[1].ETag != etag2 || lp.Parts[1].Size != 10 || lp.Parts[2].Size != 5 {
		t.Errorf("ListParts after copies: %+v", lp.Parts)
	}
	e.must(http.StatusOK, "", "POST", "/bkt/joined?uploadId="+id, alice, completeBody(1, etag1, 3, etag3))
	want := append(append([]byte{}, rng...), "bytes"...)
	if got := e.must(http.StatusOK, "", "GET", "/bkt/joined", alice, nil).body; !bytes.Equal(got, want) {
		t.Errorf("completed object: %d bytes, want %d (equal prefix: %v)", len(got), len(want), bytes.HasPrefix(got, rng))
	}
	// The sources are untouched.
	if got := e.get("/src/small"); got != "tail bytes" {
		t.Errorf("source after copies: %q", got)
	}
}

func TestUploadPartCopyRefusals(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/src", "0123456789")
	srcETag := quote(md5hex([]byte("0123456789")))
	// bob's bucket of the same name lives in his project, not alice's.
	e.must(http.StatusOK, "", "PUT", "/bobs", "bob-key", nil)
	e.must(http.StatusOK, "", "PUT", "/bobs/secret", "bob-key", []byte("bob's"))
	id := e.createUpload("dst")
	path := "/bkt/dst?partNumber=1&uploadId=" + id
	tests := map[string]struct {
		access string
		path   string
		hdr    []string
		status int
		code   string
	}{
		"no range prefix":       {alice, path, []string{"x-amz-copy-source-range", "0-2"}, 400, "InvalidArgument"},
		"no last":               {alice, path, []string{"x-amz-copy-source-range", "bytes=0"}, 400, "InvalidArgument"},
		"open end":              {alice, path, []string{"x-amz-copy-source-range", "bytes=3-"}, 400, "InvalidArgument"},
		"suffix":                {alice, path, []string{"x-amz-copy-source-range", "bytes=-3"}, 400, "InvalidArgument"},
		"words":                 {alice, path, []string{"x-amz-copy-source-range", "bytes=hello-world"}, 400, "InvalidArgument"},
		"two ranges":            {alice, path, []string{"x-amz-copy-source-range", "bytes=0-2,3-5"}, 400, "InvalidArgument"},
		"reversed":              {alice, path, []string{"x-amz-copy-source-range", "bytes=5-2"}, 400, "InvalidArgument"},
		"past the end":          {alice, path, []string{"x-amz-copy-source-range", "bytes=0-21"}, 416, "InvalidRange"},
		"starts past the end":   {alice, path, []string{"x-amz-copy-source-range", "bytes=10-12"}, 416, "InvalidRange"},
		"missing source":        {alice, path, []string{"x-amz-copy-source", "/bkt/nope"}, 404, "NoSuchKey"},
		"missing source bucket": {alice, path, []string{"x-amz-copy-source", "/nobucket/src"}, 404, "NoSuchBucket"},
		"another project's":     {alice, path, []string{"x-amz-copy-source", "/bobs/secret"}, 404, "NoSuchBucket"},
		"bad source":            {alice, path, []string{"x-amz-copy-source", "/bkt"}, 400, "InvalidArgument"},
		"other version":         {alice, path, []string{"x-amz-copy-source", "/bkt/src?versionId=abc"}, 400, "InvalidArgument"},
		"if-match fails":        {alice, path, []string{"x-amz-copy-source-if-match", `"nope"`}, 412, "PreconditionFailed"},
		"if-none-match fails":   {alice, path, []string{"x-amz-copy-source-if-none-match", srcETag}, 412, "PreconditionFailed"},
		"unmodified-since fail": {alice, path, []string{"x-amz-copy-source-if-unmodified-since", "Mon, 01 Jan 2001 00:00:00 GMT"}, 412, "PreconditionFailed"},
		"modified-since fails":  {alice, path, []string{"x-amz-copy-source-if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT"}, 412, "PreconditionFailed"},
		"no such upload":        {alice, "/bkt/dst?partNumber=1&uploadId=nope", nil, 404, "NoSuchUpload"},
		"upload of another key": {alice, "/bkt/other?partNumber=1&uploadId=" + id, nil, 404, "NoSuchUpload"},
		"bad part number":       {alice, "/bkt/dst?partNumber=0&uploadId=" + id, nil, 400, "InvalidArgument"},
		"reader":                {"reader-key", path, nil, 403, "AccessDenied"},
		"bob":                   {"bob-key", path, nil, 404, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			hdr := append([]string{"x-amz-copy-source", "/bkt/src"}, tc.hdr...)
			e.must(tc.status, tc.code, "PUT", tc.path, tc.access, nil, hdr...)
		})
	}
	// None of them made a part; conditions that hold do.
	r := e.must(http.StatusOK, "", "GET", "/bkt/dst?uploadId="+id, alice, nil)
	if bytes.Contains(r.body, []byte("<Part>")) {
		t.Fatalf("a refused copy left a part: %s", r.body)
	}
	e.must(http.StatusOK, "", "PUT", path, alice, nil, "x-amz-copy-source", "/bkt/src", "x-amz-copy-source-if-match", srcETag,
		"x-amz-copy-source-if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT", "x-amz-copy-source-range", "bytes=9-9")
}

// A CopyObject naming a version of its source other than "null" must not
// copy the current object.
func TestCopyObjectSourceVersion(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/src", "v")
	e.must(http.StatusBadRequest, "InvalidArgument", "PUT", "/bkt/a", alice, nil, "x-amz-copy-source", "/bkt/src?versionId=3HL4kqtJlcpXroDTDmJ")
	e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/a", alice, nil)
	e.must(http.StatusOK, "", "PUT", "/bkt/b", alice, nil, "x-amz-copy-source", "/bkt/src?versionId=null")
	if got := e.get("/bkt/b"); got != "v" {
		t.Errorf("copy of version null: %q", got)
	}
}
