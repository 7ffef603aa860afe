package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/storage/object"
)

// openImageService builds the Glance service: image data goes into the
// object store, uploads that die with a lost node are given back after
// --heal-after.
func openImageService(o *options, node *cluster.Node, auth api.Authenticator, objects *object.Service, log *slog.Logger) (*image.Service, error) {
	filter, err := o.imageImportFilter()
	if err != nil {
		return nil, err
	}
	return image.New(image.Config{
		Repl: node, Auth: auth, Objects: objects, Log: log, Node: o.Name, PublicURL: o.PublicURL,
		IsLeader:     node.IsLeader,
		NodeLost:     func(name string) bool { return node.DownFor(name) > o.HealAfter },
		ImportFilter: &filter,
	})
}

// importFilterOpts are the --image-import-* flags, comma-separated lists.
type importFilterOpts struct {
	AllowedSchemes, DisallowedSchemes, AllowedHosts, DisallowedHosts, AllowedPorts, DisallowedPorts string
}

// importFilterFlags declares the web-download import's filter, Glance's
// [import_filtering_opts] with its defaults.
func importFilterFlags(str func(p *string, name, def, help string), f *importFilterOpts) {
	const what = " the image web-download import may fetch from (comma-separated; an allowed list wins over the disallowed one)"
	str(&f.AllowedSchemes, "image-import-allowed-schemes", "http,https", "URL schemes"+what)
	str(&f.DisallowedSchemes, "image-import-disallowed-schemes", "", "URL schemes it may not fetch from, when no scheme is allowed by name")
	str(&f.AllowedHosts, "image-import-allowed-hosts", "", "hosts"+what+"; a host resolving to a loopback, private or link-local address is fetched from only when named here")
	str(&f.DisallowedHosts, "image-import-disallowed-hosts", "", "hosts it may not fetch from, when no host is allowed by name")
	str(&f.AllowedPorts, "image-import-allowed-ports", "80,443", "ports"+what)
	str(&f.DisallowedPorts, "image-import-disallowed-ports", "", "ports it may not fetch from, when no port is allowed by number")
}

// imageImportFilter is the filter the --image-import-* flags say.
func (o *options) imageImportFilter() (image.ImportFilter, error) {
	f := o.ImportFilter
	list := func(s string) []string {
		var out []string
		for _, v := range strings.Split(s, ",") {
			if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
				out = append(out, v)
			}
		}
		return out
	}
	ports := func(name, s string) ([]int, error) {
		var out []int
		for _, v := range list(s) {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("--%s: %q is not a port", name, v)
			}
			out = append(out, n)
		}
		return out, nil
	}
	allowed, err := ports("image-import-allowed-ports", f.AllowedPorts)
	if err != nil {
		return image.ImportFilter{}, err
	}
	disallowed, err := ports("image-import-disallowed-ports", f.DisallowedPorts)
	if err != nil {
		return image.ImportFilter{}, err
	}
	return image.ImportFilter{AllowedSchemes: list(f.AllowedSchemes), DisallowedSchemes: list(f.DisallowedSchemes),
		AllowedHosts: list(f.AllowedHosts), DisallowedHosts: list(f.DisallowedHosts), AllowedPorts: allowed, DisallowedPorts: disallowed}, nil
}

// computeImages is the image service as server create sees it.
type computeImages struct{ images *image.Service }

var _ compute.Images = computeImages{}

func (c computeImages) Get(ctx context.Context, p *api.Principal, id string) (compute.ImageInfo, error) {
	img, err := c.images.Get(ctx, p, id)
	if err != nil {
		return compute.ImageInfo{}, err
	}
	return compute.ImageInfo{ID: img.ID, Name: img.Name, Status: img.Status, MinDisk: img.MinDisk, MinRAM: img.MinRAM, Size: img.Size,
		DiskFormat: img.DiskFormat, Properties: img.Properties}, nil
}
