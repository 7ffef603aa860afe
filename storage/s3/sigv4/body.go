package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// wrapBody replaces r.Body according to the payload hash; see Verify.
func wrapBody(r *http.Request, payload string, key []byte, amzDate string, sc scope, seed []byte) error {
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	switch payload {
	case UnsignedPayload:
		return nil
	case StreamingPayload:
		return wrapChunked(r, body, key, amzDate, sc, seed)
	}
	want, _ := hex.DecodeString(payload) // validated by payloadHash
	if r.ContentLength == 0 && body == http.NoBody {
		if empty := sha256.Sum256(nil); !hmac.Equal(want, empty[:]) {
			return mismatchError()
		}
		return nil
	}
	r.Body = &hashingReader{src: body, h: sha256.New(), want: want, size: r.ContentLength}
	return nil
}

func mismatchError() *Error {
	return newError("XAmzContentSHA256Mismatch", "the provided x-amz-content-sha256 header does not match what was computed from the body")
}

// hashingReader passes a body through while hashing it and fails when the
// body ends (at EOF, or once Content-Length bytes were read) with a hash that
// differs from the signed one. On a mismatch the bytes of the final read are
// withheld, so that even a caller that reads exactly Content-Length bytes
// (io.ReadFull) sees the error.
type hashingReader struct {
	src     io.ReadCloser
	h       hash.Hash
	want    []byte
	size    int64 // Content-Length, or -1 if unknown
	read    int64
	checked bool
	err     error // sticky: io.EOF or the mismatch
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	if hr.err != nil {
		return 0, hr.err
	}
	n, err := hr.src.Read(p)
	if hr.checked && n > 0 {
		// More data than Content-Length: the hash no longer matches.
		hr.err = mismatchError()
		return 0, hr.err
	}
	hr.h.Write(p[:n])
	hr.read += int64(n)
	if !hr.checked && (err == io.EOF || hr.size >= 0 && hr.read >= hr.size) {
		hr.checked = true
		if !hmac.Equal(hr.h.Sum(nil), hr.want) {
			hr.err = mismatchError()
			return 0, hr.err
		}
	}
	if err == io.EOF {
		hr.err = io.EOF
	}
	return n, err
}

func (hr *hashingReader) Close() error { return hr.src.Close() }

// wrapChunked replaces r.Body with an aws-chunked decoder and sets
// r.ContentLength to the decoded length.
func wrapChunked(r *http.Request, body io.ReadCloser, key []byte, amzDate string, sc scope, seed []byte) error {
	v := r.Header.Get("X-Amz-Decoded-Content-Length")
	if v == "" {
		return newError("MissingSecurityHeader", "missing x-amz-decoded-content-length header for %s", StreamingPayload)
	}
	decoded, err := strconv.ParseInt(v, 10, 64)
	if err != nil || decoded < 0 {
		return newError("InvalidArgument", "x-amz-decoded-content-length %q is not a non-negative integer", v)
	}
	cr := &chunkedReader{
		src:      bufio.NewReaderSize(body, maxChunkLine),
		closer:   body,
		mac:      hmac.New(sha256.New, key),
		prefix:   chunkAlgorithm + "\n" + amzDate + "\n" + sc.String() + "\n",
		declared: decoded,
	}
	hex.Encode(cr.prevSig[:], seed)
	r.Body = cr
	r.ContentLength = decoded
	stripAWSChunked(r.Header)
	return nil
}

// stripAWSChunked removes "aws-chunked" from Content-Encoding: it describes
// the transfer, not the object.
func stripAWSChunked(h http.Header) {
	vals := h.Values("Content-Encoding")
	if len(vals) == 0 {
		return
	}
	var keep []string
	for _, v := range vals {
		for enc := range strings.SplitSeq(v, ",") {
			enc = strings.TrimSpace(enc)
			if enc != "" && !strings.EqualFold(enc, "aws-chunked") {
				keep = append(keep, enc)
			}
		}
	}
	if len(keep) == 0 {
		h.Del("Content-Encoding")
		return
	}
	h.Set("Content-Encoding", strings.Join(keep, ","))
}

// chunkedReader decodes an aws-chunked body:
//
//	hex(size);chunk-signature=<64 hex>\r\n <size bytes> \r\n ... 0;chunk-signature=<64 hex>\r\n\r\n
//
// Each chunk is buffered (at most MaxChunkSize) and its signature checked,
// chained from the seed signature, before any of its bytes are returned.
type chunkedReader struct {
	src    *bufio.Reader
	closer io.Closer
	// mac is HMAC-SHA256 under the signing key, Reset for each chunk: a
	// new one per chunk derived the key's pads again, 16 times a MiB.
	mac     hash.Hash
	prefix  string                // the string to sign up to the previous signature
	prevSig [2 * sha256.Size]byte // the previous signature, hex

	declared int64 // x-amz-decoded-content-length
	total    int64 // decoded bytes seen so far
	buf      bytes.Buffer
	pending  []byte // verified bytes not yet returned
	done     bool   // final chunk verified
	err      error  // sticky
}

func (cr *chunkedReader) Read(p []byte) (int, error) {
	for len(cr.pending) == 0 {
		if cr.err != nil {
			return 0, cr.err
		}
		if cr.done {
			return 0, io.EOF
		}
		var n int
		if n, cr.err = cr.nextChunk(p); n > 0 {
			return n, nil
		}
	}
	n := copy(p, cr.pending)
	cr.pending = cr.pending[n:]
	return n, nil
}

func (cr *chunkedReader) Close() error { return cr.closer.Close() }

func incomplete(format string, args ...any) *Error {
	return newError("IncompleteBody", format, args...)
}

func badChunk(format string, args ...any) *Error {
	return newError("InvalidArgument", format, args...)
}

// readErr maps an early end of the body to IncompleteBody and passes other
// read errors (network, size limits) through.
func readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return incomplete("aws-chunked body ended early, while reading %s", what)
	}
	return err
}

// nextChunk reads and verifies the next chunk: into p when it fits there
// (n is then its size: a large read, the shard blocks of a PUT, gets the
// bytes without a copy through a buffer of ours), else into cr.buf, to be
// handed out from pending. When it completes the declared length, the
// final chunk is read and verified too before the data is handed out, so
// a reader stopping at the decoded length still only gets data from a
// complete, fully verified body. p holds unverified bytes after an error:
// the caller gets none of them (n is 0).
func (cr *chunkedReader) nextChunk(p []byte) (n int, err error) {
	data, inPlace, err := cr.readChunk(p, &cr.buf)
	if err != nil {
		return 0, err
	}
	if len(data) == 0 {
		return 0, cr.finish()
	}
	if cr.total == cr.declared {
		var final bytes.Buffer
		if _, _, err := cr.readChunk(nil, &final); err != nil {
			return 0, err
		}
		if err := cr.finish(); err != nil {
			return 0, err
		}
	}
	if inPlace {
		return len(data), nil
	}
	cr.pending = data
	return 0, nil
}

// readChunk reads one chunk, into dst if it fits there and else into buf,
// and verifies its signature, chaining it to the previous one. It returns
// the chunk's data and whether it is in dst.
func (cr *chunkedReader) readChunk(dst []byte, buf *bytes.Buffer) ([]byte, bool, error) {
	size, sig, err := cr.readChunkHeader()
	if err != nil {
		return nil, false, err
	}
	if cr.total+size > cr.declared {
		return nil, false, badChunk("aws-chunked body is longer than x-amz-decoded-content-length %d", cr.declared)
	}
	var data []byte
	inPlace := size <= int64(len(dst))
	if inPlace {
		data = dst[:size]
		if _, err := io.ReadFull(cr.src, data); err != nil {
			return nil, false, readErr(err, "chunk data")
		}
	} else {
		buf.Reset()
		if _, err := io.CopyN(buf, cr.src, size); err != nil {
			return nil, false, readErr(err, "chunk data")
		}
		data = buf.Bytes()
	}
	var crlf [2]byte
	if _, err := io.ReadFull(cr.src, crlf[:]); err != nil {
		return nil, false, readErr(err, "the CRLF after chunk data")
	}
	if crlf != [2]byte{'\r', '\n'} {
		return nil, false, badChunk("aws-chunked chunk data of %d bytes is not followed by CRLF", size)
	}
	want := cr.signature(sha256.Sum256(data))
	if !hmac.Equal(want[:], sig) {
		return nil, false, newError("SignatureDoesNotMatch", "aws-chunked chunk signature does not match (chunk of %d bytes at decoded offset %d)", size, cr.total)
	}
	hex.Encode(cr.prevSig[:], want[:])
	cr.total += size
	return data, inPlace, nil
}

// signature is the signature a chunk whose data hashes to sum must carry:
// the HMAC of its string to sign,
//
//	AWS4-HMAC-SHA256-PAYLOAD \n amz-date \n scope \n previous signature \n
//	hex SHA-256 of "" \n hex SHA-256 of the chunk's data
//
// written into the MAC piece by piece.
func (cr *chunkedReader) signature(sum [sha256.Size]byte) [sha256.Size]byte {
	var sumHex [2 * sha256.Size]byte
	hex.Encode(sumHex[:], sum[:])
	cr.mac.Reset()
	io.WriteString(cr.mac, cr.prefix)
	cr.mac.Write(cr.prevSig[:])
	io.WriteString(cr.mac, "\n"+EmptyPayloadHash+"\n")
	cr.mac.Write(sumHex[:])
	var out [sha256.Size]byte
	cr.mac.Sum(out[:0])
	return out
}

// finish checks the body after the final zero-size chunk.
func (cr *chunkedReader) finish() error {
	if cr.total != cr.declared {
		return incomplete("aws-chunked body has %d decoded bytes, x-amz-decoded-content-length says %d", cr.total, cr.declared)
	}
	if _, err := cr.src.ReadByte(); err != io.EOF {
		if err != nil {
			return err
		}
		return badChunk("aws-chunked body has data after the final chunk")
	}
	cr.done = true
	return nil
}

// readChunkHeader reads "hex-size;chunk-signature=<sig>\r\n".
func (cr *chunkedReader) readChunkHeader() (int64, []byte, error) {
	line, err := cr.src.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return 0, nil, badChunk("aws-chunked chunk header is longer than %d bytes", maxChunkLine)
	}
	if err != nil {
		return 0, nil, readErr(err, "a chunk header")
	}
	s, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return 0, nil, badChunk("aws-chunked chunk header does not end with CRLF")
	}
	sizeHex, ext, ok := strings.Cut(s, ";")
	if !ok {
		return 0, nil, badChunk("aws-chunked chunk header %q has no chunk-signature", s)
	}
	if len(sizeHex) == 0 || len(sizeHex) > 16 {
		return 0, nil, badChunk("aws-chunked chunk size %q is not hex", sizeHex)
	}
	size, err := strconv.ParseUint(sizeHex, 16, 64)
	if err != nil {
		return 0, nil, badChunk("aws-chunked chunk size %q is not hex", sizeHex)
	}
	if size > MaxChunkSize {
		return 0, nil, badChunk("aws-chunked chunk size %d exceeds the maximum of %d", size, MaxChunkSize)
	}
	sigHex, ok := strings.CutPrefix(ext, "chunk-signature=")
	if !ok {
		return 0, nil, badChunk("aws-chunked chunk header %q has no chunk-signature", s)
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) != sha256.Size {
		return 0, nil, badChunk("aws-chunked chunk-signature %q is not 64 hex digits", sigHex)
	}
	return int64(size), sig, nil
}
