package image

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object"
)

// hashAlgo is the os_hash_algo of every image, Glance's default.
const hashAlgo = "sha512"

// digester passes a stream through while hashing and counting it, and
// keeps its first bytes to read a disk header from.
type digester struct {
	r      io.Reader
	md5    hash.Hash
	sha    hash.Hash
	n      int64
	head   [512]byte
	headN  int
	maxLen int64
}

var (
	errTooLarge = errors.New("image data exceeds the size limit")
	errCutShort = errors.New("image data cut short")
)

func newDigester(r io.Reader, maxLen int64) *digester {
	return &digester{r: r, md5: md5.New(), sha: sha512.New(), maxLen: maxLen}
}

func (d *digester) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if n > 0 {
		d.md5.Write(p[:n])
		d.sha.Write(p[:n])
		if d.headN < len(d.head) {
			d.headN += copy(d.head[d.headN:], p[:n])
		}
		d.n += int64(n)
		if d.n > d.maxLen {
			return n, errTooLarge
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The body ended before its declared end: the store below takes
		// an unexpected EOF for an ordinary end of its input.
		return n, errCutShort
	}
	return n, err
}

// virtualSize is the size of the disk the data describes, 0 if unknown.
func (d *digester) virtualSize(format string) int64 {
	switch format {
	case "raw", "iso":
		return d.n
	case "qcow2":
		// QCOW2 header: magic "QFI\xfb", then at offset 24 the virtual
		// size, big-endian.
		if d.headN >= 32 && string(d.head[:4]) == "QFI\xfb" {
			return int64(binary.BigEndian.Uint64(d.head[24:32]))
		}
	}
	return 0
}

// clearUpload ends the upload of img, leaving status.
func clearUpload(img *Image, status string, now time.Time) {
	img.Status = status
	img.UploadID, img.UploadNode, img.UploadRun, img.UploadStarted = "", "", "", time.Time{}
	img.UpdatedAt = now
}

// ensureContainer makes the data container on first use.
func (s *Service) ensureContainer(ctx context.Context) error {
	if s.containerReady.Load() {
		return nil
	}
	if _, err := s.cfg.Objects.Container(ctx, s.cfg.Account, s.cfg.Container); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if _, err := s.cfg.Objects.PutContainer(ctx, object.Container{Project: s.cfg.Account, Name: s.cfg.Container}, false); err != nil {
			return err
		}
	}
	s.containerReady.Store(true)
	return nil
}

// clientMD5 reads a Content-MD5 header (base64 as RFC 1864 says, or hex)
// into hex; "" when absent.
func clientMD5(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", nil
	}
	if len(h) == 32 {
		if _, err := hex.DecodeString(h); err == nil {
			return strings.ToLower(h), nil
		}
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil || len(raw) != md5.Size {
		return "", badRequest("Content-MD5 must be the MD5 of the data, in base64 or hex.")
	}
	return hex.EncodeToString(raw), nil
}

// upload is PUT /v2/images/{id}/file: the data, stored and the image
// active at once.
func (s *Service) upload(w http.ResponseWriter, r *http.Request) error {
	return s.receive(w, r, false)
}

// stage is PUT /v2/images/{id}/stage, the first half of Glance's
// interoperable import (glance-direct): the data is stored and checked
// as an upload's, and the image stays uploading until POST .../import
// makes it active (import.go).
func (s *Service) stage(w http.ResponseWriter, r *http.Request) error {
	return s.receive(w, r, true)
}

// receive stores a request's body as a queued image's data: its data at
// once, or its staged data when staging. While the body streams the
// image is saving (uploading when staging), marked with the upload.
func (s *Service) receive(w http.ResponseWriter, r *http.Request, staging bool) error {
	ctx := r.Context()
	streaming := StatusSaving
	if staging {
		streaming = StatusUploading
	}
	wantMD5, err := s.checkUpload(r)
	if err != nil {
		return err
	}
	if err := s.ensureContainer(ctx); err != nil {
		return err
	}
	uploadID := api.NewHexID()
	// Live before it can be seen, until the request ends: an upload of
	// this process that is not live is given back (unreceivedUpload).
	s.live.Store(uploadID, true)
	defer s.live.Delete(uploadID)
	img, err := s.change(r, "upload_image", func(img *Image) error {
		if img.Status != StatusQueued {
			return conflict("Image status transition from %s to %s is not allowed", img.Status, streaming)
		}
		if img.DiskFormat == "" || img.ContainerFormat == "" {
			return badRequest("Properties disk_format, container_format must be set prior to saving data.")
		}
		img.Status = streaming
		img.UploadID, img.UploadNode, img.UploadRun, img.UploadStarted = uploadID, s.cfg.Node, s.run, s.now()
		return nil
	})
	if err != nil {
		return err
	}
	size := r.ContentLength
	if r.Header.Get("Content-Length") == "" {
		size = -1
	}
	d := newDigester(r.Body, s.cfg.MaxImageSize)
	// The blob store bounds how long the body may take to fill a stripe,
	// so a client that trickles its image does not hold a stripe's blocks
	// (shared by every transfer of the node) for as long as it takes.
	bodyCtx := blob.WithBodyDeadline(ctx, http.NewResponseController(w).SetReadDeadline)
	o, err := s.cfg.Objects.Put(bodyCtx, s.cfg.Account, s.cfg.Container, dataObject(img.ID, uploadID), d, object.PutOptions{Size: size, MD5: wantMD5})
	// Whatever happens next must happen even if the client went away.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err != nil {
		s.abortUpload(bg, img.ID, uploadID)
		// A read that hit the body deadline also ends the request's
		// context, but the client is still there to be told.
		if ctx.Err() != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			s.log.Info("image upload cut short", "image", img.ID, "bytes", d.n)
			return nil
		}
		return s.storeError(err, d, size)
	}
	if err := s.finishUpload(bg, img.ID, uploadID, o, d, staging); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkUpload checks an upload's headers and returns the MD5 the client
// says the data has ("" if none).
func (s *Service) checkUpload(r *http.Request) (string, error) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/octet-stream" {
		return "", api.Errorf(http.StatusUnsupportedMediaType, "Unsupported Content-Type %q: image data is application/octet-stream.", r.Header.Get("Content-Type"))
	}
	if r.ContentLength > s.cfg.MaxImageSize {
		return "", tooLarge("Image exceeds the storage quota: %d bytes are more than the %d allowed.", r.ContentLength, s.cfg.MaxImageSize)
	}
	return clientMD5(r.Header.Get("Content-MD5"))
}

// storeError is what the client is told when the object store did not
// take the data of an upload.
func (s *Service) storeError(err error, d *digester, size int64) error {
	switch {
	case errors.Is(err, errTooLarge):
		return tooLarge("Image exceeds the storage quota: more than %d bytes.", s.cfg.MaxImageSize)
	case errors.Is(err, object.ErrBadDigest):
		return badRequest("Checksum verification failed: the data does not match its Content-MD5.")
	case errors.Is(err, blob.ErrSource) && errors.Is(err, os.ErrDeadlineExceeded):
		return api.Errorf(http.StatusRequestTimeout, "The image data came too slowly: %d bytes arrived before the server stopped waiting.", d.n)
	case errors.Is(err, object.ErrIncomplete), errors.Is(err, errCutShort), errors.Is(err, blob.ErrSource):
		return badRequest("The image data was cut short: %d of %d bytes arrived.", d.n, size)
	case errors.Is(err, object.ErrNoDisks):
		// The cloud has no disk to store data on (yet): the client may
		// retry, it did nothing wrong.
		return fmt.Errorf("store image data: %w", &api.Error{Status: http.StatusServiceUnavailable, Msg: "Image data cannot be stored now: no storage disks are available."})
	}
	return fmt.Errorf("store image data: %w", err)
}

// dataObject names the object an upload stores image id's data in: one
// per upload, so that an upload given back while it still streams (its
// node taken for lost, then back) can neither overwrite the data of the
// upload that made the image active meanwhile nor delete it when it
// finds the image no longer its own. The image's Object (or
// StagedObject) names the object it took; images from before kept their
// data under their id alone.
func dataObject(id, upload string) string { return id + "/" + upload }

// imageOf is the image a data object belongs to.
func imageOf(object string) string {
	id, _, _ := strings.Cut(object, "/")
	return id
}

// finishUpload makes the stored data o the image's and the image active,
// or, staging, the image's staged data, the image still uploading.
func (s *Service) finishUpload(ctx context.Context, id, uploadID string, o *object.Object, d *digester, staging bool) error {
	_, err := s.mutate(ctx, id, func(cur *Image) error {
		if cur.UploadID != uploadID || (cur.Status != StatusSaving && cur.Status != StatusUploading) {
			return store.NotFoundf("upload %s lost its image", uploadID)
		}
		if staging {
			clearUpload(cur, StatusUploading, s.now())
			cur.StagedObject = o.Name
		} else {
			clearUpload(cur, StatusActive, s.now())
			cur.Object = o.Name
		}
		cur.Size = d.n
		cur.Checksum = hex.EncodeToString(d.md5.Sum(nil))
		cur.HashAlgo, cur.HashValue = hashAlgo, hex.EncodeToString(d.sha.Sum(nil))
		cur.VirtualSize = d.virtualSize(cur.DiskFormat)
		return nil
	})
	switch {
	case err == nil:
		return nil
	case !api.Rejected(err):
		// The outcome is unknown: the image may have taken the data. Its
		// upload is given back only if it is still this one; the data
		// stays for the sweeper, which deletes it if no image took it.
		s.abortUpload(ctx, id, uploadID)
		return err
	}
	// The image was deleted (or given back) while the data streamed: the
	// data has no image.
	if derr := s.cfg.Objects.Delete(ctx, s.cfg.Account, s.cfg.Container, o.Name); derr != nil && !errors.Is(derr, store.ErrNotFound) {
		s.log.Warn("delete data of a lost upload; the sweeper will retry", "image", id, "err", derr)
	}
	if errors.Is(err, store.ErrNotFound) {
		return api.Errorf(http.StatusGone, "Image %s could not be found after upload. The image may have been deleted during the upload.", id)
	}
	return err
}

// abortUpload returns the image of a failed upload to queued.
func (s *Service) abortUpload(ctx context.Context, id, uploadID string) {
	_, err := s.mutate(ctx, id, func(img *Image) error {
		if img.UploadID != uploadID || (img.Status != StatusSaving && img.Status != StatusUploading) {
			return errSkip
		}
		clearUpload(img, StatusQueued, s.now())
		return nil
	})
	if err != nil && !errors.Is(err, errSkip) && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("return image of a failed upload to queued", "image", id, "err", err)
	}
}

func (s *Service) download(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	img, err := s.find(r.Context(), p, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if img.Status == StatusDeactivated && !p.IsAdmin() {
		return forbidden("The requested image has been deactivated. Image data download is forbidden.")
	}
	if !img.HasData() {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	o, err := s.cfg.Objects.Head(r.Context(), s.cfg.Account, s.cfg.Container, img.Object)
	if err != nil {
		return fmt.Errorf("find data %s of image %s: %v: %w", img.Object, img.ID, err,
			&api.Error{Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf("The data of image %s cannot be read now.", img.ID)})
	}
	off, n, partial, err := api.ParseRange(r.Header.Get("Range"), o.Size)
	if err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(o.Size, 10))
		return api.Errorf(http.StatusRequestedRangeNotSatisfiable, "Requested range not satisfiable.")
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	saved := h.Clone()
	if img.Checksum != "" {
		h.Set("Content-MD5", img.Checksum)
	}
	err = api.SendRange(w, r, off, n, o.Size, partial, saved, func(w io.Writer) error {
		return s.cfg.Objects.Read(r.Context(), o, off, n, w)
	})
	if err != nil {
		return api.Errorf(http.StatusServiceUnavailable, "The data of image %s cannot be read now.", img.ID)
	}
	return nil
}
