package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	md5simd "github.com/minio/md5-simd"

	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// The ceiling: an S3 endpoint that does only the work S3 requires of
// any server for an upload -- read the body, verify its signature (every
// chunk of a streaming-SigV4 body, with storage/s3's own verifier) and
// compute the MD5 that is its ETag -- then throws the bytes away. minio-go
// drives it with the same objects and concurrency as the PUT phase of the
// SDK cases, in the same run, so its PUT figure is the most any S3 server
// could reach for this client on this machine: where it is under a PUT
// target, no storage behind the S3 API can meet that target here. Its
// GET phase reads those objects back, sent from memory (one buffer of
// zeros written again and again, as no server could send faster): the
// most any S3 server could serve this client.
//
// It runs in a process of its own (rackbench itself, started again with
// ceilingEnv set), so that its CPU time per MiB is measured apart from
// the client's, as rackd's and MinIO's are. It answers what minio-go
// sends in a PUT and a GET phase: bucket create and delete, PutObject,
// the three calls of a multipart upload, GetObject and DeleteObject;
// anything else is 501.

const (
	ceilingName   = "ceiling"
	ceilingEnv    = "RACKBENCH_PUT_CEILING"
	ceilingAccess = "ceiling"
	ceilingSecret = "ceiling-secret"
	// ceilingSIMDHashers is how many bodies (the one choosing included)
	// must be hashing when a body's first ceilingFirstStripe bytes are in
	// for it to share the md5simd server, as blob.Store.Put chooses at a
	// write's first stripe (4+2, 1 MiB shards).
	ceilingSIMDHashers = 3
	ceilingFirstStripe = 4 << 20
)

func init() {
	if os.Getenv(ceilingEnv) == "" {
		return
	}
	// The ceiling process: serve until rackbench closes our stdin.
	if err := serveCeiling(); err != nil {
		fmt.Fprintln(os.Stderr, "rackbench put ceiling:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serveCeiling() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cs := &ceilingServer{access: ceilingAccess, secret: ceilingSecret, md5s: md5simd.NewServer()}
	defer cs.md5s.Close()
	srv := &http.Server{Handler: cs, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	fmt.Println(l.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	return srv.Close()
}

type ceilingServer struct {
	access  string
	secret  string
	uploads atomic.Int64
	// The MD5s are hashed as rackd hashes them (blob.Store.MD5): in the
	// lanes of one md5simd server if, once a body's first stripe is in,
	// at least three bodies are hashing, and on crypto/md5 otherwise:
	// the lanes cost less per MiB with three streams or more, and more
	// with one or two.
	hashing atomic.Int64
	md5s    md5simd.Server
	stripes sync.Pool // of *[]byte, ceilingFirstStripe long
	mu      sync.Mutex
	sizes   map[string]int64 // of the objects and of the uploads' parts so far
}

// size changes the size recorded for an object or upload by n, and
// returns it.
func (cs *ceilingServer) size(name string, n int64) int64 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.sizes == nil {
		cs.sizes = map[string]int64{}
	}
	cs.sizes[name] += n
	return cs.sizes[name]
}

func (cs *ceilingServer) forget(name string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.sizes, name)
}

// zeros is what the ceiling's GETs send: the bytes of an object are not
// kept, only its size.
var zeros = make([]byte, 1<<20)

// startCeiling starts the ceiling process on a loopback port and returns
// a target for sdkCeiling.
func startCeiling() (*sdkTarget, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ceilingEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		stdin.Close()
		cmd.Wait()
	}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("ceiling process: no address: %w", err)
	}
	c, err := sdkClient("http://"+strings.TrimSpace(addr), ceilingAccess, ceilingSecret)
	if err != nil {
		stop()
		return nil, err
	}
	return &sdkTarget{name: ceilingName, pid: cmd.Process.Pid, client: c, stop: stop}, nil
}

func (cs *ceilingServer) lookup(_ context.Context, access string) (string, error) {
	if access != cs.access {
		return "", sigv4.ErrUnknownAccessKey
	}
	return cs.secret, nil
}

func (cs *ceilingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := sigv4.Verify(r.Context(), r, cs.lookup, time.Now()); err != nil {
		ceilingError(w, err)
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && key == "":
		w.WriteHeader(http.StatusOK) // bucket created
	case r.Method == http.MethodDelete:
		cs.forget(r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && key != "":
		// The most any server could send: no disk, no copy, one
		// buffer written again and again.
		n := cs.size(r.URL.Path, 0)
		h := w.Header()
		h.Set("Content-Length", strconv.FormatInt(n, 10))
		h.Set("ETag", `"ceiling"`)
		h.Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
		for n > 0 {
			m, err := w.Write(zeros[:min(n, int64(len(zeros)))])
			if err != nil {
				return
			}
			n -= int64(m)
		}
	case r.Method == http.MethodPost && q.Has("uploads"):
		id := fmt.Sprintf("u%d", cs.uploads.Add(1))
		ceilingXML(w, struct {
			XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
			Bucket   string   `xml:"Bucket"`
			Key      string   `xml:"Key"`
			UploadID string   `xml:"UploadId"`
		}{Bucket: bucket, Key: key, UploadID: id})
	case r.Method == http.MethodPut:
		// An object or a part: the body, verified, into MD5.
		cs.hashing.Add(1)
		bp, _ := cs.stripes.Get().(*[]byte)
		if bp == nil {
			b := make([]byte, ceilingFirstStripe)
			bp = &b
		}
		first, err := io.ReadFull(r.Body, *bp)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
		}
		var h hash.Hash = md5.New()
		if first > 0 && cs.hashing.Load() >= ceilingSIMDHashers {
			sh := cs.md5s.NewHash()
			defer sh.Close()
			h = sh
		}
		h.Write((*bp)[:first])
		cs.stripes.Put(bp)
		var n int64
		if err == nil {
			n, err = io.Copy(h, r.Body)
		}
		n += int64(first)
		cs.hashing.Add(-1)
		if err != nil {
			ceilingError(w, err)
			return
		}
		if id := q.Get("uploadId"); id != "" {
			cs.size(id, n)
		} else {
			cs.size(r.URL.Path, n)
		}
		w.Header().Set("ETag", `"`+hex.EncodeToString(h.Sum(nil))+`"`)
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		// Complete: the ETag of a multipart object is the MD5 of its
		// parts' MD5s, which the client sent in this body.
		h := md5.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			ceilingError(w, err)
			return
		}
		id := q.Get("uploadId")
		cs.size(r.URL.Path, cs.size(id, 0))
		cs.forget(id)
		ceilingXML(w, struct {
			XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
			Bucket  string   `xml:"Bucket"`
			Key     string   `xml:"Key"`
			ETag    string   `xml:"ETag"`
		}{Bucket: bucket, Key: key, ETag: `"` + hex.EncodeToString(h.Sum(nil)) + `-1"`})
	default:
		http.Error(w, "the ceiling answers the PUT and GET phases only", http.StatusNotImplemented)
	}
}

func ceilingXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	xml.NewEncoder(w).Encode(v)
}

func ceilingError(w http.ResponseWriter, err error) {
	code, status := "InternalError", http.StatusInternalServerError
	var se *sigv4.Error
	if errors.As(err, &se) {
		code, status = se.Code, se.Status
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}{Code: code, Message: err.Error()})
}
