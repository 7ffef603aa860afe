// Package ipxe is the provisioning node's HTTP server: the iPXE boot
// script a PXE-booting machine chains to (GET /boot.ipxe?mac=MAC), the
// ramdisk's kernel and initramfs, and the endpoints the ramdisk agent
// calls (provision/agentapi). It decides nothing itself: a Backend (the
// conductor) says what each machine boots and what each agent call means.
// It must be served only on the provisioning interface's address, never on
// the API listener, so tenants cannot reach it.
package ipxe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/rackstack/rackstack/provision/agentapi"
)

// Boot kinds: what a machine is told to boot.
const (
	// BootAgent boots the ramdisk with Token: discovery of an unknown
	// machine, or an operation (inspect, clean, deploy) in progress.
	BootAgent = "agent"
	// BootExit leaves iPXE, so the firmware boots the next device (the
	// local disk).
	BootExit = "exit"
)

// Boot is the Backend's decision for one MAC.
type Boot struct {
	Kind  string
	Token string // with BootAgent
	// Reason is echoed by the script, for whoever watches the console.
	Reason string
}

// Content is a file the Backend serves to an agent (the raw image, the
// config drive). ServeContent answers Range requests from it.
type Content struct {
	Body    io.ReadSeekCloser
	Name    string
	ModTime time.Time
	// ETag, when set, is the content's strong validator (its SHA-256).
	ETag string
}

// Backend answers for the machines and their agents. Every agent method
// gets the bearer token of the call: a token the Backend does not know
// (or no longer knows) is ErrBadToken, answered 401.
type Backend interface {
	Boot(ctx context.Context, mac string) (Boot, error)
	Inventory(ctx context.Context, token string, inv agentapi.Inventory) (agentapi.InventoryReply, error)
	Heartbeat(ctx context.Context, token string, hb agentapi.Heartbeat) (agentapi.HeartbeatReply, error)
	Result(ctx context.Context, token string, r agentapi.Result) error
	Image(ctx context.Context, token string) (Content, error)
	ConfigDrive(ctx context.Context, token string) (Content, error)
}

// Errors a Backend returns (wrapped) to choose the status.
var (
	ErrBadToken = errors.New("unknown or expired agent token") // 401
	ErrInvalid  = errors.New("invalid request")                // 400
	ErrConflict = errors.New("conflicting request")            // 409
	ErrNotFound = errors.New("not found")                      // 404
)

// Ramdisk file names, as the boot script and make ramdisk name them.
const (
	Kernel = "vmlinuz"
	Initrd = "initramfs.zst"
)

// Config is the server's settings.
type Config struct {
	// URL is the base URL agents and iPXE reach this server at
	// ("http://IP:PORT"); it goes into the boot script. Empty: from the
	// request's Host.
	URL string
	// RamdiskDir holds Kernel and Initrd.
	RamdiskDir string
	Backend    Backend
	Log        *slog.Logger
	// MaxBody bounds an agent's request body (default 1 MiB: an
	// inventory of a large machine is a few tens of KiB).
	MaxBody int64
}

// Server is the provisioning HTTP handler.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// CheckRamdisk reports whether dir holds the ramdisk's kernel and
// initramfs, with an error that says how to build them.
func CheckRamdisk(dir string) error {
	for _, name := range []string{Kernel, Initrd} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("ramdisk %s has no %s: run make ramdisk (it writes build/ramdisk/{%s,%s})", dir, name, Kernel, Initrd)
		}
	}
	return nil
}

// New returns the server.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /boot.ipxe", s.boot)
	s.mux.HandleFunc("GET /ramdisk/{file}", s.ramdisk)
	s.mux.HandleFunc("POST "+agentapi.PathInventory, s.inventory)
	s.mux.HandleFunc("POST "+agentapi.PathHeartbeat, s.heartbeat)
	s.mux.HandleFunc("POST "+agentapi.PathResult, s.result)
	s.mux.HandleFunc("GET "+agentapi.PathImage, s.content(cfg.Backend.Image))
	s.mux.HandleFunc("GET "+agentapi.PathConfigDrive, s.content(cfg.Backend.ConfigDrive))
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

var scripts = template.Must(template.New("agent").Parse(`#!ipxe
echo Rackstack: {{.Reason}}
kernel {{.URL}}/ramdisk/` + Kernel + ` initrd=` + Initrd + ` console=ttyS0 ` +
	agentapi.ArgURL + `={{.URL}} ` + agentapi.ArgToken + `={{.Token}} ` + agentapi.ArgMAC + `={{.MAC}}
initrd {{.URL}}/ramdisk/` + Initrd + `
boot
`))

var exitScript = template.Must(template.New("exit").Parse(`#!ipxe
echo Rackstack: {{.Reason}}
exit
`))

// normalizeMAC accepts aa:bb:.. or aa-bb-.. in any case.
func normalizeMAC(mac string) string {
	mac = strings.ToLower(strings.ReplaceAll(mac, "-", ":"))
	if len(mac) != 17 {
		return ""
	}
	for i, c := range mac {
		if i%3 == 2 {
			if c != ':' {
				return ""
			}
		} else if !strings.ContainsRune("0123456789abcdef", c) {
			return ""
		}
	}
	return mac
}

func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.URL != "" {
		return strings.TrimRight(s.cfg.URL, "/")
	}
	return "http://" + r.Host
}

// boot renders the machine's script. iPXE shows a non-200 answer as a
// failed chain and retries its boot order, so errors are plain text.
func (s *Server) boot(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("mac")
	mac := normalizeMAC(raw)
	if mac == "" {
		http.Error(w, fmt.Sprintf("mac: %q is not a MAC address (want aa:bb:cc:dd:ee:ff)", raw), http.StatusBadRequest)
		return
	}
	b, err := s.cfg.Backend.Boot(r.Context(), mac)
	if err != nil {
		s.cfg.Log.Warn("ipxe: boot decision failed", "mac", mac, "err", err)
		s.fail(w, err)
		return
	}
	data := map[string]string{"URL": s.baseURL(r), "Token": b.Token, "MAC": mac, "Reason": b.Reason}
	tmpl := exitScript
	switch b.Kind {
	case BootAgent:
		if b.Reason == "" {
			data["Reason"] = "booting the agent ramdisk"
		}
		tmpl = scripts
	case BootExit:
		if b.Reason == "" {
			data["Reason"] = "nothing to do, booting from the next device"
		}
	default:
		http.Error(w, "unknown boot kind "+b.Kind, http.StatusInternalServerError)
		return
	}
	s.cfg.Log.Info("ipxe: boot script", "mac", mac, "boot", b.Kind, "reason", data["Reason"])
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	tmpl.Execute(w, data)
}

// ramdisk serves the kernel and initramfs; ServeContent answers Range and
// If-None-Match (a machine that retries a boot fetches them again).
func (s *Server) ramdisk(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name != Kernel && name != Initrd {
		http.Error(w, "no such ramdisk file: "+name, http.StatusNotFound)
		return
	}
	f, err := os.Open(filepath.Join(s.cfg.RamdiskDir, name))
	if err != nil {
		http.Error(w, "ramdisk file missing: run make ramdisk", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, st.Size(), st.ModTime().UnixNano()))
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// token returns the call's bearer token, "" when there is none.
func token(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(h[len(prefix):])
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrBadToken):
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="rackstack-agent"`)
	case errors.Is(err, ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, errorBody{Error: err.Error()})
}

// decode reads a bounded JSON body into v, refusing unknown fields and
// trailing data, with errors that name what was wrong.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return fmt.Errorf("%w: body larger than %d bytes", ErrInvalid, s.cfg.MaxBody)
		case errors.As(err, &typeErr):
			return fmt.Errorf("%w: %s: want %s, got %s", ErrInvalid, typeErr.Field, typeErr.Type, typeErr.Value)
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%w: empty body, want a JSON object", ErrInvalid)
		}
		return fmt.Errorf("%w: body: %v", ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: body: data after the JSON object", ErrInvalid)
	}
	return nil
}

// agentCall checks the token is present before reading the body, so an
// unauthenticated caller cannot make the server parse anything.
func (s *Server) agentCall(w http.ResponseWriter, r *http.Request) (string, bool) {
	t := token(r)
	if t == "" {
		s.fail(w, fmt.Errorf("%w: no Authorization: Bearer token", ErrBadToken))
		return "", false
	}
	return t, true
}

func (s *Server) inventory(w http.ResponseWriter, r *http.Request) {
	t, ok := s.agentCall(w, r)
	if !ok {
		return
	}
	var inv agentapi.Inventory
	if err := s.decode(w, r, &inv); err != nil {
		s.fail(w, err)
		return
	}
	if err := checkInventory(&inv); err != nil {
		s.fail(w, err)
		return
	}
	reply, err := s.cfg.Backend.Inventory(r.Context(), t, inv)
	if err != nil {
		s.cfg.Log.Warn("ipxe: inventory refused", "err", err)
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// checkInventory refuses an inventory the conductor could not enrol or
// record, naming the field.
func checkInventory(inv *agentapi.Inventory) error {
	if len(inv.Interfaces) == 0 {
		return fmt.Errorf("%w: interfaces: at least one NIC is required", ErrInvalid)
	}
	for i, nic := range inv.Interfaces {
		mac := normalizeMAC(nic.MACAddress)
		if mac == "" {
			return fmt.Errorf("%w: interfaces[%d].mac_address: %q is not a MAC address", ErrInvalid, i, nic.MACAddress)
		}
		inv.Interfaces[i].MACAddress = mac
	}
	if inv.Boot.PXEInterface != "" {
		mac := normalizeMAC(inv.Boot.PXEInterface)
		if mac == "" {
			return fmt.Errorf("%w: boot.pxe_interface: %q is not a MAC address", ErrInvalid, inv.Boot.PXEInterface)
		}
		inv.Boot.PXEInterface = mac
	}
	if inv.CPU.Count < 0 {
		return fmt.Errorf("%w: cpu.count: must not be negative", ErrInvalid)
	}
	if inv.Memory.Total < 0 || inv.Memory.PhysicalMB < 0 {
		return fmt.Errorf("%w: memory: sizes must not be negative", ErrInvalid)
	}
	for i, d := range inv.Disks {
		if d.Name == "" {
			return fmt.Errorf("%w: disks[%d].name: required", ErrInvalid, i)
		}
		if d.Size < 0 {
			return fmt.Errorf("%w: disks[%d].size: must not be negative", ErrInvalid, i)
		}
	}
	return nil
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	t, ok := s.agentCall(w, r)
	if !ok {
		return
	}
	var hb agentapi.Heartbeat
	if err := s.decode(w, r, &hb); err != nil {
		s.fail(w, err)
		return
	}
	if len(hb.Progress) > 1024 {
		s.fail(w, fmt.Errorf("%w: progress: longer than 1024 bytes", ErrInvalid))
		return
	}
	reply, err := s.cfg.Backend.Heartbeat(r.Context(), t, hb)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	t, ok := s.agentCall(w, r)
	if !ok {
		return
	}
	var res agentapi.Result
	if err := s.decode(w, r, &res); err != nil {
		s.fail(w, err)
		return
	}
	switch {
	case res.CommandID == "":
		s.fail(w, fmt.Errorf("%w: command_id: required", ErrInvalid))
		return
	case res.Op != agentapi.OpClean && res.Op != agentapi.OpDeploy && res.Op != agentapi.OpPowerOff:
		s.fail(w, fmt.Errorf("%w: op: %q is not a command with a result (want clean, deploy or poweroff)", ErrInvalid, res.Op))
		return
	case !res.OK && res.Error == "":
		s.fail(w, fmt.Errorf("%w: error: required when ok is false", ErrInvalid))
		return
	case len(res.Error) > 4096 || len(res.Message) > 4096:
		s.fail(w, fmt.Errorf("%w: error, message: longer than 4096 bytes", ErrInvalid))
		return
	}
	if err := s.cfg.Backend.Result(r.Context(), t, res); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// content streams what the Backend opens, with Content-Length and Range.
func (s *Server) content(open func(context.Context, string) (Content, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.agentCall(w, r)
		if !ok {
			return
		}
		c, err := open(r.Context(), t)
		if err != nil {
			s.fail(w, err)
			return
		}
		defer c.Body.Close()
		if c.ETag != "" {
			w.Header().Set("ETag", strconv.Quote(c.ETag))
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, c.Name, c.ModTime, c.Body)
	}
}
