package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal"
	"github.com/rackstack/rackstack/fabric/buildinfo"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/identity"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/fabric/network"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume"
	"github.com/rackstack/rackstack/node/benchport"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/inventory"
	"github.com/rackstack/rackstack/node/volumes"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/block/blockapi"
	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/object/objectapi"
	"github.com/rackstack/rackstack/storage/s3"
	"github.com/rackstack/rackstack/storage/swift"
)

// catalog lists the services this build runs, as the Keystone catalog
// shows them.
func catalog(o *options) []identity.CatalogService {
	s3 := "/s3"
	if u := o.s3URL(); u != "" {
		s3 = u
	}
	return []identity.CatalogService{
		{Type: "identity", Name: "keystone", Path: "/identity/v3"},
		{Type: "network", Name: "neutron", Path: "/network"},
		{Type: "compute", Name: "nova", Path: "/compute/v2.1"},
		{Type: "image", Name: "glance", Path: "/image"},
		{Type: "baremetal", Name: "ironic", Path: "/baremetal"},
		// Cinder's two service types: cinderclient looks for volumev3,
		// openstacksdk for block-storage.
		{Type: "volumev3", Name: "cinderv3", Path: "/volume/v3/{project_id}"},
		{Type: "block-storage", Name: "cinder", Path: "/volume/v3/{project_id}"},
		{Type: "object-store", Name: "swift", Path: "/object/v1/AUTH_{project_id}"},
		{Type: "s3", Name: "s3", Path: s3},
	}
}

func init() {
	// Swift's COPY is not a standard method; chi answers 405 to methods it
	// does not know.
	chi.RegisterMethod("COPY")
}

// mountSwift serves Swift under /object, and its /info also at the root,
// where Swift serves it and clients (python-swiftclient's capabilities,
// tempest) look for it.
func mountSwift(r chi.Router, h http.Handler) {
	r.Mount("/object", http.StripPrefix("/object", h))
	r.Handle("/info", h)
}

// schemas are the replicated state's parts. volstate's tables are read
// by compute's server views and removal. bmstate's tables are there
// whether or not this build serves the bare-metal API: compute's server
// create claims bare-metal nodes in its own apply.
func schemas() []store.Schema {
	return []store.Schema{cluster.Schema(), identity.Schema(), object.Schema(), block.Schema(), network.Schema(), compute.Schema(), image.Schema(), baremetal.Schema(),
		volume.Schema(), eventstate.Schema()}
}

// forgetCommands are the command types RACKD_FORGET_COMMANDS (a comma
// list) names: this rackd then applies the log as a release without them
// would. Only upgrade tests set it, to stand in for an older rackd.
func forgetCommands() []string {
	var out []string
	for _, t := range strings.Split(os.Getenv("RACKD_FORGET_COMMANDS"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func serve(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	log := newLogger(o.LogLevel, stderr)
	if o.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("no --name and no hostname: %w", err)
		}
		o.Name = h
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// Bind the API first: a port in use should fail before anything is
	// written to the data dir.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	defer ln.Close()
	var s3ln net.Listener
	if o.S3Listen != "off" {
		if s3ln, err = net.Listen("tcp", o.S3Listen); err != nil {
			return fmt.Errorf("listen on %s (--s3-listen): %w", o.S3Listen, err)
		}
		defer s3ln.Close()
	}

	var metricsLn net.Listener
	if o.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", o.MetricsListen); err != nil {
			return fmt.Errorf("listen on %s (--metrics-listen): %w", o.MetricsListen, err)
		}
		defer metricsLn.Close()
	}

	freshBootstrap := o.Bootstrap && !store.HasExistingState(o.DataDir)
	adminPassword := ""
	if o.Bootstrap && !bootstrapped(o.DataDir) {
		adminPassword, err = loadOrCreateAdminPassword(o)
		if err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The join handshake needs the API of an existing member, not ours;
	// ours starts serving once Raft is up.
	node, err := cluster.Open(ctx, cluster.Config{
		Name: o.Name, DataDir: o.DataDir, RaftListen: o.RaftListen, Advertise: o.raftAdvertise(), APIURL: o.apiURL(),
		Bootstrap: o.Bootstrap, JoinURL: o.JoinURL, JoinToken: o.JoinToken, MaxVoters: o.MaxVoters,
		Schemas: schemas(), Forget: forgetCommands(), Log: log, Registry: reg, Inventory: inventory.Read,
		HeartbeatInterval: o.HeartbeatInterval, DownAfter: o.DownAfter, DeadVoterAfter: o.DeadVoterAfter,
	})
	if err != nil {
		return err
	}
	defer node.Close()

	ident, err := identity.New(identity.Config{
		Repl: node, Log: log, TokenTTL: o.TokenTTL, PublicURL: o.PublicURL, Services: catalog(o), IsLeader: node.IsLeader,
		Secrets: node.Secrets(),
	})
	if err != nil {
		return err
	}

	networks, err := network.New(network.Config{
		Repl: node, Auth: ident, Log: log, VLANMin: o.VLANMin, VLANMax: o.VLANMax, PublicURL: o.PublicURL,
		Forwarding: layer3, Flat: o.flatNetworks(), Agents: clusterAgents{node}, VLANExternals: o.vlanExternals(),
	})
	if err != nil {
		return err
	}

	objects, blocks, err := openObjectStore(o, node, log)
	if err != nil {
		return err
	}
	syncRealms, err := containerSyncRealms(o, o.Dev)
	if err != nil {
		return err
	}
	// Every volume this node exports is served through a gate that a
	// group snapshot can hold (node/volumes.Holds).
	holds := &volumes.Holds{Node: o.Name, State: node.Read, Log: log, Propose: func(ctx context.Context, typ string, body any) error {
		_, err := node.Propose(ctx, typ, body)
		return err
	}}
	exports, err := openVolumeExports(o, blocks, node.Read, holds, log)
	if err != nil {
		return err
	}

	images, err := openImageService(o, node, ident, objects, log)
	if err != nil {
		return err
	}
	volumeSvc, err := openVolumeService(o, node, ident, blocks, images, objects, log)
	if err != nil {
		return err
	}

	metal, err := openBaremetal(o, node, ident, log)
	if err != nil {
		return err
	}

	var drv hypervisor.Driver
	consoles := openSerialConsoles(o, node, func() hypervisor.Driver { return drv }, log)
	servers, err := openCompute(o, node, ident, networks, computeImages{images}, bootVolumes{volumeSvc},
		consoleLogs{node: node, self: o.Name, drv: func() hypervisor.Driver { return drv }}, serialConsoles{consoles}, log)
	if err != nil {
		return err
	}
	vmAgent, drv, err := openInstances(o, node, images, servers, log)
	if err != nil {
		return err
	}
	// What this node runs goes with its registration (node.Run, below):
	// servers are placed only where compute runs.
	services := []string{"api", "storage"}
	if vmAgent != nil {
		services = append(services, "compute")
	}
	node.SetServices(services)
	volAgent, volExports := openVolumeAgent(o, node, drv, blocks, holds, log)
	if vmAgent != nil && volExports != nil {
		vmAgent.Volumes = volExports
		vmAgent.Unseal = node.Secrets().Open // encrypted boot volumes
		vmAgent.Reimager = servers           // rebuilds of volume-backed servers
	}
	serveSerialConsoles(node, consoles)

	metalConductor, provisioning, err := openConductor(ctx, o, node, images, servers, log)
	if err != nil {
		return err
	}
	if provisioning != nil {
		defer provisioning.Close()
	}

	dp, dpAgent, err := openDataplane(o, node, networks, reg, log)
	if err != nil {
		return err
	}
	var bench *benchport.Manager
	var serveMetadata func(context.Context) error
	if dpAgent != nil && layer3 {
		if serveMetadata, err = openMetadata(o.DataplaneNetns, o.DataDir, node, dpAgent, servers, drv, log); err != nil {
			log.Warn("no metadata service on this node: guests read their config drive only", "err", err)
		}
	}
	if dp != nil {
		// Close keeps the pinned programs and maps: tenant traffic flows on
		// while rackd is down.
		defer dp.Close()
		// Bench ports are a benchmark's: they go when rackd stops.
		bench = &benchport.Manager{DataplaneNetns: o.DataplaneNetns, Log: log}
		defer bench.Close()
		node.HandlePeer(benchPeerPrefix+"/", http.StripPrefix(benchPeerPrefix, benchLocal(bench)))
	}

	build := buildinfo.Read()
	mw := api.NewMiddleware(log, reg)
	r := chi.NewRouter()
	r.Use(mw.Handler)
	r.Mount("/identity", http.StripPrefix("/identity", ident.Handler()))
	r.Mount("/network", http.StripPrefix("/network", networks.Handler()))
	r.Mount("/compute", http.StripPrefix("/compute", servers.Handler()))
	r.Mount("/image", http.StripPrefix("/image", images.Handler()))
	r.Mount("/baremetal", http.StripPrefix("/baremetal", metal.Handler()))
	r.Mount("/volume", http.StripPrefix("/volume", volumeSvc.Handler()))
	r.Mount("/rackstack/v1", node.Handler(ident))
	r.With(api.RequireAuth(ident, api.JSONError), api.RequireAdmin(api.JSONError)).Get("/rackstack/v1/storage/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := objects.Status(r.Context())
		if err != nil {
			api.Fail(w, r, api.JSONError, err)
			return
		}
		u, err := blocks.Usage(r.Context())
		if err != nil {
			api.Fail(w, r, api.JSONError, err)
			return
		}
		api.JSON(w, http.StatusOK, struct {
			objectapi.Status
			Volumes blockapi.Usage `json:"volumes"`
		}{st, blockapi.Usage(u)})
	})
	r.With(api.RequireAuth(ident, api.JSONError), api.RequireAdmin(api.JSONError)).Group(exports.routes)
	r.With(api.RequireAuth(ident, api.JSONError), api.RequireAdmin(api.JSONError)).Get("/rackstack/v1/nodes/{name}/dataplane", dataplaneStatus(o, node, dp))
	r.With(api.RequireAuth(ident, api.JSONError), api.RequireAdmin(api.JSONError)).HandleFunc("/rackstack/v1/nodes/{name}/bench-ports", benchPorts(o, node, bench))
	r.With(api.RequireAuth(ident, api.JSONError), api.RequireAdmin(api.JSONError)).HandleFunc("/rackstack/v1/nodes/{name}/bench-ports/*", benchPorts(o, node, bench))
	mountSwift(r, &swift.Handler{Store: objects, Auth: ident, Log: log, Realms: syncRealms})
	// S3 verifies signatures over the path as the client sent it: no
	// prefix stripping.
	r.Mount("/s3", &s3.Handler{Store: objects, Creds: ident, Prefix: "/s3", Region: o.S3Region})
	// Its own listener too: s3cmd and rclone cannot sign a path prefix.
	s3srv := &http.Server{Handler: mw.Handler(&s3.Handler{Store: objects, Creds: ident, Region: o.S3Region}), ReadHeaderTimeout: 10 * time.Second}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	// On the public API port metrics need an admin token (X-Auth-Token,
	// or Authorization: Bearer as Prometheus sends it); --metrics-listen
	// serves them without one on an address the operator chooses.
	r.With(bearerToken, api.RequireAuth(ident, api.JSONError), api.RequireAdmin(api.JSONError)).Handle("/metrics", metrics)
	// Profiles are how memory and CPU under load are explained (a heap
	// profile of a node under large S3 transfers found where the memory
	// went). They show code and stacks, not data, but the goroutine dump
	// names internal state: admin only, as /metrics here.
	r.With(bearerToken, api.RequireAuth(ident, api.JSONError), api.RequireAdmin(api.JSONError)).Mount("/debug/pprof", profiles())
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := node.State.Halted(); err != nil {
			api.JSON(w, http.StatusServiceUnavailable, map[string]any{"status": "halted", "node": o.Name, "error": err.Error()})
			return
		}
		st, err := node.Status()
		if err != nil || st.Leader == "" {
			api.JSON(w, http.StatusServiceUnavailable, map[string]any{"status": "no leader", "node": o.Name})
			return
		}
		if node.CatchingUp() {
			api.JSON(w, http.StatusServiceUnavailable, map[string]any{"status": "catching up", "node": o.Name, "leader": st.Leader, "applied_index": st.AppliedIndex})
			return
		}
		health := map[string]any{"status": "ok", "node": o.Name, "leader": st.Leader, "applied_index": st.AppliedIndex, "version": build.Version}
		if dp != nil {
			health["dataplane"] = dataplaneHealth(dp)
		}
		api.JSON(w, http.StatusOK, health)
	})
	if err := mountWeb(r, func(w http.ResponseWriter, r *http.Request) {
		api.JSON(w, http.StatusOK, map[string]any{"name": "rackstack", "node": o.Name, "identity": "/identity/v3", "version": build.Version, "build": build})
	}); err != nil {
		return err
	}
	runTelemetry := openTelemetry(o, node, ident, reg, r, telemetrySources{vmAgent, servers, objects, dp, metalConductor}, log)
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve api: %w", err)
		}
		return nil
	})
	if s3ln != nil {
		g.Go(func() error {
			if err := s3srv.Serve(s3ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve s3: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s3srv.Shutdown(sctx)
		return srv.Shutdown(sctx)
	})
	if metricsLn != nil {
		msrv := &http.Server{Handler: metrics, ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			if err := msrv.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve metrics: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			return msrv.Close()
		})
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		g.Go(func() error { newGarbageCap().run(gctx); return nil })
	}
	g.Go(func() error { return node.Run(gctx) })
	g.Go(func() error { return ident.Run(gctx) })
	g.Go(func() error { return objects.Run(gctx) })
	g.Go(func() error {
		return (&swift.Syncer{Store: objects, Realms: syncRealms, IsLeader: node.IsLeader, Log: log, Interval: o.ContainerSyncInterval}).Run(gctx)
	})
	g.Go(func() error { return blocks.Run(gctx) })
	g.Go(func() error { return exports.Run(gctx) })
	g.Go(func() error { return holds.Run(gctx) })
	g.Go(func() error { return images.Run(gctx) })
	g.Go(func() error { return volumeSvc.Run(gctx) })
	g.Go(func() error { return servers.Run(gctx) })
	g.Go(func() error { return consoles.Run(gctx) })
	g.Go(func() error { return runTelemetry(gctx) })
	if vmAgent != nil {
		g.Go(func() error { return vmAgent.Run(gctx) })
	}
	if volAgent != nil {
		g.Go(func() error { return volExports.Serve(gctx) })
		g.Go(func() error { return volAgent.Run(gctx) })
	}
	if dpAgent != nil {
		g.Go(func() error { return dpAgent.Run(gctx) })
	}
	if serveMetadata != nil {
		g.Go(func() error { return serveMetadata(gctx) })
	}
	if o.hasPublic() {
		g.Go(func() error { return ensurePublicNetwork(gctx, o, node.IsLeader, ident, networks, log) })
	}
	if metalConductor != nil {
		g.Go(func() error { return metalConductor.Run(gctx) })
	}
	if provisioning != nil {
		g.Go(func() error {
			select {
			case <-gctx.Done():
				return nil
			case <-provisioning.Done():
				return provisioning.Err()
			}
		})
	}
	if adminPassword != "" {
		g.Go(func() error {
			if err := bootstrapIdentity(gctx, node, ident, objects, adminPassword, o, log); err != nil {
				return err
			}
			printWelcome(stdout, o, freshBootstrap)
			return nil
		})
	} else if o.Bootstrap {
		printWelcome(stdout, o, false)
	}
	log.Info("rackd started", "version", build.String(), "node", o.Name, "api", o.apiURL(), "s3", o.s3URL(), "peer", o.raftAdvertise(), "data_dir", o.DataDir)
	return g.Wait()
}

// bootstrapIdentity waits until this node leads and its disks can hold
// data, then creates the admin project and user and writes admin-openrc.
func bootstrapIdentity(ctx context.Context, node *cluster.Node, ident *identity.Service, objects *object.Service, password string, o *options, log *slog.Logger) error {
	f := firstStart{
		IsLeader: node.IsLeader, Member: func() bool { return node.NodeUp(o.Name) },
		RegisterDisks: objects.RegisterDisks, CreateAdmin: ident.Bootstrap, Log: log,
	}
	if err := f.run(ctx, password); err != nil || ctx.Err() != nil {
		return err
	}
	if err := writeOpenrc(o, password); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.DataDir, "bootstrapped"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600)
}

// firstStart is what the first node of a new cloud does once it leads:
// it makes the cloud able to store data before anyone can log in. The
// first image upload of a new cloud (rackbench launch, right after
// /healthz turned green) got a 500 "no storage disks are available" when
// it came before this node's membership or its disks were in the state:
// the object store places data only on registered disks of nodes it
// knows, and both registrations retry on their own schedules, which can
// land hundreds of milliseconds after the admin exists.
type firstStart struct {
	IsLeader func() bool
	// Member reports whether this node's membership is in the state
	// (cluster.Node.Run registers it).
	Member        func() bool
	RegisterDisks func(ctx context.Context) error
	CreateAdmin   func(ctx context.Context, password string) error
	Log           *slog.Logger
	// Retry is the pause between attempts (default 100 ms; each step is
	// tried for about 10 s).
	Retry time.Duration
}

func (f firstStart) run(ctx context.Context, password string) error {
	if f.Retry == 0 {
		f.Retry = 100 * time.Millisecond
	}
	pause := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(f.Retry):
			return true
		}
	}
	for !f.IsLeader() {
		if !pause() {
			return nil
		}
	}
	for _, step := range []struct {
		what string
		do   func() error
		// optional steps that never succeed are logged, not fatal: a
		// cloud that cannot store data yet is better than none.
		optional bool
	}{
		{"wait for this node's membership", func() error {
			if !f.Member() {
				return errors.New("this node is not registered yet")
			}
			return nil
		}, true},
		{"register disks", func() error { return f.RegisterDisks(ctx) }, false},
		{"bootstrap identity", func() error { return f.CreateAdmin(ctx, password) }, false},
	} {
		var err error
		for i := 0; i < 100; i++ {
			if err = step.do(); err == nil || !pause() {
				break
			}
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && step.optional:
			f.Log.Warn("first start: "+step.what+"; going on", "err", err)
		case err != nil:
			return fmt.Errorf("%s: %w", step.what, err)
		}
	}
	return nil
}

func bootstrapped(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "bootstrapped"))
	return err == nil
}

// loadOrCreateAdminPassword reads --admin-password-file, or keeps a
// generated password in the data dir so that a bootstrap interrupted by a
// crash resumes with the same one.
func loadOrCreateAdminPassword(o *options) (string, error) {
	if o.AdminPasswordFile != "" {
		raw, err := os.ReadFile(o.AdminPasswordFile)
		if err != nil {
			return "", fmt.Errorf("read --admin-password-file: %w", err)
		}
		pw := strings.TrimSpace(string(raw))
		if len(pw) < 8 {
			return "", errors.New("--admin-password-file: the password must have at least 8 characters")
		}
		return pw, nil
	}
	path := filepath.Join(o.DataDir, "admin-password")
	if raw, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(raw)), nil
	}
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin password: %w", err)
	}
	return pw, nil
}

func openrcPath(o *options) string { return filepath.Join(o.DataDir, "admin-openrc") }

func writeOpenrc(o *options, password string) error {
	base := o.PublicURL
	if base == "" {
		base = o.apiURL()
	}
	content := fmt.Sprintf(`# Rackstack admin credentials for %s (keep this file private)
export OS_AUTH_URL=%s/identity/v3
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=admin
export OS_PASSWORD=%s
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
`, o.Name, strings.TrimRight(base, "/"), shellQuote(password))
	path := openrcPath(o)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write admin-openrc: %w", err)
	}
	return os.Rename(tmp, path)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func printWelcome(w io.Writer, o *options, fresh bool) {
	abs, err := filepath.Abs(openrcPath(o))
	if err != nil {
		abs = openrcPath(o)
	}
	what := "Rackstack is running"
	if fresh {
		what = "Rackstack cloud bootstrapped"
	}
	fmt.Fprintf(w, `%s: node %q
  API:         %s  (Keystone at %s/identity/v3)
  Swift:       %s/object/v1/AUTH_<project_id>   S3: %s
  credentials: source %s
  try:         source %s && openstack token issue
`, what, o.Name, o.apiURL(), o.apiURL(), o.apiURL(), o.s3URL(), abs, abs)
}

// recoverCluster makes this node the only voter of its cluster.
func recoverCluster(o *options, stdin io.Reader, stdout io.Writer) error {
	if o.Name == "" {
		return errors.New("recover needs --name (this node's name in the cluster)")
	}
	fmt.Fprintf(stdout, `!!! rackd recover rewrites the Raft membership in %s so that node %q is the
!!! ONLY voter. Use it only when a quorum of voters is lost for good. Other
!!! members must be wiped and joined again afterwards; writes they accepted
!!! that never reached this node are lost.
`, o.DataDir, o.Name)
	if !o.Yes {
		fmt.Fprintf(stdout, "Type the node name (%s) to continue: ", o.Name)
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != o.Name {
			return errors.New("recover: not confirmed; nothing changed")
		}
	}
	if err := cluster.Recover(o.DataDir, o.Name, o.raftAdvertise(), schemas()); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	fmt.Fprintf(stdout, "recovered: %s is now a one-voter cluster; start rackd normally and join other nodes with new tokens\n", o.Name)
	return nil
}

// profiles serves net/http/pprof under /debug/pprof/. (Its import also
// registers the handlers on http.DefaultServeMux, which rackd never serves.)
func profiles() http.Handler {
	r := chi.NewRouter()
	r.HandleFunc("/cmdline", pprof.Cmdline)
	r.HandleFunc("/profile", pprof.Profile)
	r.HandleFunc("/symbol", pprof.Symbol)
	r.HandleFunc("/trace", pprof.Trace)
	// Index serves the list and, by the name after /debug/pprof/, every
	// named profile (heap, allocs, goroutine, ...).
	r.HandleFunc("/*", pprof.Index)
	return r
}

// bearerToken lets a scraper send its token as "Authorization: Bearer",
// the way Prometheus's authorization config does, by reading it as
// X-Auth-Token.
func bearerToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && r.Header.Get("X-Auth-Token") == "" {
			r.Header.Set("X-Auth-Token", strings.TrimSpace(tok))
		}
		next.ServeHTTP(w, r)
	})
}
