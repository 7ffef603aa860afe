// Package api is the handler kit every Rackstack HTTP service is written
// on: request ids, authentication, metrics, and
//   - routes declared as data (Route: method, path, access, handler) and
//     mounted with the service's error format (Routes.Mount);
//   - handlers that return errors (HandlerFunc), mapped to a status in one
//     place (ProblemOf) and written in the service's own body (ErrorWriter);
//   - one input reader (Input) that names the field at fault, worded as
//     the service words it (Wording);
//   - collections over state-store tables (Collection, Listing): list with
//     the OpenStack filters, fields, sort keys, limit/marker and links, and
//     show with project scoping;
//   - one way to propose a command and read the write back (Propose).
//
// It must not know any one service: services mount their routes on it.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/store"
)

// Principal is who a request acts as, from a validated token.
type Principal struct {
	UserID       string
	UserName     string
	UserDomainID string
	ProjectID    string // empty for an unscoped or a system-scoped token
	ProjectName  string
	DomainID     string // the project's domain
	// System is set for a token scoped to the system (Keystone's
	// "system": {"all": true}): its roles are held on the whole cloud, and
	// it acts in no project.
	System    bool
	Roles     []string
	Token     string
	AuditID   string
	ExpiresAt time.Time
	IssuedAt  time.Time
	Methods   []string
	// AccessRules, when the token comes from an application credential
	// that has them, are the only requests it may make: each service
	// checks them (RequireAuthFor), and a handler that names no service
	// refuses such a token.
	AccessRules []AccessRule
}

// AccessRule is one request an application credential allows (Keystone's
// access rules): a service type, an HTTP method and a path under the
// service's endpoint, where {name} and * match one path segment and **
// any number of them.
type AccessRule struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Method  string `json:"method"`
	Path    string `json:"path"`
}

// serviceAliases are catalog types that name the same service.
var serviceAliases = map[string]string{"volumev3": "block-storage", "volume": "block-storage", "volumev2": "block-storage"}

func canonicalService(s string) string {
	if c, ok := serviceAliases[s]; ok {
		return c
	}
	return s
}

// Permits reports whether the principal may make the request to service:
// always, unless its token carries access rules, and then only if one of
// them matches (a request to no named service matches none).
func (p *Principal) Permits(service, method, path string) bool {
	if len(p.AccessRules) == 0 {
		return true
	}
	if service == "" {
		return false
	}
	for _, r := range p.AccessRules {
		if canonicalService(r.Service) == canonicalService(service) && strings.EqualFold(r.Method, method) && PathMatches(r.Path, path) {
			return true
		}
	}
	return false
}

// PathMatches matches a request path against an access rule's path, as
// keystonemiddleware does: {name} and * are one segment, ** any number.
func PathMatches(pattern, path string) bool {
	pp, rp := strings.Split(strings.Trim(pattern, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if i == len(pp) {
			return j == len(rp)
		}
		seg := pp[i]
		if seg == "**" {
			for k := j; k <= len(rp); k++ {
				if match(i+1, k) {
					return true
				}
			}
			return false
		}
		if j == len(rp) || rp[j] == "" {
			return false
		}
		if seg == "*" || strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") || seg == rp[j] {
			return match(i+1, j+1)
		}
		return false
	}
	return match(0, 0)
}

// AsServiceCall marks a request one service makes of another in process
// on its caller's behalf (Nova's image and volume proxies): the caller's
// access rules were checked against the request it made, as a service
// token makes keystonemiddleware skip them. Only code can set it.
func AsServiceCall(ctx context.Context) context.Context {
	return context.WithValue(ctx, serviceCallKey, true)
}

func isServiceCall(ctx context.Context) bool { v, _ := ctx.Value(serviceCallKey).(bool); return v }

// ErrAccessRules is the answer to a request an application credential's
// access rules do not allow.
var ErrAccessRules = &Error{Status: http.StatusUnauthorized, Msg: "The request you have made requires authentication: the application credential's access rules do not allow this request."}

// HasRole reports whether the principal holds role on its scope. admin
// implies member and reader, member implies reader, as in Keystone's
// default role hierarchy.
func (p *Principal) HasRole(role string) bool {
	for _, r := range p.Roles {
		if r == role || r == "admin" || (r == "member" && role == "reader") {
			return true
		}
	}
	return false
}

// IsAdmin reports whether the principal is a cloud administrator.
func (p *Principal) IsAdmin() bool {
	for _, r := range p.Roles {
		if r == "admin" {
			return true
		}
	}
	return false
}

// CanRead reports whether the principal may read resources of project.
func (p *Principal) CanRead(project string) bool {
	return p.IsAdmin() || (p.ProjectID != "" && p.ProjectID == project && p.HasRole("reader"))
}

// CanWrite reports whether the principal may change resources of project.
func (p *Principal) CanWrite(project string) bool {
	return p.IsAdmin() || (p.ProjectID != "" && p.ProjectID == project && p.HasRole("member"))
}

// Authenticator validates a token (X-Auth-Token) into a Principal. It must
// not need a Raft round trip.
type Authenticator interface {
	Validate(ctx context.Context, token string) (*Principal, error)
}

type ctxKey int

const (
	principalKey ctxKey = iota
	serviceCallKey
	requestIDKey
	loggerKey
)

// Logger returns the request's logger (carrying its request id), or
// slog.Default outside the middleware.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// PrincipalFrom returns the authenticated principal of a request, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey).(*Principal)
	return p
}

// WithPrincipal returns ctx carrying p (for tests and internal calls); the
// commands proposed under it name p as their actor in the event log.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	if p != nil {
		o := store.OriginFrom(ctx)
		o.User, o.Project = p.UserID, p.ProjectID
		ctx = store.WithOrigin(ctx, o)
	}
	return context.WithValue(ctx, principalKey, p)
}

// RequestID returns the request id of ctx.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// Middleware is the chain every listener uses: request ids, recovery from
// panics (a bug answers 500, never kills the node), logging and metrics.
type Middleware struct {
	Log      *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMiddleware registers the API metrics on reg.
func NewMiddleware(log *slog.Logger, reg prometheus.Registerer) *Middleware {
	m := &Middleware{
		Log: log,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rackstack_api_requests_total", Help: "API requests by route, method and status.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rackstack_api_request_duration_seconds", Help: "API request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the final status: an interim one (1xx, as "100
// Continue") goes out first and is not the request's status.
func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Handler wraps next with the common chain.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := "req-" + newUUID()
		w.Header().Set("X-Openstack-Request-Id", id)
		w.Header().Set("X-Compute-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = store.WithOrigin(ctx, store.Origin{RequestID: id})
		ctx = context.WithValue(ctx, loggerKey, m.Log.With("request_id", id))
		r = r.WithContext(ctx)
		defer func() {
			if v := recover(); v != nil {
				m.Log.Error("panic in handler", "request_id", id, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if sw.status == 0 {
					http.Error(sw, `{"error": {"code": 500, "message": "internal error", "title": "Internal Server Error"}}`, http.StatusInternalServerError)
				}
			}
			route := chi.RouteContext(r.Context())
			pattern := "unmatched"
			if route != nil && route.RoutePattern() != "" {
				pattern = route.RoutePattern()
			}
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			m.requests.WithLabelValues(pattern, r.Method, strconv.Itoa(code)).Inc()
			m.duration.WithLabelValues(pattern, r.Method).Observe(time.Since(start).Seconds())
			m.Log.Debug("request", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", code, "duration", time.Since(start))
		}()
		next.ServeHTTP(sw, r)
	})
}

// RequireAuth rejects requests without a valid X-Auth-Token with 401 in the
// service's error format, and puts the principal into the context. It
// names no service, so a token restricted by access rules is refused.
func RequireAuth(auth Authenticator, ew ErrorWriter) func(http.Handler) http.Handler {
	return RequireAuthFor(auth, ew, "")
}

// RequireAuthFor is RequireAuth for a service of that catalog type: a
// token restricted by access rules passes only the requests they allow,
// matched against the path under the service's endpoint (r.URL.Path,
// the service's prefix stripped).
func RequireAuthFor(auth Authenticator, ew ErrorWriter, service string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := r.Header.Get("X-Auth-Token")
			if tok == "" {
				w.Header().Set("WWW-Authenticate", `Keystone uri="/identity/v3"`)
				ew(w, r, Problem{Status: http.StatusUnauthorized, Msg: "The request you have made requires authentication."})
				return
			}
			p, err := auth.Validate(r.Context(), tok)
			if errors.Is(err, store.ErrNoLeader) {
				// This node could not confirm its state is current
				// enough to check tokens: not the client's fault.
				ew(w, r, Problem{Status: http.StatusServiceUnavailable, Msg: "this node cannot check tokens until it reaches the cluster leader; retry shortly"})
				return
			}
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Keystone uri="/identity/v3"`)
				ew(w, r, Problem{Status: http.StatusUnauthorized, Msg: "The request you have made requires authentication."})
				return
			}
			if !isServiceCall(r.Context()) && !p.Permits(service, r.Method, r.URL.Path) {
				ew(w, r, ProblemOf(ErrAccessRules))
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// newUUID returns a random RFC 4122 version-4 UUID string.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// NewUUID returns a random UUID for a new resource id.
func NewUUID() string { return newUUID() }

// NewHexID returns a random 32-hex-digit id, the form Keystone uses.
func NewHexID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}
