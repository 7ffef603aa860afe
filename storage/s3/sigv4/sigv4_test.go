package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The credentials and time of the AWS documentation examples
// ("Signature Calculations for the Authorization Header" and
// "Authenticating Requests: Using Query Parameters", Amazon S3 API reference).
const (
	exAccessKey = "AKIAIOSFODNN7EXAMPLE"
	exSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exScope     = "20130524/us-east-1/s3/aws4_request"
)

var exNow = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func keys(kv ...string) Lookup {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(_ context.Context, ak string) (string, error) {
		s, ok := m[ak]
		if !ok {
			return "", ErrUnknownAccessKey
		}
		return s, nil
	}
}

var exLookup = keys(exAccessKey, exSecret)

// parseRaw parses a raw HTTP/1.1 request the way Go's server does.
func parseRaw(t testing.TB, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("parsing request: %v\n%s", err, raw)
	}
	return r
}

// wire sends a client request through HTTP/1.1 serialisation and parses it
// back as a server would see it.
func wire(t testing.TB, r *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	return parseRaw(t, buf.String())
}

// wantCode fails unless err is an *Error with the given code.
func wantCode(t testing.TB, err error, code string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("error code = %s (%v), want %s", e.Code, e, code)
	}
	if e.Status != 400 && e.Status != 403 {
		t.Fatalf("error %v has status %d", e, e.Status)
	}
	return e
}

// vector is one AWS documentation example request.
type vector struct {
	name      string
	method    string
	target    string   // request-target (path and query)
	host      string   // Host header
	headers   []string // other headers, "Name: value", excluding Authorization
	signed    string   // SignedHeaders (header auth)
	signature string
	body      string
	presigned bool
}

// raw renders the vector as an HTTP/1.1 request.
func (v vector) raw() string {
	lines := []string{v.method + " " + v.target + " HTTP/1.1", "Host: " + v.host}
	if !v.presigned {
		lines = append(lines, "Authorization: AWS4-HMAC-SHA256 Credential="+exAccessKey+"/"+exScope+
			",SignedHeaders="+v.signed+",Signature="+v.signature)
	}
	lines = append(lines, v.headers...)
	if v.body != "" {
		lines = append(lines, fmt.Sprintf("Content-Length: %d", len(v.body)))
	}
	return strings.Join(lines, "\r\n") + "\r\n\r\n" + v.body
}

func awsVectors() []vector {
	return []vector{
		{
			name:   "GET object",
			method: "GET", target: "/test.txt", host: "examplebucket.s3.amazonaws.com",
			headers: []string{
				"Range: bytes=0-9",
				"x-amz-content-sha256: " + EmptyPayloadHash,
				"x-amz-date: 20130524T000000Z",
			},
			signed:    "host;range;x-amz-content-sha256;x-amz-date",
			signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		},
		{
			name:   "PUT object",
			method: "PUT", target: "/test$file.text", host: "examplebucket.s3.amazonaws.com",
			headers: []string{
				"Date: Fri, 24 May 2013 00:00:00 GMT",
				"x-amz-date: 20130524T000000Z",
				"x-amz-storage-class: REDUCED_REDUNDANCY",
				"x-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
			},
			signed:    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
			signature: "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
			body:      "Welcome to Amazon S3.",
		},
		{
			name:   "GET bucket lifecycle",
			method: "GET", target: "/?lifecycle", host: "examplebucket.s3.amazonaws.com",
			headers: []string{
				"x-amz-date: 20130524T000000Z",
				"x-amz-content-sha256: " + EmptyPayloadHash,
			},
			signed:    "host;x-amz-content-sha256;x-amz-date",
			signature: "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
		},
		{
			name:   "GET bucket (list objects)",
			method: "GET", target: "/?max-keys=2&prefix=J", host: "examplebucket.s3.amazonaws.com",
			headers: []string{
				"x-amz-date: 20130524T000000Z",
				"x-amz-content-sha256: " + EmptyPayloadHash,
			},
			signed:    "host;x-amz-content-sha256;x-amz-date",
			signature: "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
		},
		{
			name:   "presigned GET object",
			method: "GET", host: "examplebucket.s3.amazonaws.com",
			target: "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
				"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
				"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
				"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
			signature: "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
			presigned: true,
		},
	}
}

func TestAWSVectors(t *testing.T) {
	for _, v := range awsVectors() {
		t.Run(v.name, func(t *testing.T) {
			r := parseRaw(t, v.raw())
			res, err := Verify(context.Background(), r, exLookup, exNow)
			if err != nil {
				var e *Error
				if errors.As(err, &e) && e.CanonicalRequest != "" {
					t.Logf("canonical request:\n%s\nstring to sign:\n%s", e.CanonicalRequest, e.StringToSign)
				}
				t.Fatalf("Verify: %v", err)
			}
			want := Result{AccessKey: exAccessKey, Region: "us-east-1", PayloadHash: EmptyPayloadHash, Presigned: v.presigned}
			switch {
			case v.presigned:
				want.PayloadHash = UnsignedPayload
			case v.body != "":
				want.PayloadHash = hashHex([]byte(v.body))
			}
			if res != want {
				t.Fatalf("Result = %+v, want %+v", res, want)
			}
			got, err := io.ReadAll(r.Body)
			if err != nil || string(got) != v.body {
				t.Fatalf("body = %q, %v; want %q", got, err, v.body)
			}
		})
	}
}

// flipHex changes one hex digit of s at index i.
func flipHex(s string, i int) string {
	c := byte('0')
	if s[i] == '0' {
		c = '1'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestAWSVectorsTampered(t *testing.T) {
	for _, v := range awsVectors() {
		mutations := map[string]func(v *vector) Lookup{
			"signature byte": func(v *vector) Lookup {
				old := v.signature
				v.signature = flipHex(old, 17)
				v.target = strings.Replace(v.target, old, v.signature, 1)
				return exLookup
			},
			"secret": func(v *vector) Lookup {
				return keys(exAccessKey, exSecret[:10]+"x"+exSecret[11:])
			},
			"signed host header": func(v *vector) Lookup {
				v.host = "examplebucket2.s3.amazonaws.com"
				return exLookup
			},
			"path": func(v *vector) Lookup {
				if strings.HasPrefix(v.target, "/?") {
					v.target = "/x" + v.target[1:]
				} else {
					v.target = strings.Replace(v.target, ".t", ".T", 1)
				}
				return exLookup
			},
			"query value": func(v *vector) Lookup {
				switch {
				case v.presigned:
					v.target = strings.Replace(v.target, "X-Amz-Expires=86400", "X-Amz-Expires=86401", 1)
				case strings.Contains(v.target, "?"):
					v.target = strings.Replace(strings.Replace(v.target, "max-keys=2", "max-keys=3", 1), "?lifecycle", "?lifecycle=x", 1)
				default:
					v.target += "?versionId=1"
				}
				return exLookup
			},
		}
		if !v.presigned {
			mutations["signed x-amz-date header"] = func(v *vector) Lookup {
				for i, h := range v.headers {
					if strings.HasPrefix(h, "x-amz-date:") {
						v.headers[i] = "x-amz-date: 20130524T000001Z"
					}
				}
				return exLookup
			}
		}
		if strings.Contains(v.signed, "range") {
			mutations["signed range header"] = func(v *vector) Lookup {
				v.headers[0] = "Range: bytes=0-8"
				return exLookup
			}
		}
		for name, mutate := range mutations {
			t.Run(v.name+"/"+name, func(t *testing.T) {
				mv := v
				mv.headers = append([]string(nil), v.headers...)
				lookup := mutate(&mv)
				r := parseRaw(t, mv.raw())
				_, err := Verify(context.Background(), r, lookup, exNow)
				wantCode(t, err, "SignatureDoesNotMatch")
			})
		}
	}
}

func TestCanonicalRequestGETObject(t *testing.T) {
	// The canonical request printed in the AWS GET object example.
	want := "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n" +
		"x-amz-content-sha256:" + EmptyPayloadHash + "\nx-amz-date:20130524T000000Z\n\n" +
		"host;range;x-amz-content-sha256;x-amz-date\n" + EmptyPayloadHash
	r := parseRaw(t, awsVectors()[0].raw())
	got := canonicalRequest(r, "", strings.Split("host;range;x-amz-content-sha256;x-amz-date", ";"), EmptyPayloadHash)
	if got != want {
		t.Fatalf("canonical request:\n%s\nwant:\n%s", got, want)
	}
	sts := stringToSign("20130524T000000Z", scope{"20130524", "us-east-1", "s3"}, got)
	if !strings.HasSuffix(sts, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972") {
		t.Fatalf("string to sign:\n%s", sts)
	}
}

func TestCanonicalEncoding(t *testing.T) {
	paths := []struct{ raw, want string }{
		{"", "/"},
		{"/", "/"},
		{"/test$file.text", "/test%24file.text"},
		{"/b/a%20b+c", "/b/a%20b%2Bc"},
		{"/b/a%2Fb//c/", "/b/a%2Fb//c/"},
		{"/b/%c3%bc~_-.", "/b/%C3%BC~_-."},
		{"/b/!$&'()*,;=:@", "/b/%21%24%26%27%28%29%2A%2C%3B%3D%3A%40"},
	}
	for _, p := range paths {
		u, err := url.ParseRequestURI("http://h" + p.raw)
		if p.raw == "" {
			u, err = url.Parse("http://h")
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := canonicalURI(u); got != p.want {
			t.Errorf("canonicalURI(%q) = %q, want %q", p.raw, got, p.want)
		}
	}
	queries := []struct{ raw, want string }{
		{"", ""},
		{"lifecycle", "lifecycle="},
		{"prefix=J&max-keys=2", "max-keys=2&prefix=J"},
		{"a=2&a=1&b&&", "a=1&a=2&b="},
		{"p=a+b%2Bc%20d~*", "p=a%20b%2Bc%20d~%2A"},
		{"k=%c3%bc=", "k=%C3%BC%3D"},
	}
	for _, q := range queries {
		params, err := parseQuery(q.raw, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := canonicalQuery(params, ""); got != q.want {
			t.Errorf("canonicalQuery(%q) = %q, want %q", q.raw, got, q.want)
		}
	}
	if got := trimAll("  a   b  c "); got != "a b c" {
		t.Errorf("trimAll = %q", got)
	}
}

// oddPaths are object paths that canonicalisation gets wrong easily. Each
// is (Path, RawPath): RawPath "" lets Go choose the encoding.
var oddPaths = [][2]string{
	{"/bucket/plain.txt", ""},
	{"/bucket/hello world.txt", ""},
	{"/bucket/a+b=c~d%e", ""},
	{"/bucket/a+b=c~d%e", "/bucket/a%2Bb%3Dc~d%25e"}, // botocore style
	{"/bucket/ünïcødé/日本語 😀.txt", ""},
	{"/bucket/dir/with/slash", "/bucket/dir%2Fwith/slash"},
	{"/bucket/!$&'()*,;:@", ""},
	{"/bucket//double//slash/", ""},
	{"/bucket/ space /", ""},
}

// oddQueries are raw queries with awkward encodings.
var oddQueries = []string{
	"",
	"uploads",
	"list-type=2&prefix=a%20b%2Bc&delimiter=%2F",
	"prefix=a+b&marker=%25&empty=&flag",
	"prefix=%C3%BC%E6%97%A5&max-keys=1000&encoding-type=url",
	"tagging&versionId=~v.1_-",
}

func newOddRequest(t *testing.T, method string, p [2]string, rawQuery string, body []byte) *http.Request {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: "127.0.0.1:9000", Path: p[0], RawPath: p[1], RawQuery: rawQuery}
	r, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(body) == 0 {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	return r
}

func TestSignVerifyRoundTrip(t *testing.T) {
	const ak, secret = "AK+/=~ %ü", "s3cr3t+/= ~%ünï"
	lookup := keys(ak, secret, "other", "x")
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, p := range oddPaths {
		for _, q := range oddQueries {
			for _, body := range []string{"", "hello, world\n"} {
				name := fmt.Sprintf("%s?%s/%d", p[0], q, len(body))
				t.Run(name, func(t *testing.T) {
					method := "GET"
					if body != "" {
						method = "PUT"
					}
					r := newOddRequest(t, method, p, q, []byte(body))
					r.Header.Set("X-Amz-Meta-Odd", "  spaced   out  value ")
					r.Header.Add("X-Amz-Meta-Multi", "one")
					r.Header.Add("X-Amz-Meta-Multi", "two")
					Sign(r, ak, secret, "my-region", hashHex([]byte(body)), now)
					sr := wire(t, r)
					res, err := Verify(context.Background(), sr, lookup, now.Add(time.Minute))
					if err != nil {
						if e := (*Error)(nil); errors.As(err, &e) {
							t.Logf("canonical request:\n%s", e.CanonicalRequest)
						}
						t.Fatalf("Verify: %v", err)
					}
					want := Result{AccessKey: ak, Region: "my-region", PayloadHash: hashHex([]byte(body))}
					if res != want {
						t.Fatalf("Result = %+v, want %+v", res, want)
					}
					got, err := io.ReadAll(sr.Body)
					if err != nil || string(got) != body {
						t.Fatalf("body = %q, %v", got, err)
					}
				})
			}
		}
	}
}

func TestPresignVerifyRoundTrip(t *testing.T) {
	const ak, secret = "AKID~+=", "s+/=~ %ü"
	lookup := keys(ak, secret)
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, p := range oddPaths {
		for _, q := range oddQueries {
			t.Run(p[0]+"?"+q, func(t *testing.T) {
				r := newOddRequest(t, "PUT", p, q, nil)
				r.Header.Set("X-Amz-Acl", "private")
				u := Presign(r, ak, secret, "eu-west-9", time.Hour, now)
				cr, err := http.NewRequest("PUT", u, strings.NewReader("payload"))
				if err != nil {
					t.Fatal(err)
				}
				cr.Header.Set("X-Amz-Acl", "private")
				sr := wire(t, cr)
				res, err := Verify(context.Background(), sr, lookup, now.Add(59*time.Minute))
				if err != nil {
					t.Fatalf("Verify(%s): %v", u, err)
				}
				want := Result{AccessKey: ak, Region: "eu-west-9", PayloadHash: UnsignedPayload, Presigned: true}
				if res != want {
					t.Fatalf("Result = %+v, want %+v", res, want)
				}
				if got, _ := io.ReadAll(sr.Body); string(got) != "payload" {
					t.Fatalf("body = %q", got)
				}

				// The same URL without the signed x-amz-acl header fails;
				// with an extra unsigned x-amz header it is refused.
				cr, _ = http.NewRequest("PUT", u, nil)
				_, err = Verify(context.Background(), wire(t, cr), lookup, now)
				wantCode(t, err, "SignatureDoesNotMatch")
				cr, _ = http.NewRequest("PUT", u, nil)
				cr.Header.Set("X-Amz-Acl", "private")
				cr.Header.Set("X-Amz-Copy-Source", "/other/key")
				_, err = Verify(context.Background(), wire(t, cr), lookup, now)
				wantCode(t, err, "AccessDenied")
			})
		}
	}
}

func TestPresignWindow(t *testing.T) {
	lookup := keys("ak", "sk")
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	r := newOddRequest(t, "GET", [2]string{"/b/k", ""}, "", nil)
	u := Presign(r, "ak", "sk", "us-east-1", 10*time.Minute, now)
	verifyAt := func(u string, at time.Time) error {
		cr, _ := http.NewRequest("GET", u, nil)
		_, err := Verify(context.Background(), wire(t, cr), lookup, at)
		return err
	}
	if err := verifyAt(u, now.Add(10*time.Minute)); err != nil {
		t.Fatalf("at expiry: %v", err)
	}
	e := wantCode(t, verifyAt(u, now.Add(10*time.Minute+time.Second)), "AccessDenied")
	if !strings.Contains(e.Message, "expired") {
		t.Fatalf("message %q does not say expired", e.Message)
	}
	if err := verifyAt(u, now.Add(-MaxClockSkew)); err != nil {
		t.Fatalf("signed slightly in the future: %v", err)
	}
	wantCode(t, verifyAt(u, now.Add(-MaxClockSkew-time.Second)), "AccessDenied")

	long := Presign(r, "ak", "sk", "us-east-1", MaxPresignExpiry+time.Second, now)
	wantCode(t, verifyAt(long, now), "AuthorizationQueryParametersError")
	if err := verifyAt(Presign(r, "ak", "sk", "us-east-1", MaxPresignExpiry, now), now.Add(MaxPresignExpiry)); err != nil {
		t.Fatalf("7 day presign at expiry: %v", err)
	}
	wantCode(t, verifyAt(Presign(r, "ak", "sk", "us-east-1", 0, now), now), "AuthorizationQueryParametersError")
	wantCode(t, verifyAt(Presign(r, "nobody", "sk", "us-east-1", time.Hour, now), now), "InvalidAccessKeyId")
}

func TestPresignMalformed(t *testing.T) {
	base := awsVectors()[4]
	cases := map[string]struct{ from, to, code string }{
		"algorithm":      {"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1", "AuthorizationQueryParametersError"},
		"no credential":  {"X-Amz-Credential=", "X-Amz-Credentia=", "AuthorizationQueryParametersError"},
		"no date":        {"X-Amz-Date=", "X-Amz-Dat=", "AuthorizationQueryParametersError"},
		"bad date":       {"X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013-05-24", "AuthorizationQueryParametersError"},
		"date mismatch":  {"X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130523T235959Z", "AuthorizationQueryParametersError"},
		"no expires":     {"X-Amz-Expires=86400", "", "AuthorizationQueryParametersError"},
		"expires text":   {"X-Amz-Expires=86400", "X-Amz-Expires=1d", "AuthorizationQueryParametersError"},
		"expires neg":    {"X-Amz-Expires=86400", "X-Amz-Expires=-5", "AuthorizationQueryParametersError"},
		"signed no host": {"X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range", "AuthorizationQueryParametersError"},
		"short sig":      {"&X-Amz-Signature=aeeed9", "&X-Amz-Signature=aeeed", "AuthorizationQueryParametersError"},
		"two sigs":       {"&X-Amz-Signature=", "&X-Amz-Signature=00&X-Amz-Signature=", "AuthorizationQueryParametersError"},
		"bad escape":     {"X-Amz-Expires=86400", "X-Amz-Expires=%zz", "InvalidArgument"},
		"expired":        {"X-Amz-Expires=86400", "X-Amz-Expires=60", "AccessDenied"},
		"unknown key":    {"AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLF", "InvalidAccessKeyId"},
		"scope terminal": {"aws4_request", "aws5_request", "AuthorizationQueryParametersError"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			v := base
			v.target = strings.Replace(v.target, c.from, c.to, 1)
			if v.target == base.target {
				t.Fatalf("mutation %q did not apply", c.from)
			}
			_, err := Verify(context.Background(), parseRaw(t, v.raw()), exLookup, exNow.Add(2*time.Minute))
			wantCode(t, err, c.code)
		})
	}
	// Both mechanisms at once.
	v := base
	v.headers = []string{"Authorization: AWS4-HMAC-SHA256 Credential=x"}
	_, err := Verify(context.Background(), parseRaw(t, v.raw()), exLookup, exNow)
	wantCode(t, err, "InvalidArgument")
}

func TestEmptyBodyAndPayloadHash(t *testing.T) {
	lookup := keys("ak", "sk")
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()

	t.Run("empty body", func(t *testing.T) {
		r := newOddRequest(t, "PUT", [2]string{"/b/empty", ""}, "", nil)
		Sign(r, "ak", "sk", "us-east-1", EmptyPayloadHash, now)
		sr := wire(t, r)
		if _, err := Verify(ctx, sr, lookup, now); err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(sr.Body); err != nil || len(b) != 0 {
			t.Fatalf("body = %q, %v", b, err)
		}
	})
	t.Run("empty body wrong hash", func(t *testing.T) {
		r := newOddRequest(t, "PUT", [2]string{"/b/empty", ""}, "", nil)
		Sign(r, "ak", "sk", "us-east-1", hashHex([]byte("x")), now)
		_, err := Verify(ctx, wire(t, r), lookup, now)
		wantCode(t, err, "XAmzContentSHA256Mismatch")
	})
	t.Run("body differs from signed hash", func(t *testing.T) {
		r := newOddRequest(t, "PUT", [2]string{"/b/k", ""}, "", []byte("hellO"))
		Sign(r, "ak", "sk", "us-east-1", hashHex([]byte("hello")), now)
		sr := wire(t, r)
		if _, err := Verify(ctx, sr, lookup, now); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		_, err := io.ReadAll(sr.Body)
		wantCode(t, err, "XAmzContentSHA256Mismatch")
		_, err = sr.Body.Read(make([]byte, 1))
		wantCode(t, err, "XAmzContentSHA256Mismatch") // sticky
	})
	t.Run("mismatch seen by a reader stopping at Content-Length", func(t *testing.T) {
		body := bytes.Repeat([]byte("0123456789"), 10000)
		signed := bytes.Clone(body)
		signed[len(signed)-1] = 'x'
		r := newOddRequest(t, "PUT", [2]string{"/b/k", ""}, "", body)
		Sign(r, "ak", "sk", "us-east-1", hashHex(signed), now)
		sr := wire(t, r)
		if _, err := Verify(ctx, sr, lookup, now); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		n, err := io.ReadFull(sr.Body, make([]byte, sr.ContentLength))
		wantCode(t, err, "XAmzContentSHA256Mismatch")
		if n == len(body) {
			t.Fatal("all bytes were returned despite the mismatch")
		}
	})
	t.Run("client side body without EOF on last read", func(t *testing.T) {
		r := &http.Request{Method: "PUT", URL: &url.URL{Path: "/b/k"}, Host: "h", Header: http.Header{},
			Body: io.NopCloser(strings.NewReader("abc")), ContentLength: 3}
		Sign(r, "ak", "sk", "us-east-1", hashHex([]byte("abd")), now)
		if _, err := Verify(ctx, r, lookup, now); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		_, err := io.ReadFull(r.Body, make([]byte, 3))
		wantCode(t, err, "XAmzContentSHA256Mismatch")
	})
	t.Run("upper case hex hash", func(t *testing.T) {
		r := newOddRequest(t, "PUT", [2]string{"/b/k", ""}, "", []byte("hello"))
		Sign(r, "ak", "sk", "us-east-1", strings.ToUpper(hashHex([]byte("hello"))), now)
		sr := wire(t, r)
		if _, err := Verify(ctx, sr, lookup, now); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if b, err := io.ReadAll(sr.Body); err != nil || string(b) != "hello" {
			t.Fatalf("body = %q, %v", b, err)
		}
	})
	t.Run("unsigned payload", func(t *testing.T) {
		r := newOddRequest(t, "PUT", [2]string{"/b/k", ""}, "", []byte("anything"))
		Sign(r, "ak", "sk", "us-east-1", UnsignedPayload, now)
		sr := wire(t, r)
		res, err := Verify(ctx, sr, lookup, now)
		if err != nil || res.PayloadHash != UnsignedPayload {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		if b, err := io.ReadAll(sr.Body); err != nil || string(b) != "anything" {
			t.Fatalf("body = %q, %v", b, err)
		}
	})
	t.Run("invalid payload hash", func(t *testing.T) {
		for _, h := range []string{"abc", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", strings.Repeat("g", 64)} {
			r := newOddRequest(t, "PUT", [2]string{"/b/k", ""}, "", []byte("x"))
			Sign(r, "ak", "sk", "us-east-1", h, now)
			_, err := Verify(ctx, wire(t, r), lookup, now)
			wantCode(t, err, "InvalidArgument")
		}
	})
	// Requests signed without x-amz-content-sha256 (host;x-amz-date only).
	signNoHash := func(body string) *http.Request {
		r := newOddRequest(t, "PUT", [2]string{"/b/k", ""}, "", []byte(body))
		amzDate := now.Format(amzDateLayout)
		r.Header.Set("X-Amz-Date", amzDate)
		r.Header.Set("Authorization", authorization(r, "ak", "sk", "us-east-1", EmptyPayloadHash, amzDate, []string{"host", "x-amz-date"}))
		return wire(t, r)
	}
	t.Run("missing hash, empty body", func(t *testing.T) {
		res, err := Verify(ctx, signNoHash(""), lookup, now)
		if err != nil || res.PayloadHash != EmptyPayloadHash {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
	})
	t.Run("missing hash, with body", func(t *testing.T) {
		_, err := Verify(ctx, signNoHash("data"), lookup, now)
		wantCode(t, err, "MissingSecurityHeader")
	})
}

func TestClockSkewAndKeys(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	signed := func(ak, secret string, at time.Time) *http.Request {
		r := newOddRequest(t, "GET", [2]string{"/b/k", ""}, "", nil)
		Sign(r, ak, secret, "us-east-1", EmptyPayloadHash, at)
		return wire(t, r)
	}
	lookup := keys("ak", "sk")
	for _, d := range []time.Duration{-MaxClockSkew, -time.Minute, 0, MaxClockSkew} {
		if _, err := Verify(ctx, signed("ak", "sk", now.Add(d)), lookup, now); err != nil {
			t.Errorf("skew %s: %v", d, err)
		}
	}
	for _, d := range []time.Duration{-MaxClockSkew - time.Second, MaxClockSkew + time.Second, 24 * time.Hour} {
		_, err := Verify(ctx, signed("ak", "sk", now.Add(d)), lookup, now)
		wantCode(t, err, "RequestTimeTooSkewed")
	}
	_, err := Verify(ctx, signed("nobody", "sk", now), lookup, now)
	wantCode(t, err, "InvalidAccessKeyId")
	_, err = Verify(ctx, signed("ak", "wrong", now), lookup, now)
	wantCode(t, err, "SignatureDoesNotMatch")

	boom := errors.New("database down")
	_, err = Verify(ctx, signed("ak", "sk", now), func(context.Context, string) (string, error) { return "", boom }, now)
	if !errors.Is(err, boom) || errors.As(err, new(*Error)) {
		t.Fatalf("lookup failure: err = %v, want wrapped %v and not *Error", err, boom)
	}

	r := newOddRequest(t, "GET", [2]string{"/b/k", ""}, "", nil)
	_, err = Verify(ctx, r, lookup, now)
	wantCode(t, err, "AccessDenied")

	// An x-amz-* header added after signing is refused.
	sr := signed("ak", "sk", now)
	sr.Header.Set("X-Amz-Copy-Source", "/secret/object")
	e := wantCode(t, func() error { _, err := Verify(ctx, sr, lookup, now); return err }(), "AccessDenied")
	if !strings.Contains(e.Message, "x-amz-copy-source") {
		t.Fatalf("message %q does not name the header", e.Message)
	}
}

func TestMalformedAuthorization(t *testing.T) {
	const cred = "Credential=" + exAccessKey + "/" + exScope
	const sh = "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"
	const sig = "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	cases := []struct {
		name, auth, code string
	}{
		{"valid (control)", "AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sig, ""},
		{"valid no spaces", "AWS4-HMAC-SHA256 " + cred + "," + sh + "," + sig, ""},
		{"empty", "", "AccessDenied"},
		{"algorithm only", "AWS4-HMAC-SHA256", "AuthorizationHeaderMalformed"},
		{"algorithm and space", "AWS4-HMAC-SHA256 ", "AuthorizationHeaderMalformed"},
		{"no space after algorithm", "AWS4-HMAC-SHA256" + cred + "," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"missing algorithm", cred + "," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"sigv2", "AWS " + exAccessKey + ":frJIUN8DYpKDtOLCwo//yllqDzg=", "InvalidArgument"},
		{"sigv4a", "AWS4-ECDSA-P256-SHA256 " + cred + "," + sh + "," + sig, "InvalidArgument"},
		{"missing credential", "AWS4-HMAC-SHA256 " + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"missing signed headers", "AWS4-HMAC-SHA256 " + cred + "," + sig, "AuthorizationHeaderMalformed"},
		{"missing signature", "AWS4-HMAC-SHA256 " + cred + "," + sh, "AuthorizationHeaderMalformed"},
		{"duplicate signature", "AWS4-HMAC-SHA256 " + cred + "," + sh + "," + sig + "," + sig, "AuthorizationHeaderMalformed"},
		{"unknown component", "AWS4-HMAC-SHA256 " + cred + "," + sh + "," + sig + ",Foo=bar", "AuthorizationHeaderMalformed"},
		{"component without =", "AWS4-HMAC-SHA256 " + cred + "," + sh + "," + sig + ",junk", "AuthorizationHeaderMalformed"},
		{"lower-case component", "AWS4-HMAC-SHA256 credential=" + exAccessKey + "/" + exScope + "," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"short credential", "AWS4-HMAC-SHA256 Credential=" + exAccessKey + "/20130524/us-east-1/s3," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"empty access key", "AWS4-HMAC-SHA256 Credential=/" + exScope + "," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"bad credential date", "AWS4-HMAC-SHA256 Credential=" + exAccessKey + "/2013-5-24/us-east-1/s3/aws4_request," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"credential date mismatch", "AWS4-HMAC-SHA256 Credential=" + exAccessKey + "/20130525/us-east-1/s3/aws4_request," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"empty region", "AWS4-HMAC-SHA256 Credential=" + exAccessKey + "/20130524//s3/aws4_request," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"empty service", "AWS4-HMAC-SHA256 Credential=" + exAccessKey + "/20130524/us-east-1//aws4_request," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"bad terminator", "AWS4-HMAC-SHA256 Credential=" + exAccessKey + "/20130524/us-east-1/s3/aws4_reques," + sh + "," + sig, "AuthorizationHeaderMalformed"},
		{"empty signed headers", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=," + sig, "AuthorizationHeaderMalformed"},
		{"signed headers without host", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=range;x-amz-date," + sig, "AuthorizationHeaderMalformed"},
		{"signed headers empty name", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host;;x-amz-date," + sig, "AuthorizationHeaderMalformed"},
		{"signature not hex", "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=" + strings.Repeat("z", 64), "AuthorizationHeaderMalformed"},
		{"signature short", "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=f0e8", "AuthorizationHeaderMalformed"},
		{"signature empty", "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=", "AuthorizationHeaderMalformed"},
		{"signature wrong", "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=" + strings.Repeat("0", 64), "SignatureDoesNotMatch"},
		{"unsigned x-amz header", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host;range;x-amz-date," + sig, "AccessDenied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := strings.Replace(awsVectors()[0].raw(), "Authorization: AWS4-HMAC-SHA256 Credential="+exAccessKey+"/"+exScope+
				",SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
				"Authorization: "+c.auth, 1)
			if c.auth == "" {
				raw = strings.Replace(raw, "Authorization: \r\n", "", 1)
			}
			_, err := Verify(context.Background(), parseRaw(t, raw), exLookup, exNow)
			if c.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantCode(t, err, c.code)
		})
	}
	t.Run("bad dates", func(t *testing.T) {
		for _, d := range []string{"x-amz-date: 2013-05-24T00:00:00Z", "x-amz-date: 20130524T000000", "x-amz-date: 20130524T000000Z0"} {
			raw := strings.Replace(awsVectors()[0].raw(), "x-amz-date: 20130524T000000Z", d, 1)
			_, err := Verify(context.Background(), parseRaw(t, raw), exLookup, exNow)
			wantCode(t, err, "AccessDenied")
		}
		raw := strings.Replace(awsVectors()[0].raw(), "x-amz-date: 20130524T000000Z\r\n", "", 1)
		_, err := Verify(context.Background(), parseRaw(t, raw), exLookup, exNow)
		wantCode(t, err, "AccessDenied")
	})
	t.Run("two Authorization headers", func(t *testing.T) {
		raw := strings.Replace(awsVectors()[0].raw(), "Range:", "Authorization: x\r\nRange:", 1)
		_, err := Verify(context.Background(), parseRaw(t, raw), exLookup, exNow)
		wantCode(t, err, "InvalidArgument")
	})
}

// ---- aws-chunked ----

// chunkSigner signs aws-chunked chunks as described in "Signature
// Calculations for the Authorization Header: Transferring Payload in
// Multiple Chunks", independently of the package's implementation.
type chunkSigner struct {
	key     []byte
	amzDate string
	scope   string
	prev    string
}

func newChunkSigner(secret, amzDate, region, seed string) *chunkSigner {
	mac := func(k []byte, s string) []byte {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), amzDate[:8])
	k = mac(k, region)
	k = mac(k, "s3")
	k = mac(k, "aws4_request")
	return &chunkSigner{key: k, amzDate: amzDate, scope: amzDate[:8] + "/" + region + "/s3/aws4_request", prev: seed}
}

// chunk returns the encoded chunk for data and its signature.
func (c *chunkSigner) chunk(data []byte) ([]byte, string) {
	empty := sha256.Sum256(nil)
	sum := sha256.Sum256(data)
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.amzDate + "\n" + c.scope + "\n" + c.prev + "\n" +
		hex.EncodeToString(empty[:]) + "\n" + hex.EncodeToString(sum[:])
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(sts))
	c.prev = hex.EncodeToString(m.Sum(nil))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(data), c.prev)
	b.Write(data)
	b.WriteString("\r\n")
	return b.Bytes(), c.prev
}

// encode returns the aws-chunked body for the given chunks plus the final
// empty chunk, and the chunk signatures.
func (c *chunkSigner) encode(chunks ...[]byte) ([]byte, []string) {
	var body []byte
	var sigs []string
	for _, d := range append(chunks, nil) {
		b, s := c.chunk(d)
		body = append(body, b...)
		sigs = append(sigs, s)
	}
	return body, sigs
}

const (
	streamSeed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
	streamHead = "PUT /examplebucket/chunkObject.txt HTTP/1.1\r\n" +
		"Host: s3.amazonaws.com\r\n" +
		"x-amz-date: 20130524T000000Z\r\n" +
		"x-amz-storage-class: REDUCED_REDUNDANCY\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=" + exAccessKey + "/" + exScope +
		",SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class" +
		",Signature=" + streamSeed + "\r\n" +
		"x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD\r\n" +
		"Content-Encoding: aws-chunked\r\n" +
		"x-amz-decoded-content-length: 66560\r\n" +
		"Content-Length: 66824\r\n\r\n"
)

// streamExample returns the AWS chunked upload example body: 64 KiB and
// 1 KiB of 'a', then the final chunk.
func streamExample(t *testing.T) []byte {
	t.Helper()
	body, sigs := newChunkSigner(exSecret, "20130524T000000Z", "us-east-1", streamSeed).
		encode(bytes.Repeat([]byte("a"), 65536), bytes.Repeat([]byte("a"), 1024))
	want := []string{
		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
	}
	for i := range want {
		if sigs[i] != want[i] {
			t.Fatalf("test helper: chunk %d signature %s, AWS example says %s", i, sigs[i], want[i])
		}
	}
	if len(body) != 66824 {
		t.Fatalf("test helper: encoded length %d, AWS example says 66824", len(body))
	}
	return body
}

func TestStreamingAWSExample(t *testing.T) {
	body := streamExample(t)
	r := parseRaw(t, streamHead+string(body))
	res, err := Verify(context.Background(), r, exLookup, exNow)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.PayloadHash != StreamingPayload || res.Region != "us-east-1" {
		t.Fatalf("Result = %+v", res)
	}
	if r.ContentLength != 66560 {
		t.Fatalf("ContentLength = %d, want 66560", r.ContentLength)
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" {
		t.Fatalf("Content-Encoding = %q, want aws-chunked removed", ce)
	}
	got, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
		t.Fatalf("decoded %d bytes, want 66560 'a'", len(got))
	}
	if err := r.Body.Close(); err != nil {
		t.Fatal(err)
	}
}

// readStream verifies the example head with body and reads it all.
func readStream(t *testing.T, head string, body []byte) ([]byte, error) {
	t.Helper()
	r := parseRaw(t, head+string(body))
	if _, err := Verify(context.Background(), r, exLookup, exNow); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return io.ReadAll(r.Body)
}

func TestStreamingTampered(t *testing.T) {
	body := streamExample(t)
	first := 88 + 65536 + 2 // length of the first encoded chunk

	t.Run("data in second chunk", func(t *testing.T) {
		b := bytes.Clone(body)
		b[first+86+10] = 'b'
		got, err := readStream(t, streamHead, b)
		wantCode(t, err, "SignatureDoesNotMatch")
		if len(got) != 65536 {
			t.Fatalf("read %d bytes before the error, want only the verified first chunk (65536)", len(got))
		}
	})
	t.Run("data in first chunk", func(t *testing.T) {
		b := bytes.Clone(body)
		b[100] = 'b'
		got, err := readStream(t, streamHead, b)
		wantCode(t, err, "SignatureDoesNotMatch")
		if len(got) != 0 {
			t.Fatalf("read %d unverified bytes", len(got))
		}
	})
	t.Run("chunk signature", func(t *testing.T) {
		b := bytes.Clone(body)
		b[first+20] ^= 1 // inside the second chunk's signature, still hex
		if b[first+20] < '0' || b[first+20] > 'f' {
			b[first+20] = '0'
		}
		_, err := readStream(t, streamHead, b)
		wantCode(t, err, "SignatureDoesNotMatch")
	})
	t.Run("final chunk signature", func(t *testing.T) {
		b := bytes.Clone(body)
		i := len(b) - 10
		b[i] = flipHex(string(b[i:i+1]), 0)[0]
		got, err := readStream(t, streamHead, b)
		wantCode(t, err, "SignatureDoesNotMatch")
		if len(got) != 65536 {
			t.Fatalf("read %d bytes; the last data chunk must be withheld until the final chunk verifies", len(got))
		}
	})
	t.Run("chunks reordered", func(t *testing.T) {
		c := newChunkSigner(exSecret, "20130524T000000Z", "us-east-1", streamSeed)
		one, _ := c.chunk(bytes.Repeat([]byte("a"), 1024))
		two, _ := c.chunk(bytes.Repeat([]byte("a"), 65536))
		last, _ := c.chunk(nil)
		b := append(append(bytes.Clone(two), one...), last...)
		_, err := readStream(t, streamHead, b)
		wantCode(t, err, "SignatureDoesNotMatch")
	})
	t.Run("wrong seed", func(t *testing.T) {
		b, _ := newChunkSigner(exSecret, "20130524T000000Z", "us-east-1", strings.Repeat("0", 64)).
			encode(bytes.Repeat([]byte("a"), 65536), bytes.Repeat([]byte("a"), 1024))
		_, err := readStream(t, streamHead, b)
		wantCode(t, err, "SignatureDoesNotMatch")
	})
}

func TestStreamingTruncated(t *testing.T) {
	body := streamExample(t)
	for _, n := range []int{0, 1, 50, 88, 1000, 88 + 65536, 88 + 65537, 88 + 65538, 66000, len(body) - 86, len(body) - 40, len(body) - 2, len(body) - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			// Content-Length still says 66824: the connection ends early.
			_, err := readStream(t, streamHead, body[:n])
			wantCode(t, err, "IncompleteBody")
		})
	}
	t.Run("reader stopping at decoded length", func(t *testing.T) {
		// Without the final chunk, even io.ReadFull of exactly the decoded
		// length fails: the last data is withheld until the final chunk.
		r := parseRaw(t, streamHead+string(body[:len(body)-86]))
		if _, err := Verify(context.Background(), r, exLookup, exNow); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		buf := make([]byte, 66560)
		n, err := io.ReadFull(r.Body, buf)
		wantCode(t, err, "IncompleteBody")
		if n != 65536 {
			t.Fatalf("read %d bytes, want 65536", n)
		}
	})
}

// streamRequest signs a streaming upload with Sign and returns the server
// side request for the given aws-chunked body.
func streamRequest(t *testing.T, decodedLen int, body func(seed string) []byte, now time.Time) *http.Request {
	t.Helper()
	r := newOddRequest(t, "PUT", [2]string{"/b/stream ü+", ""}, "partNumber=1&uploadId=x%2By", nil)
	r.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(decodedLen))
	r.Header.Set("Content-Encoding", "aws-chunked,gzip")
	Sign(r, "ak", "sk", "eu-central-1", StreamingPayload, now)
	seed := r.Header.Get("Authorization")
	seed = seed[strings.LastIndex(seed, "=")+1:]
	b := body(seed)
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	return wire(t, r)
}

func TestStreamingRoundTrip(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	lookup := keys("ak", "sk")
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sizes := range [][]int{{}, {1}, {8192, 8192, 3}, {100000, 7}, {1 << 20}} {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			var chunks [][]byte
			var all []byte
			for _, n := range sizes {
				d := make([]byte, n)
				for i := range d {
					d[i] = byte(rng.IntN(256))
				}
				chunks = append(chunks, d)
				all = append(all, d...)
			}
			sr := streamRequest(t, len(all), func(seed string) []byte {
				b, _ := newChunkSigner("sk", now.Format(amzDateLayout), "eu-central-1", seed).encode(chunks...)
				return b
			}, now)
			if _, err := Verify(context.Background(), sr, lookup, now); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if sr.ContentLength != int64(len(all)) || sr.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("ContentLength %d Content-Encoding %q", sr.ContentLength, sr.Header.Get("Content-Encoding"))
			}
			// Read in odd sizes to exercise buffering.
			var got []byte
			buf := make([]byte, 777)
			for {
				n, err := sr.Body.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("read: %v", err)
				}
			}
			if !bytes.Equal(got, all) {
				t.Fatalf("decoded %d bytes, want %d", len(got), len(all))
			}
		})
	}
}

func TestStreamingMalformed(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	lookup := keys("ak", "sk")
	data := []byte("hello world")
	amzDate := now.Format(amzDateLayout)
	cases := []struct {
		name    string
		decoded int
		body    func(seed string) []byte
		code    string
	}{
		{"decoded length too small", 5, func(seed string) []byte {
			b, _ := newChunkSigner("sk", amzDate, "eu-central-1", seed).encode(data)
			return b
		}, "InvalidArgument"},
		{"decoded length too large", 50, func(seed string) []byte {
			b, _ := newChunkSigner("sk", amzDate, "eu-central-1", seed).encode(data)
			return b
		}, "IncompleteBody"},
		{"chunk too large", 1 << 30, func(seed string) []byte {
			return []byte(fmt.Sprintf("%x;chunk-signature=%s\r\n", MaxChunkSize+1, strings.Repeat("0", 64)))
		}, "InvalidArgument"},
		{"size not hex", 11, func(seed string) []byte {
			return []byte("zz;chunk-signature=" + strings.Repeat("0", 64) + "\r\n")
		}, "InvalidArgument"},
		{"negative size", 11, func(seed string) []byte {
			return []byte("-1;chunk-signature=" + strings.Repeat("0", 64) + "\r\n")
		}, "InvalidArgument"},
		{"huge size", 11, func(seed string) []byte {
			return []byte("ffffffffffffffffff;chunk-signature=" + strings.Repeat("0", 64) + "\r\n")
		}, "InvalidArgument"},
		{"no signature", 11, func(seed string) []byte { return []byte("b\r\nhello world\r\n0\r\n\r\n") }, "InvalidArgument"},
		{"bare LF", 11, func(seed string) []byte {
			return []byte("b;chunk-signature=" + strings.Repeat("0", 64) + "\n")
		}, "InvalidArgument"},
		{"short signature", 11, func(seed string) []byte { return []byte("b;chunk-signature=abcd\r\n") }, "InvalidArgument"},
		{"line too long", 11, func(seed string) []byte {
			return []byte("b;chunk-signature=" + strings.Repeat("0", 5000) + "\r\n")
		}, "InvalidArgument"},
		{"no CRLF after data", 11, func(seed string) []byte {
			b, _ := newChunkSigner("sk", amzDate, "eu-central-1", seed).chunk(data)
			b[len(b)-2] = 'x'
			return b
		}, "InvalidArgument"},
		{"data after final chunk", 11, func(seed string) []byte {
			b, _ := newChunkSigner("sk", amzDate, "eu-central-1", seed).encode(data)
			return append(b, "junk"...)
		}, "InvalidArgument"},
		{"no final chunk", 11, func(seed string) []byte {
			b, _ := newChunkSigner("sk", amzDate, "eu-central-1", seed).chunk(data)
			return b
		}, "IncompleteBody"},
		{"empty body", 11, func(seed string) []byte { return nil }, "IncompleteBody"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sr := streamRequest(t, c.decoded, c.body, now)
			if _, err := Verify(context.Background(), sr, lookup, now); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			_, err := io.ReadAll(sr.Body)
			wantCode(t, err, c.code)
		})
	}
	t.Run("missing decoded length", func(t *testing.T) {
		r := newOddRequest(t, "PUT", [2]string{"/b/k", ""}, "", []byte("x"))
		Sign(r, "ak", "sk", "eu-central-1", StreamingPayload, now)
		_, err := Verify(context.Background(), wire(t, r), lookup, now)
		wantCode(t, err, "MissingSecurityHeader")
	})
	t.Run("bad decoded length", func(t *testing.T) {
		r := newOddRequest(t, "PUT", [2]string{"/b/k", ""}, "", []byte("x"))
		r.Header.Set("X-Amz-Decoded-Content-Length", "-3")
		Sign(r, "ak", "sk", "eu-central-1", StreamingPayload, now)
		_, err := Verify(context.Background(), wire(t, r), lookup, now)
		wantCode(t, err, "InvalidArgument")
	})
}

// ---- robustness ----

// mutate returns s with a few random byte edits.
func mutate(rng *rand.Rand, s []byte) []byte {
	b := bytes.Clone(s)
	for n := 1 + rng.IntN(4); n > 0 && len(b) > 0; n-- {
		i := rng.IntN(len(b))
		switch rng.IntN(4) {
		case 0:
			b[i] = byte(rng.IntN(256))
		case 1:
			b = append(b[:i], b[i+1:]...)
		case 2:
			const special = "/;,=&%\r\n 0a"
			b = append(b[:i], append([]byte{special[rng.IntN(len(special))]}, b[i:]...)...)
		case 3:
			b = b[:i]
		}
	}
	return b
}

// verifyAndDrain runs Verify and reads the body; it must not panic.
func verifyAndDrain(raw []byte) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return
	}
	if _, err := Verify(context.Background(), r, exLookup, exNow); err != nil {
		var e *Error
		if !errors.As(err, &e) {
			panic(fmt.Sprintf("non-*Error from Verify with a working Lookup: %v", err))
		}
		return
	}
	io.Copy(io.Discard, r.Body)
}

func TestNeverPanics(t *testing.T) {
	seeds := [][]byte{[]byte(streamHead + string(streamExample(t)))}
	for _, v := range awsVectors() {
		seeds = append(seeds, []byte(v.raw()))
	}
	rng := rand.New(rand.NewPCG(42, 7))
	for i := 0; i < 3000; i++ {
		s := seeds[i%len(seeds)]
		verifyAndDrain(mutate(rng, s))
	}
	// Mutate only the chunked body, keeping the signed head valid.
	body := streamExample(t)
	for i := 0; i < 500; i++ {
		b := mutate(rng, body)
		r := parseRaw(t, streamHead+string(b))
		if _, err := Verify(context.Background(), r, exLookup, exNow); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		got, err := io.ReadAll(r.Body)
		if err == nil && !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
			t.Fatalf("mutated body decoded without error to %d bytes", len(got))
		}
		if err != nil && !errors.As(err, new(*Error)) {
			t.Fatalf("read error %v is not *Error", err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	for _, v := range awsVectors() {
		f.Add([]byte(v.raw()))
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=host,Signature=00\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) { verifyAndDrain(raw) })
}

// A reader with room for whole chunks (a PUT reading into its shard
// blocks) gets them read in place rather than through a buffer: the same
// bytes, and the same guarantee that none is returned before its chunk
// (and, for the last, the final chunk) verified.
func TestStreamingReadSizes(t *testing.T) {
	body := streamExample(t)
	first := 88 + 65536 + 2
	tamper := map[string]struct {
		at   int
		want int // bytes returned before the error
	}{
		"intact":              {-1, 66560},
		"data in first chunk": {100, 0},
		"data in second":      {first + 86 + 10, 65536},
	}
	for _, size := range []int{100, 65536, 1 << 20} {
		for name, tc := range tamper {
			t.Run(fmt.Sprintf("%s/reads of %d", name, size), func(t *testing.T) {
				b := bytes.Clone(body)
				if tc.at >= 0 {
					b[tc.at] = 'b'
				}
				r := parseRaw(t, streamHead+string(b))
				if _, err := Verify(context.Background(), r, exLookup, exNow); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				var got []byte
				buf := make([]byte, size)
				var err error
				for err == nil {
					var n int
					n, err = r.Body.Read(buf)
					got = append(got, buf[:n]...)
				}
				if tc.at < 0 && err != io.EOF || tc.at >= 0 && err == io.EOF {
					t.Fatalf("read ended with %v", err)
				}
				if len(got) != tc.want || !bytes.Equal(got, bytes.Repeat([]byte("a"), tc.want)) {
					t.Fatalf("read %d bytes, want %d of 'a'", len(got), tc.want)
				}
			})
		}
	}
}

// BenchmarkStreamingRead decodes the AWS example's aws-chunked body (a
// 64 KiB and a 1 KiB chunk) into a 1 MiB block, as a PUT reads its body
// into shard blocks.
func BenchmarkStreamingRead(b *testing.B) {
	body, _ := newChunkSigner(exSecret, "20130524T000000Z", "us-east-1", streamSeed).
		encode(bytes.Repeat([]byte("a"), 65536), bytes.Repeat([]byte("a"), 1024))
	raw := streamHead + string(body)
	buf := make([]byte, 1<<20)
	b.SetBytes(66560)
	for b.Loop() {
		r := parseRaw(b, raw)
		if _, err := Verify(context.Background(), r, exLookup, exNow); err != nil {
			b.Fatal(err)
		}
		if n, err := io.ReadFull(r.Body, buf); n != 66560 || err != io.ErrUnexpectedEOF {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}

// BenchmarkStreamingRead16 decodes 1 MiB in sixteen 64 KiB chunks,
// minio-go's, into a 1 MiB block: the per-chunk work of a large PUT
// (SHA-256 of the data and the chunk's HMAC) against the bytes.
func BenchmarkStreamingRead16(b *testing.B) {
	const chunk, size = 64 << 10, 1 << 20
	req, _ := http.NewRequest("PUT", "http://s3.local/bkt/obj", nil)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(size))
	Sign(req, exAccessKey, exSecret, "us-east-1", StreamingPayload, exNow)
	auth := req.Header.Get("Authorization")
	chunks := make([][]byte, size/chunk)
	for i := range chunks {
		chunks[i] = bytes.Repeat([]byte("a"), chunk)
	}
	body, _ := newChunkSigner(exSecret, req.Header.Get("X-Amz-Date"), "us-east-1", auth[strings.LastIndex(auth, "=")+1:]).encode(chunks...)
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	var raw strings.Builder
	if err := req.Write(&raw); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, size+1)
	b.SetBytes(size)
	for b.Loop() {
		r := parseRaw(b, raw.String())
		if _, err := Verify(context.Background(), r, exLookup, exNow); err != nil {
			b.Fatal(err)
		}
		if n, err := io.ReadFull(r.Body, buf); n != size || err != io.ErrUnexpectedEOF {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}
