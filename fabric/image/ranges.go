package image

import (
	"errors"
	"strconv"
	"strings"
)

// Image data is served with single byte ranges (glanceclient resumes
// downloads with them). The object store's front ends have their own
// HTTP helpers; the image service does not borrow them.

// errRange means a Range header cannot be satisfied.
var errRange = errors.New("the requested range is not satisfiable")

// parseRange reads a Range header for data of size bytes: the window to
// send and whether it is partial. A header it does not handle (several
// ranges, other units) means the whole data, as RFC 9110 allows.
func parseRange(h string, size int64) (offset, length int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	if first == "" { // a suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		switch {
		case err != nil || n < 0:
			return 0, size, false, nil
		case n == 0:
			return 0, 0, false, errRange
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	lo, err := strconv.ParseInt(first, 10, 64)
	if err != nil || lo < 0 {
		return 0, size, false, nil
	}
	hi := size - 1
	if last != "" {
		if hi, err = strconv.ParseInt(last, 10, 64); err != nil || hi < lo {
			return 0, size, false, nil
		}
		hi = min(hi, size-1)
	}
	if lo >= size {
		return 0, 0, false, errRange
	}
	return lo, hi - lo + 1, true, nil
}

// contentRange is the Content-Range header of a partial response.
func contentRange(offset, length, size int64) string {
	return "bytes " + strconv.FormatInt(offset, 10) + "-" + strconv.FormatInt(offset+length-1, 10) + "/" + strconv.FormatInt(size, 10)
}
