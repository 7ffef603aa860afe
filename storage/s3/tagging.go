package s3

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Tagging: PUT/GET/DELETE ?tagging on objects and buckets, x-amz-tagging
// on object writes and x-amz-tagging-count on reads. An object's tags are
// stored in its row (storage/object/tags.go), a bucket's in the
// container's.

// S3's limits on tags. Lengths are counted as S3 counts them, in UTF-16
// code units.
const (
	maxObjectTags  = 10
	maxBucketTags  = 50
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

type tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type tagging struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ Tagging"`
	TagSet  []tag    `xml:"TagSet>Tag"`
}

// taggingRequest is a PUT ?tagging body; the namespace is optional.
type taggingRequest struct {
	XMLName xml.Name `xml:"Tagging"`
	TagSet  *struct {
		Tags []tag `xml:"Tag"`
	} `xml:"TagSet"`
}

func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

// checkTags applies S3's rules to an object's tag set, answering
// InvalidTag to the first it breaks. It returns the tags as a map (nil
// when there are none).
func (q *request) checkTags(tags []tag) (map[string]string, bool) {
	return q.checkTagSet(tags, maxObjectTags, "object")
}

func (q *request) checkTagSet(tags []tag, most int, of string) (map[string]string, bool) {
	bad := func(msg string) (map[string]string, bool) {
		q.fail("InvalidTag", http.StatusBadRequest, msg)
		return nil, false
	}
	if len(tags) > most {
		return bad(of + " tags cannot be greater than " + strconv.Itoa(most) + " (got " + strconv.Itoa(len(tags)) + ")")
	}
	out := map[string]string{}
	for _, t := range tags {
		switch {
		case t.Key == "" || !utf8.ValidString(t.Key):
			return bad("the TagKey you have provided is invalid: " + strconv.Quote(t.Key))
		case !utf8.ValidString(t.Value):
			return bad("the TagValue you have provided is invalid: " + strconv.Quote(t.Value))
		case utf16Len(t.Key) > maxTagKeyLen:
			return bad("the TagKey you have provided is too long, max " + strconv.Itoa(maxTagKeyLen) + ": " + strconv.Quote(t.Key))
		case utf16Len(t.Value) > maxTagValueLen:
			return bad("the TagValue you have provided is too long, max " + strconv.Itoa(maxTagValueLen) + " (key " + strconv.Quote(t.Key) + ")")
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return bad("your TagKey cannot be prefixed with aws: " + strconv.Quote(t.Key))
		}
		if _, dup := out[t.Key]; dup {
			return bad("cannot provide multiple Tags with the same key: " + strconv.Quote(t.Key))
		}
		out[t.Key] = t.Value
	}
	if len(out) == 0 {
		return nil, true
	}
	return out, true
}

// tagHeader reads x-amz-tagging, tags URL-encoded as query parameters
// ("k1=v1&k2=v2"). Absent, it gives no tags.
func (q *request) tagHeader() (map[string]string, bool) {
	h := q.r.Header.Get("x-amz-tagging")
	if h == "" {
		return nil, true
	}
	var tags []tag
	for _, kv := range strings.Split(h, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			q.fail("InvalidArgument", http.StatusBadRequest, "the header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates")
			return nil, false
		}
		tags = append(tags, tag{Key: key, Value: value})
	}
	return q.checkTags(tags)
}

// copyTags gives a CopyObject's tags: the source's (x-amz-tagging-directive
// COPY, the default) or x-amz-tagging's (REPLACE).
func (q *request) copyTags(source map[string]string) (map[string]string, bool) {
	switch q.r.Header.Get("x-amz-tagging-directive") {
	case "", "COPY":
		return source, true
	case "REPLACE":
		return q.tagHeader()
	}
	q.fail("InvalidArgument", http.StatusBadRequest, "x-amz-tagging-directive must be COPY or REPLACE")
	return nil, false
}

// setTaggingCount adds x-amz-tagging-count to a GET or HEAD of an object
// with tags.
func setTaggingCount(h http.Header, tags map[string]string) {
	if len(tags) > 0 {
		h.Set("x-amz-tagging-count", strconv.Itoa(len(tags)))
	}
}

func tagSet(tags map[string]string) tagging {
	out := tagging{TagSet: []tag{}}
	for k, v := range tags {
		out.TagSet = append(out.TagSet, tag{Key: k, Value: v})
	}
	sort.Slice(out.TagSet, func(i, j int) bool { return out.TagSet[i].Key < out.TagSet[j].Key })
	return out
}

// objectTagging answers GET, PUT and DELETE ?tagging on an object.
func (q *request) objectTagging() {
	ctx := q.r.Context()
	var tags map[string]string
	switch q.r.Method {
	case http.MethodGet:
		o, err := q.h.Store.Head(ctx, q.project(), q.bucket, q.key)
		if err != nil {
			q.noSuchKey(err, q.bucket, q.key)
			return
		}
		writeXML(q.w, http.StatusOK, tagSet(o.Tags))
		return
	case http.MethodPut:
		set, ok := q.readTagging()
		if !ok {
			return
		}
		if tags, ok = q.checkTags(set); !ok {
			return
		}
	case http.MethodDelete:
	default:
		q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "?tagging is read with GET, written with PUT and removed with DELETE")
		return
	}
	if _, err := q.h.Store.SetTags(ctx, q.project(), q.bucket, q.key, tags); err != nil {
		q.noSuchKey(err, q.bucket, q.key)
		return
	}
	if q.r.Method == http.MethodDelete {
		q.w.WriteHeader(http.StatusNoContent)
		return
	}
	q.w.WriteHeader(http.StatusOK)
}

// readTagging decodes a PUT ?tagging body.
func (q *request) readTagging() ([]tag, bool) {
	var req taggingRequest
	if !q.decodeXML(&req) {
		return nil, false
	}
	if req.TagSet == nil {
		q.fail("MalformedXML", http.StatusBadRequest, "the Tagging document has no TagSet")
		return nil, false
	}
	return req.TagSet.Tags, true
}

// bucketTagging answers GET, PUT and DELETE ?tagging on a bucket. The tags
// are kept in the container's row, which Swift's container writes carry
// over unchanged.
func (q *request) bucketTagging() {
	ctx := q.r.Context()
	var tags map[string]string
	switch q.r.Method {
	case http.MethodGet:
		c, err := q.h.Store.Container(ctx, q.project(), q.bucket)
		if err != nil {
			q.bucketFail(err)
			return
		}
		if len(c.Tags) == 0 {
			q.fail("NoSuchTagSet", http.StatusNotFound, "the TagSet does not exist")
			return
		}
		writeXML(q.w, http.StatusOK, tagSet(c.Tags))
		return
	case http.MethodPut:
		set, ok := q.readTagging()
		if !ok {
			return
		}
		if tags, ok = q.checkTagSet(set, maxBucketTags, "bucket"); !ok {
			return
		}
	case http.MethodDelete:
	default:
		q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "?tagging is read with GET, written with PUT and removed with DELETE")
		return
	}
	c, err := q.h.Store.Container(ctx, q.project(), q.bucket)
	if err != nil {
		q.bucketFail(err)
		return
	}
	nc := *c
	nc.Tags = tags
	if err := q.h.Store.UpdateContainer(ctx, nc); err != nil {
		q.bucketFail(err)
		return
	}
	if q.r.Method == http.MethodDelete {
		q.w.WriteHeader(http.StatusNoContent)
		return
	}
	q.w.WriteHeader(http.StatusOK)
}
