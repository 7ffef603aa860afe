package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// The PUT ceiling: an S3 endpoint that does only the work S3 requires of
// any server for an upload -- read the body, verify its signature (every
// chunk of a streaming-SigV4 body, with storage/s3's own verifier) and
// compute the MD5 that is its ETag -- then throws the bytes away. minio-go
// drives it with the same objects and concurrency as the PUT phase of the
// SDK cases, in the same run, so its PUT figure is the most any S3 server
// could reach for this client on this machine: where it is under a PUT
// target, no storage behind the S3 API can meet that target here.
//
// It runs inside rackbench, so it shares the cores with the client as a
// server on the same machine would. It answers what minio-go sends in a
// PUT phase: bucket create and delete, PutObject, and the three calls of
// a multipart upload; anything else is 501.

const ceilingName = "ceiling"

type ceilingServer struct {
	srv     *http.Server
	access  string
	secret  string
	uploads atomic.Int64
}

// startCeiling serves the ceiling endpoint on a loopback port and returns
// a target for sdkPut.
func startCeiling() (*sdkTarget, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cs := &ceilingServer{access: "ceiling", secret: "ceiling-secret"}
	cs.srv = &http.Server{Handler: cs, ReadHeaderTimeout: 10 * time.Second}
	go cs.srv.Serve(l)
	c, err := sdkClient("http://"+l.Addr().String(), cs.access, cs.secret)
	if err != nil {
		cs.srv.Close()
		return nil, err
	}
	return &sdkTarget{name: ceilingName, client: c, stop: func() { cs.srv.Close() }}, nil
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
		w.WriteHeader(http.StatusNoContent)
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
		h := md5.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			ceilingError(w, err)
			return
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
		ceilingXML(w, struct {
			XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
			Bucket  string   `xml:"Bucket"`
			Key     string   `xml:"Key"`
			ETag    string   `xml:"ETag"`
		}{Bucket: bucket, Key: key, ETag: `"` + hex.EncodeToString(h.Sum(nil)) + `-1"`})
	default:
		http.Error(w, "the PUT ceiling answers PUT phases only", http.StatusNotImplemented)
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
