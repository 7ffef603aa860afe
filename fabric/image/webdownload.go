package image

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/storage/object"
)

// The web-download import method: the cloud fetches the image's data
// from a URL itself. Which URLs it may fetch is the operator's
// ImportFilter (Glance's [import_filtering_opts]); the data is hashed
// and bounded as an upload's; the import is a task whose failure puts
// the image back to queued.

// ImportFilter is Glance's import filtering: an allowed list wins over
// the disallowed one of the same kind; an empty allowed list allows all
// but the disallowed. Beyond Glance, a host that resolves to a loopback,
// private, link-local or otherwise internal address is refused unless
// AllowedHosts names it: a tenant must not make the cloud fetch from
// inside its own network (the check is on the address connected to, so
// a name that later resolves elsewhere, or a redirect, does not get
// around it).
type ImportFilter struct {
	AllowedSchemes, DisallowedSchemes []string
	AllowedHosts, DisallowedHosts     []string
	AllowedPorts, DisallowedPorts     []int
}

// DefaultImportFilter is Glance's default: http and https on ports 80
// and 443.
func DefaultImportFilter() ImportFilter {
	return ImportFilter{AllowedSchemes: []string{"http", "https"}, AllowedPorts: []int{80, 443}}
}

func passes[T comparable](allowed, disallowed []T, v T) bool {
	if len(allowed) > 0 {
		return slices.Contains(allowed, v)
	}
	return !slices.Contains(disallowed, v)
}

// Check says why u may not be fetched, or nil.
func (f ImportFilter) Check(u *url.URL) error {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return fmt.Errorf("scheme %q cannot be fetched (http and https can)", u.Scheme)
	}
	if !passes(f.AllowedSchemes, f.DisallowedSchemes, scheme) {
		return fmt.Errorf("scheme %s is not allowed", scheme)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return errors.New("the URL has no host")
	}
	if !passes(f.AllowedHosts, f.DisallowedHosts, host) {
		return fmt.Errorf("host %s is not allowed", host)
	}
	port := 80
	if scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a port", p)
		}
		port = n
	}
	if !passes(f.AllowedPorts, f.DisallowedPorts, port) {
		return fmt.Errorf("port %d is not allowed", port)
	}
	if ip, err := netip.ParseAddr(host); err == nil && internal(ip) && !f.named(host) {
		return fmt.Errorf("address %s is internal", ip)
	}
	return nil
}

// named reports whether AllowedHosts names host.
func (f ImportFilter) named(host string) bool {
	return slices.Contains(f.AllowedHosts, strings.ToLower(host))
}

var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// internal reports whether ip is not a public unicast address.
func internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || sharedAddressSpace.Contains(ip)
}

// client is an HTTP client that fetches only what f allows, at every
// redirect and on every address it connects to. It uses no proxy: the
// check is on the address the data comes from.
func (f ImportFilter) client() *http.Client {
	dialer := &net.Dialer{Timeout: 15 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, _, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				named := f.named(host)
				d := *dialer
				d.Control = func(_, address string, _ syscall.RawConn) error {
					ap, err := netip.ParseAddrPort(address)
					if err != nil {
						return err
					}
					if internal(ap.Addr()) && !named {
						return fmt.Errorf("%s resolves to the internal address %s", host, ap.Addr())
					}
					return nil
				}
				return d.DialContext(ctx, network, addr)
			},
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: time.Minute,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if err := f.Check(req.URL); err != nil {
				return fmt.Errorf("redirect to %s does not pass filtering: %w", req.URL.Redacted(), err)
			}
			return nil
		},
	}
}

// stallTimeout ends a fetch that has received nothing for this long.
const stallTimeout = time.Minute

// stallReader cancels its fetch when a read has waited stallTimeout.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.timer.Reset(stallTimeout)
	n, err := s.r.Read(p)
	return n, err
}

// webDownloads bounds the fetches one node runs at once; the others
// wait their turn, their tasks processing.
const webDownloads = 4

// fetchInto fetches uri into the image's data object and returns it
// with the digests of what was fetched.
func (s *Service) fetchInto(ctx context.Context, id, upload, uri string) (*object.Object, *digester, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, nil, err
	}
	if err := s.importFilter.Check(u); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := s.fetcher.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("the server answered %s", resp.Status)
	}
	if resp.ContentLength > s.cfg.MaxImageSize {
		return nil, nil, fmt.Errorf("%d bytes are more than the %d an image may have", resp.ContentLength, s.cfg.MaxImageSize)
	}
	if err := s.ensureContainer(ctx); err != nil {
		return nil, nil, err
	}
	timer := time.AfterFunc(stallTimeout, cancel)
	defer timer.Stop()
	d := newDigester(&stallReader{r: resp.Body, timer: timer}, s.cfg.MaxImageSize)
	o, err := s.cfg.Objects.Put(ctx, s.cfg.Account, s.cfg.Container, dataObject(id, upload), d, object.PutOptions{Size: resp.ContentLength})
	switch {
	case errors.Is(err, errTooLarge):
		return nil, nil, fmt.Errorf("the data is more than the %d bytes an image may have", s.cfg.MaxImageSize)
	case err != nil && ctx.Err() != nil:
		return nil, nil, fmt.Errorf("the fetch stalled or was cut short after %d bytes: %w", d.n, err)
	case err != nil:
		return nil, nil, fmt.Errorf("after %d bytes: %w", d.n, err)
	}
	return o, d, nil
}

// webDownload runs the import of task t: fetch, then make the data the
// image's and the task a success in one command; on failure, the task a
// failure and the image queued again (if it still runs this upload).
func (s *Service) webDownload(t Task, uri string) {
	defer s.live.Delete(t.Upload)
	ctx := s.bg
	s.downloads <- struct{}{}
	defer func() { <-s.downloads }()
	o, d, err := s.fetchInto(ctx, t.ImageID, t.Upload, uri)
	if err != nil {
		s.failImport(ctx, t, fmt.Sprintf("Import of %s failed: %v", u(uri), err))
		return
	}
	_, err = s.taskChange(ctx, t, false, t.ImageID, func(img *Image, task *Task) error {
		if img == nil || img.UploadID != t.Upload || img.Status != imagestate.StatusImporting {
			return errLostImport
		}
		clearUpload(img, StatusActive, s.now())
		img.Object, img.Size = o.Name, d.n
		img.Checksum = hexSum(d.md5)
		img.HashAlgo, img.HashValue = hashAlgo, hexSum(d.sha)
		img.VirtualSize = d.virtualSize(img.DiskFormat)
		s.endTask(task, imagestate.TaskSuccess, "")
		return nil
	})
	if err == nil {
		return
	}
	if errors.Is(err, errLostImport) {
		// Deleted (or given back) while the data came: the data, this
		// upload's own object, has no image.
		if derr := s.cfg.Objects.Delete(ctx, s.cfg.Account, s.cfg.Container, o.Name); derr != nil {
			s.log.Warn("delete data of a lost import; the sweeper will retry", "image", t.ImageID, "err", derr)
		}
	}
	// A failure whose outcome is unknown is proposed as a failure that
	// holds only if the success did not: an ended task is not written
	// again, and the image is put back only if it still runs this upload.
	s.failImport(ctx, t, fmt.Sprintf("Import of %s failed: %v", u(uri), err))
}

var errLostImport = errors.New("the image was deleted or its import given back while its data was fetched")

// u is uri without its password, for messages.
func u(uri string) string {
	if p, err := url.Parse(uri); err == nil {
		return p.Redacted()
	}
	return uri
}

// failImport ends task t in failure and puts its image back to queued
// if the image still runs the task's upload.
func (s *Service) failImport(ctx context.Context, t Task, message string) {
	_, err := s.taskChange(ctx, t, false, t.ImageID, func(img *Image, task *Task) error {
		s.endTask(task, imagestate.TaskFailure, message)
		if img == nil || img.UploadID != t.Upload || t.Upload == "" {
			return errKeepImage
		}
		clearUpload(img, StatusQueued, s.now())
		return nil
	})
	if err != nil {
		s.log.Warn("record a failed image import", "image", t.ImageID, "task", t.ID, "err", err)
	}
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// fetching reports whether a fetch of this process runs upload.
func (s *Service) fetching(upload string) bool {
	_, ok := s.live.Load(upload)
	return ok
}
