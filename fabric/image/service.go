// Package image is Rackstack's Glance v2: images, their data, tags,
// members, the JSON schemas clients fetch, and the metadata definitions
// catalog (metadefs.go).
//
// Image metadata lives in the replicated state; image bytes are objects in
// a container of the object store that only this service writes, streamed
// through (never held whole in memory) while their MD5 and SHA-512 are
// computed. The compute side reads images through Load, Visible and Open;
// it never goes through HTTP.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

// Objects is what the service needs of the object store.
type Objects interface {
	Container(ctx context.Context, project, name string) (*object.Container, error)
	PutContainer(ctx context.Context, c object.Container, mustCreate bool) (bool, error)
	Put(ctx context.Context, project, container, name string, r io.Reader, o object.PutOptions) (*object.Object, error)
	Head(ctx context.Context, project, container, name string) (*object.Object, error)
	Read(ctx context.Context, o *object.Object, offset, length int64, w io.Writer) error
	Delete(ctx context.Context, project, container, name string) error
	List(ctx context.Context, project, container string, o object.ListOptions) ([]object.Entry, bool, error)
}

// Config configures the image service.
type Config struct {
	Repl    store.Replicated
	Auth    api.Authenticator
	Objects Objects
	Log     *slog.Logger
	Now     func() time.Time
	// Node is this node's name: uploads record where they run, so that a
	// restarted node can give back the uploads it lost.
	Node string
	// IsLeader says whether this node does the cluster-wide cleanups
	// (default: always). NodeLost says whether a node has been gone long
	// enough that uploads it was running are abandoned (default: never).
	IsLeader func() bool
	NodeLost func(node string) bool
	// Account and Container hold the image data (default
	// "rackstack-images" / "glance"). Account is an object store project
	// no Keystone project has: only admins reach it through Swift.
	Account, Container string
	// MaxImageSize bounds an upload (default 1 TiB, Glance's
	// image_size_cap).
	MaxImageSize int64
	// PublicURL is the base of links (default: the URL the client used);
	// Prefix is where the handler is mounted (default /image).
	PublicURL string
	Prefix    string
	// ImportFilter is what URLs the web-download import may fetch
	// (default DefaultImportFilter).
	ImportFilter *ImportFilter
}

// Service serves Glance v2.
type Service struct {
	cfg Config
	log *slog.Logger
	// run tells this process's uploads from those of the node's earlier
	// lives.
	run string
	// containerReady is set once the data container is known to exist.
	containerReady atomic.Bool
	// web-download: what it may fetch and how; bg is the context of the
	// fetches that outlive their requests, downloads bounds how many run.
	importFilter ImportFilter
	fetcher      *http.Client
	bg           context.Context
	downloads    chan struct{}
	// live holds the upload ids of the fetches and the uploads this
	// process runs.
	live sync.Map
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	base, err := cfg.base().Check("image")
	if err != nil {
		return nil, err
	}
	cfg.Log, cfg.Now, cfg.Prefix = base.Log, base.Now, base.Prefix
	if cfg.Objects == nil {
		return nil, errors.New("image: Config.Objects is required")
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return true }
	}
	if cfg.NodeLost == nil {
		cfg.NodeLost = func(string) bool { return false }
	}
	if cfg.Account == "" {
		cfg.Account = "rackstack-images"
	}
	if cfg.Container == "" {
		cfg.Container = "glance"
	}
	if cfg.MaxImageSize == 0 {
		cfg.MaxImageSize = 1 << 40
	}
	filter := DefaultImportFilter()
	if cfg.ImportFilter != nil {
		filter = *cfg.ImportFilter
	}
	return &Service{cfg: cfg, log: cfg.Log, run: api.NewHexID(), importFilter: filter, fetcher: filter.client(),
		bg: context.Background(), downloads: make(chan struct{}, webDownloads)}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

// base is the part of the configuration every service on the kit has.
func (c Config) base() api.Base {
	return api.Base{Repl: c.Repl, Auth: c.Auth, Log: c.Log, Now: c.Now, PublicURL: c.PublicURL, Prefix: c.Prefix}
}

// Handler serves Glance under the prefix the caller strips (/image): "/"
// and "/versions" are version discovery, "/v2/..." the API.
func (s *Service) Handler() http.Handler {
	return api.Routes{Auth: s.cfg.Auth, Errors: writeError, Denied: policyDenied, Service: "image"}.Router(s.routes())
}

// routes is Glance's API and its policy. Most routes need only a token:
// whether the caller may see or change an image depends on the image
// (its owner, visibility and members), which the handlers check.
func (s *Service) routes() []api.Route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
		token                      = api.Authenticated
	)
	return append([]api.Route{
		{Method: get, Path: "/", Access: api.Public, Handle: s.versions(http.StatusMultipleChoices)},
		{Method: get, Path: "/versions", Access: api.Public, Handle: s.versions(http.StatusOK)},

		{Method: get, Path: "/v2/images", Access: token, Rule: "get_images", Handle: s.listImages},
		{Method: post, Path: "/v2/images", Access: api.Member, Rule: "add_image", Handle: s.createImage},
		{Method: get, Path: "/v2/images/{id}", Access: token, Rule: "get_image", Handle: s.showImage},
		{Method: patch, Path: "/v2/images/{id}", Access: token, Rule: "modify_image", Handle: s.updateImage},
		{Method: del, Path: "/v2/images/{id}", Access: token, Rule: "delete_image", Handle: s.deleteImage},
		{Method: put, Path: "/v2/images/{id}/file", Access: token, Rule: "upload_image", Handle: s.upload},
		{Method: put, Path: "/v2/images/{id}/stage", Access: token, Rule: "upload_image", Handle: s.stage},
		{Method: post, Path: "/v2/images/{id}/import", Access: token, Rule: "import_image", Handle: s.importImage},
		{Method: get, Path: "/v2/images/{id}/tasks", Access: token, Rule: "get_image", Handle: s.imageTasks},
		{Method: get, Path: "/v2/tasks", Access: api.Admin, Rule: "get_tasks", Handle: s.listTasks},
		{Method: post, Path: "/v2/tasks", Access: api.Admin, Rule: "add_task", Handle: s.createTask},
		{Method: get, Path: "/v2/tasks/{id}", Access: api.Admin, Rule: "get_task", Handle: s.showTask},
		{Method: get, Path: "/v2/images/{id}/file", Access: token, Rule: "download_image", Handle: s.download},
		{Method: post, Path: "/v2/images/{id}/actions/deactivate", Access: token, Rule: "deactivate", Handle: s.setActive(false)},
		{Method: post, Path: "/v2/images/{id}/actions/reactivate", Access: token, Rule: "reactivate", Handle: s.setActive(true)},
		{Method: put, Path: "/v2/images/{id}/tags/{tag}", Access: token, Rule: "modify_image", Handle: s.addTag},
		{Method: del, Path: "/v2/images/{id}/tags/{tag}", Access: token, Rule: "modify_image", Handle: s.deleteTag},

		{Method: get, Path: "/v2/images/{id}/members", Access: token, Rule: "get_members", Handle: s.listMembers},
		{Method: post, Path: "/v2/images/{id}/members", Access: token, Rule: "add_member", Handle: s.createMember},
		{Method: get, Path: "/v2/images/{id}/members/{member}", Access: token, Rule: "get_member", Handle: s.showMember},
		{Method: put, Path: "/v2/images/{id}/members/{member}", Access: token, Rule: "modify_member", Handle: s.updateMember},
		{Method: del, Path: "/v2/images/{id}/members/{member}", Access: token, Rule: "delete_member", Handle: s.deleteMember},

		{Method: get, Path: "/v2/schemas/{name}", Access: token, Handle: s.showSchema},
		{Method: get, Path: "/v2/info/import", Access: token, Handle: s.importInfo},
		{Method: get, Path: "/v2/info/stores", Access: token, Handle: func(http.ResponseWriter, *http.Request) error {
			return api.Errorf(http.StatusNotFound, "Multi backend is not supported at this site.")
		}},
	}, s.metadefRoutes()...)
}

// baseURL is where this API is reached, mount prefix included.
func (s *Service) baseURL(r *http.Request) string { return s.cfg.base().URL(r) }

// apiVersions are the Glance API versions served, newest first: import
// (2.6), os_hidden and os_hash_* (2.7), and the image's tasks (2.12).
// 2.8 is multiple stores, which Glance too leaves out with one store;
// 2.9-2.11 add only multiple-store import and deletion, refused here
// with one store as Glance refuses them.
var apiVersions = []string{"2.12", "2.11", "2.10", "2.9", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"}

// versions answers discovery as Glance does: 300 at the root, 200 at
// /versions.
func (s *Service) versions(status int) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		out := make([]any, 0, len(apiVersions))
		for i, v := range apiVersions {
			st := "SUPPORTED"
			if i == 0 {
				st = "CURRENT"
			}
			out = append(out, map[string]any{"id": "v" + v, "status": st,
				"links": []any{map[string]any{"rel": "self", "href": s.baseURL(r) + "/v2/"}}})
		}
		api.JSON(w, status, map[string]any{"versions": out})
		return nil
	}
}

// Shared plumbing of the handlers.

func principal(r *http.Request) *api.Principal { return api.PrincipalFrom(r.Context()) }

// visible reports whether p may see and use img: everyone sees public and
// community images, a project its own images and the shared images it is
// a member of (whatever its answer), an admin everything.
func visible(p *api.Principal, img *Image) bool {
	switch {
	case p.IsAdmin(), img.Visibility == VisibilityPublic, img.Visibility == VisibilityCommunity:
		return true
	case p.CanRead(img.Owner):
		return true
	case img.Visibility == VisibilityShared && p.ProjectID != "" && p.HasRole("reader"):
		return img.MemberOf(p.ProjectID) != nil
	}
	return false
}

// Visible reports whether p may see and boot img. It does not look at the
// status: a caller that needs the data also checks img.Status ==
// StatusActive.
func (s *Service) Visible(p *api.Principal, img *Image) bool { return visible(p, img) }

// Get returns image id if p may see it, else an error matching
// store.ErrNotFound; it reads with read-your-writes. Callers that boot or
// copy the image also check its Status.
func (s *Service) Get(ctx context.Context, p *api.Principal, id string) (*Image, error) {
	return s.find(ctx, p, id)
}

// find reads the image id as p sees it: 404 if p may not see it.
func (s *Service) find(ctx context.Context, p *api.Principal, id string) (*Image, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil, err
	}
	img := store.Get[Image](tx, tImages, id)
	if img == nil || !visible(p, img) {
		return nil, notFound(id)
	}
	return img.Clone(), nil
}

// mutate changes image id with change, which gets a copy of the current
// row, and stores the result if nothing changed it meanwhile (else it
// reads again and retries). change returning an error stops it.
func (s *Service) mutate(ctx context.Context, id string, change func(img *Image) error) (*Image, error) {
	for attempt := 0; ; attempt++ {
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return nil, err
		}
		cur := store.Get[Image](tx, tImages, id)
		if cur == nil {
			return nil, notFound(id)
		}
		img := cur.Clone()
		if err := change(img); err != nil {
			return nil, err
		}
		res, err := s.cfg.Repl.Propose(ctx, imagestate.CmdPut, imagestate.PutCmd{Row: *img, Revision: cur.Revision})
		if imagestate.IsStale(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		var out Image
		if err := res.Decode(&out); err != nil {
			return nil, err
		}
		return &out, nil
	}
}

// Open streams the data of image id, for the compute side: no
// authorization (the caller checked Visible), any status with data.
func (s *Service) Open(ctx context.Context, id string) (io.ReadCloser, Image, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil, Image{}, err
	}
	img, err := Load(tx, id)
	if err != nil {
		return nil, Image{}, err
	}
	if !img.HasData() {
		return nil, *img, fmt.Errorf("open image %s: %w", id, ErrNoData)
	}
	o, err := s.cfg.Objects.Head(ctx, s.cfg.Account, s.cfg.Container, img.Object)
	if err != nil {
		return nil, *img, fmt.Errorf("open image %s: %w", id, err)
	}
	pr, pw := io.Pipe()
	go func() {
		// Ends when the data is read, the reader is closed (the write
		// fails) or ctx ends.
		pw.CloseWithError(s.cfg.Objects.Read(ctx, o, 0, o.Size, pw))
	}()
	return pr, *img, nil
}

func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
