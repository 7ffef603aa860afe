package object

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/rackstack/rackstack/fabric/store"
)

// Multipart uploads (S3): parts are blobs of their own; completing an
// upload makes them the parts of one object without copying a byte.

// MinPartSize is the smallest part but the last that S3 allows.
const MinPartSize = 5 << 20

// MaxParts is the highest part number.
const MaxParts = 10000

// CreateUpload starts a multipart upload.
func (s *Service) CreateUpload(ctx context.Context, project, container, name string, a Attrs) (*Upload, error) {
	row := Upload{
		ID: newID(), Project: project, Container: container, Name: name,
		Created: s.now(), ContentType: a.ContentType, Meta: a.Meta, Headers: a.Headers, Tags: a.Tags,
	}
	res, err := s.repl.Propose(ctx, cmdUploadCreate, uploadCreateCmd{Row: row})
	if err != nil {
		return nil, err
	}
	var out Upload
	return &out, res.Decode(&out)
}

// Upload returns an upload of project by id.
func (s *Service) Upload(ctx context.Context, project, container, id string) (*Upload, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	u := store.Get[Upload](tx, tUploads, id)
	if u == nil || u.Project != project || u.Container != container {
		return nil, store.NotFoundf("upload %s not found", id)
	}
	return u, nil
}

// Uploads lists the uploads in progress in a container.
func (s *Service) Uploads(ctx context.Context, project, container, prefix string) ([]*Upload, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Upload
	for _, u := range store.All[Upload](tx, tUploads, "project", project) {
		if u.Container == container && strings.HasPrefix(u.Name, prefix) {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Created.Before(out[j].Created)
	})
	return out, nil
}

// PutPart stores part n of an upload.
func (s *Service) PutPart(ctx context.Context, u *Upload, n int, r io.Reader, size int64, wantMD5 string) (*UploadPart, error) {
	if n < 1 || n > MaxParts {
		return nil, badField("partNumber", "must be between 1 and %d", MaxParts)
	}
	// Shards this write misses are left to the scrubber once the upload
	// completes: the heal queue holds blobs of objects only.
	part, _, err := s.writeBlob(ctx, "", "", r, size, wantMD5)
	if err != nil {
		return nil, err
	}
	row := UploadPart{UploadID: u.ID, Number: n, Modified: s.now(), Part: part}
	if _, err := s.repl.Propose(ctx, cmdUploadPart, uploadPartCmd{Row: row}); err != nil {
		return nil, s.abandon(ctx, cmdUploadPart, []Part{part}, err)
	}
	row.ID = uploadPartID(u.ID, n)
	return &row, nil
}

// Parts lists the parts uploaded so far, by number.
func (s *Service) Parts(ctx context.Context, u *Upload) ([]*UploadPart, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	out := store.All[UploadPart](tx, tUploadParts, "upload", u.ID)
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// CompletePart names a part in a completion request.
type CompletePart struct {
	Number int
	ETag   string
}

// PartTooSmallError says which part broke the minimum size rule.
type PartTooSmallError struct{ Number int }

func (e *PartTooSmallError) Error() string {
	return fmt.Sprintf("part %d is smaller than the minimum allowed size of %d bytes", e.Number, MinPartSize)
}

// CompleteUpload turns the chosen parts into the object; its ETag is
// S3's: the md5 of the parts' binary md5s, then "-" and the part count.
func (s *Service) CompleteUpload(ctx context.Context, u *Upload, parts []CompletePart) (*Object, error) {
	have, err := s.Parts(ctx, u)
	if err != nil {
		return nil, err
	}
	byNum := map[int]*UploadPart{}
	for _, p := range have {
		byNum[p.Number] = p
	}
	cmd := uploadCompleteCmd{Upload: u.ID}
	var sums []byte
	for i, cp := range parts {
		p := byNum[cp.Number]
		if p == nil || strings.Trim(cp.ETag, `"`) != p.Part.ETag {
			return nil, store.Invalidf("part %d was not uploaded or its ETag does not match", cp.Number)
		}
		if i < len(parts)-1 && p.Part.Size < MinPartSize {
			return nil, &PartTooSmallError{Number: cp.Number}
		}
		raw, _ := hex.DecodeString(p.Part.ETag)
		sums = append(sums, raw...)
		cmd.Numbers = append(cmd.Numbers, cp.Number)
		cmd.ETags = append(cmd.ETags, p.Part.ETag)
	}
	cmd.Row = Object{
		Project: u.Project, Container: u.Container, Name: u.Name, Version: u.ID,
		ETag: fmt.Sprintf("%s-%d", md5Hex(sums), len(parts)), Modified: s.now(),
	}
	cmd.Row.setAttrs(Attrs{ContentType: u.ContentType, Meta: u.Meta, Headers: u.Headers, Tags: u.Tags})
	return s.commit(ctx, cmdUploadComplete, cmd, nil)
}

// AbortUpload drops an upload and its parts.
func (s *Service) AbortUpload(ctx context.Context, u *Upload) error {
	_, err := s.repl.Propose(ctx, cmdUploadAbort, idCmd{ID: u.ID, Now: s.now()})
	return err
}
