package bmcsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Redfish is a minimal Redfish service for one machine: what bmclib's
// gofish provider (and Ironic's sushy) call for power and boot device.
//
//	GET    /redfish/v1/                                  service root (no auth)
//	POST   /redfish/v1/SessionService/Sessions           log in (UserName, Password)
//	DELETE /redfish/v1/SessionService/Sessions/{id}      log out
//	GET    /redfish/v1/Systems                           the one system
//	GET    /redfish/v1/Systems/{id}                      PowerState, Boot
//	PATCH  /redfish/v1/Systems/{id}                      Boot override
//	POST   /redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset
//
// Every path but the root takes a session token (X-Auth-Token) or basic
// auth.
type Redfish struct {
	Machine  *Machine
	SystemID string
	User     string
	Password string
	Log      *slog.Logger
	// Cert is what ServeRedfish serves; nil makes a self-signed one.
	Cert *tls.Certificate
	// IgnoreWrites answers resets and boot changes 204 and applies none:
	// the BMC fault (bmclib #318, #459) clients must catch by reading back.
	IgnoreWrites bool

	mu       sync.Mutex
	sessions map[string]string // id → token
}

const redfishRoot = "/redfish/v1"

func (r *Redfish) systemPath() string { return redfishRoot + "/Systems/" + r.SystemID }

// ServeHTTP answers the Redfish paths above.
func (r *Redfish) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := strings.TrimSuffix(req.URL.Path, "/")
	sessions := redfishRoot + "/SessionService/Sessions"
	switch {
	case p == redfishRoot && req.Method == http.MethodGet:
		r.serviceRoot(w)
		return
	case p == sessions && req.Method == http.MethodPost:
		r.login(w, req)
		return
	}
	if !r.authorized(req) {
		w.Header().Set("WWW-Authenticate", `Basic realm="rack-bmcsim"`)
		redfishError(w, http.StatusUnauthorized, "Base.1.0.NoValidSession", "authentication required")
		return
	}
	switch {
	case strings.HasPrefix(p, sessions+"/") && req.Method == http.MethodDelete:
		r.mu.Lock()
		delete(r.sessions, strings.TrimPrefix(p, sessions+"/"))
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(p, sessions+"/") && req.Method == http.MethodGet:
		id := strings.TrimPrefix(p, sessions+"/")
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": p, "Id": id, "Name": "Session " + id, "UserName": r.User})
	case p == redfishRoot+"/Systems" && req.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{
			"@odata.id": p, "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
			"Name": "Computer System Collection", "Members@odata.count": 1,
			"Members": []any{map[string]string{"@odata.id": r.systemPath()}},
		})
	case p == r.systemPath() && req.Method == http.MethodGet:
		r.system(w)
	case (p == r.systemPath() && req.Method == http.MethodPatch ||
		p == r.systemPath()+"/Actions/ComputerSystem.Reset" && req.Method == http.MethodPost) && r.IgnoreWrites:
		w.WriteHeader(http.StatusNoContent)
	case p == r.systemPath() && req.Method == http.MethodPatch:
		r.patchSystem(w, req)
	case p == r.systemPath()+"/Actions/ComputerSystem.Reset" && req.Method == http.MethodPost:
		r.reset(w, req)
	default:
		redfishError(w, http.StatusNotFound, "Base.1.0.ResourceMissingAtURI", req.Method+" "+req.URL.Path+" is not here")
	}
}

func (r *Redfish) serviceRoot(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.id": redfishRoot + "/", "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
		"Id": "RootService", "Name": "rack-bmcsim Redfish service", "RedfishVersion": "1.5.0",
		"UUID":           "8c6b0d6e-6f1e-4a8f-9a3c-0d1e2f3a4b5c",
		"Systems":        map[string]string{"@odata.id": redfishRoot + "/Systems"},
		"SessionService": map[string]string{"@odata.id": redfishRoot + "/SessionService"},
		"Links": map[string]any{
			"Sessions": map[string]string{"@odata.id": redfishRoot + "/SessionService/Sessions"},
		},
	})
}

func (r *Redfish) credentialsOK(user, password string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(r.User))
	p := subtle.ConstantTimeCompare([]byte(password), []byte(r.Password))
	return u&p == 1
}

func (r *Redfish) login(w http.ResponseWriter, req *http.Request) {
	var body struct{ UserName, Password string }
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		redfishError(w, http.StatusBadRequest, "Base.1.0.MalformedJSON", "read session request: "+err.Error())
		return
	}
	if !r.credentialsOK(body.UserName, body.Password) {
		r.logger().Info("redfish login refused", "user", body.UserName)
		redfishError(w, http.StatusUnauthorized, "Base.1.0.NoValidSession", "invalid user name or password")
		return
	}
	id, token := randomHex(8), randomHex(16)
	r.mu.Lock()
	if r.sessions == nil {
		r.sessions = map[string]string{}
	}
	r.sessions[id] = token
	r.mu.Unlock()
	loc := redfishRoot + "/SessionService/Sessions/" + id
	w.Header().Set("X-Auth-Token", token)
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusCreated, map[string]any{"@odata.id": loc, "Id": id, "Name": "Session " + id, "UserName": body.UserName})
}

func (r *Redfish) authorized(req *http.Request) bool {
	if token := req.Header.Get("X-Auth-Token"); token != "" {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, t := range r.sessions {
			if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
				return true
			}
		}
		return false
	}
	user, password, ok := req.BasicAuth()
	return ok && r.credentialsOK(user, password)
}

// Redfish's names for the machine's boot devices.
var redfishTargets = map[string]string{DevPXE: "Pxe", DevDisk: "Hdd", "": "None"}

var resetTypes = []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle"}

func (r *Redfish) system(w http.ResponseWriter) {
	on, err := r.Machine.PowerState()
	if err != nil {
		redfishError(w, http.StatusInternalServerError, "Base.1.0.InternalError", err.Error())
		return
	}
	b, err := r.Machine.Boot()
	if err != nil {
		redfishError(w, http.StatusInternalServerError, "Base.1.0.InternalError", err.Error())
		return
	}
	power, enabled := "Off", "Disabled"
	if on {
		power = "On"
	}
	dev, persistent := b.Current()
	switch {
	case dev == "":
	case persistent:
		enabled = "Continuous"
	default:
		enabled = "Once"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.id": r.systemPath(), "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
		"Id": r.SystemID, "Name": r.SystemID, "SystemType": "Physical",
		"PowerState": power,
		"Boot": map[string]any{
			"BootSourceOverrideTarget":                         redfishTargets[dev],
			"BootSourceOverrideEnabled":                        enabled,
			"BootSourceOverrideMode":                           "Legacy",
			"BootSourceOverrideTarget@Redfish.AllowableValues": []string{"None", "Pxe", "Hdd"},
		},
		"Actions": map[string]any{
			"#ComputerSystem.Reset": map[string]any{
				"target":                            r.systemPath() + "/Actions/ComputerSystem.Reset",
				"ResetType@Redfish.AllowableValues": resetTypes,
			},
		},
	})
}

func (r *Redfish) patchSystem(w http.ResponseWriter, req *http.Request) {
	var body struct {
		Boot *struct {
			BootSourceOverrideTarget  string
			BootSourceOverrideEnabled string
		}
	}
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		redfishError(w, http.StatusBadRequest, "Base.1.0.MalformedJSON", "read system patch: "+err.Error())
		return
	}
	if body.Boot == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	dev, ok := "", false
	for d, target := range redfishTargets {
		if target == body.Boot.BootSourceOverrideTarget {
			dev, ok = d, true
		}
	}
	if !ok {
		redfishError(w, http.StatusBadRequest, "Base.1.0.PropertyValueNotInList",
			fmt.Sprintf("Boot.BootSourceOverrideTarget %q: this system boots None, Pxe or Hdd", body.Boot.BootSourceOverrideTarget))
		return
	}
	var persistent bool
	switch body.Boot.BootSourceOverrideEnabled {
	case "Continuous":
		persistent = true
	case "Once", "":
	case "Disabled":
		dev, persistent = "", true
	default:
		redfishError(w, http.StatusBadRequest, "Base.1.0.PropertyValueNotInList",
			fmt.Sprintf("Boot.BootSourceOverrideEnabled %q: want Once, Continuous or Disabled", body.Boot.BootSourceOverrideEnabled))
		return
	}
	if err := r.Machine.SetBoot(dev, persistent); err != nil {
		redfishError(w, http.StatusInternalServerError, "Base.1.0.InternalError", err.Error())
		return
	}
	r.logger().Info("redfish boot override", "device", dev, "persistent", persistent)
	w.WriteHeader(http.StatusNoContent)
}

// reap waits for a QEMU this long-lived service started, so that it does
// not stay a zombie once killed.
func reap(p *os.Process) { go func() { _, _ = p.Wait() }() }

func (r *Redfish) reset(w http.ResponseWriter, req *http.Request) {
	var body struct{ ResetType string }
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		redfishError(w, http.StatusBadRequest, "Base.1.0.MalformedJSON", "read reset request: "+err.Error())
		return
	}
	var err error
	switch body.ResetType {
	case "On":
		err = r.Machine.PowerOn(reap)
	case "ForceOff":
		err = r.Machine.PowerOff(false)
	case "GracefulShutdown":
		err = r.Machine.PowerOff(true)
	case "ForceRestart", "PowerCycle":
		err = r.Machine.Reset(reap)
	default:
		redfishError(w, http.StatusBadRequest, "Base.1.0.ActionParameterValueNotInList",
			fmt.Sprintf("ResetType %q: want one of %s", body.ResetType, strings.Join(resetTypes, ", ")))
		return
	}
	if err != nil {
		redfishError(w, http.StatusInternalServerError, "Base.1.0.InternalError", err.Error())
		return
	}
	r.logger().Info("redfish reset", "type", body.ResetType)
	w.WriteHeader(http.StatusNoContent)
}

func (r *Redfish) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func redfishError(w http.ResponseWriter, status int, id, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": id, "message": msg,
		"@Message.ExtendedInfo": []any{map[string]string{"MessageId": id, "Message": msg}},
	}})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SelfSigned makes a certificate for 127.0.0.1 and localhost, valid for a
// day: BMCs ship self-signed certificates, and clients of this one set
// redfish_verify_ca false.
func SelfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("make certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "rack-bmcsim"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("make certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ServeRedfish serves r over HTTPS (r.Cert, or a self-signed
// certificate) on ln until ctx ends.
func ServeRedfish(ctx context.Context, ln net.Listener, r *Redfish) error {
	var cert tls.Certificate
	if r.Cert != nil {
		cert = *r.Cert
	} else {
		c, err := SelfSigned()
		if err != nil {
			return err
		}
		cert = c
	}
	srv := &http.Server{
		Handler:           r,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve redfish: %w", err)
	}
	return nil
}

// RedfishServer is a Redfish service StartRedfish started.
type RedfishServer struct {
	// URL is the service's base, https://127.0.0.1:PORT: Ironic's
	// redfish_address.
	URL    string
	cancel context.CancelFunc
	done   chan error
}

// StartRedfish serves r on addr ("127.0.0.1:0" picks a port) until Stop.
func StartRedfish(addr string, r *Redfish) (*RedfishServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start redfish: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &RedfishServer{URL: "https://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- ServeRedfish(ctx, ln, r) }()
	return s, nil
}

// Stop stops the service (not the machine's QEMU: Machine.PowerOff).
func (s *RedfishServer) Stop() error {
	s.cancel()
	return <-s.done
}
