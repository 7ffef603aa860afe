package object

import (
	"context"
	"errors"
	"io"
)

// CopyPart stores part n of an upload with bytes [offset, offset+length)
// of src (S3's UploadPartCopy), read through the erasure coding as Copy
// reads, so a degraded source still gives a whole part. The part is a new
// blob of its own, written and named exactly as PutPart names an uploaded
// one: completing, listing and aborting the upload treat it alike.
func (s *Service) CopyPart(ctx context.Context, u *Upload, n int, src *Object, offset, length int64) (*UploadPart, error) {
	if offset < 0 || length < 0 || offset+length > src.Size {
		return nil, badField("x-amz-copy-source-range", "bytes %d-%d are outside the source's %d bytes", offset, offset+length-1, src.Size)
	}
	pr, pw := io.Pipe()
	read := make(chan error, 1)
	go func() {
		err := s.Read(ctx, src, offset, length, pw)
		pw.CloseWithError(err)
		read <- err
	}()
	p, err := s.PutPart(ctx, u, n, pr, length, "")
	pr.Close() // a failed write stops the read
	rerr := <-read
	if err != nil && rerr != nil && !errors.Is(rerr, io.ErrClosedPipe) {
		// The source could not be read: that is the cause, not the
		// "body" the part write saw end early.
		return nil, rerr
	}
	return p, err
}
