package compute

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/crypto/ssh"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var keypairNamePattern = regexp.MustCompile(`^[a-zA-Z0-9 _-]+$`)

// From 2.92 a keypair's name may have '@' and '.' too, checked by the
// body's schema (Nova's 400 names the field), and a keypair is only
// imported: public_key is required, none is generated.
const keypairNamePattern292 = `^[a-zA-Z0-9 @._-]+$`

var keypairNameRE292 = regexp.MustCompile(keypairNamePattern292)

// generateCertificate makes what Nova makes for an x509 (WinRM) keypair:
// an RSA key and a self-signed client certificate for the user.
func generateCertificate(user string) (public, private string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: user},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("create certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})), nil
}

// generateKeypair makes the key Nova makes (nova.crypto's
// generate_key_pair): RSA of 2048 bits, the OpenSSH public key line
// commented Generated-by-Nova and the private key in the traditional
// PEM form ("BEGIN RSA PRIVATE KEY", PKCS #1), which clients expect and
// which is handed to the client once.
func generateKeypair(string) (public, private string, err error) {
	const comment = "Generated-by-Nova"
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	sp, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("encode public key: %w", err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	public = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
	return public, string(pem.EncodeToMemory(block)), nil
}

// fingerprint is Nova's: the colon-separated MD5 of an SSH key, the SHA-1
// of an x509 certificate's DER.
func fingerprint(typ, public string) (string, error) {
	if typ == "x509" {
		block, _ := pem.Decode([]byte(public))
		if block == nil {
			return "", badRequest("Keypair data is invalid: failed to generate fingerprint")
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "", badRequest("Keypair data is invalid: failed to generate fingerprint")
		}
		sum := sha1.Sum(block.Bytes)
		h := hex.EncodeToString(sum[:])
		parts := make([]string, 0, len(sum))
		for i := 0; i < len(h); i += 2 {
			parts = append(parts, h[i:i+2])
		}
		return strings.Join(parts, ":"), nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(public))
	if err != nil {
		return "", badRequest("Keypair data is invalid: failed to generate fingerprint")
	}
	return ssh.FingerprintLegacyMD5(k), nil
}

// keypairUser is whose keypairs a request is about: the caller's, or
// with user_id (microversion 2.10, admins only) another user's.
func keypairUser(r *http.Request, given string) (string, error) {
	p := principal(r)
	if given == "" || given == p.UserID {
		return p.UserID, nil
	}
	if !p.IsAdmin() {
		return "", policyDenied("os_compute_api:os-keypairs")
	}
	return given, nil
}

func (s *Service) keypairView(r *http.Request, k *Keypair, full bool) map[string]any {
	v := map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
	if atLeast(r, 2) {
		v["type"] = k.Type
	}
	if full {
		v["user_id"] = k.UserID
		v["deleted"] = false
		v["created_at"] = k.Created.UTC().Format("2006-01-02T15:04:05.000000")
		v["updated_at"], v["deleted_at"] = nil, nil
		v["id"] = k.Seq
	}
	return v
}

func (s *Service) listKeypairs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	user, err := keypairUser(r, queryUser(r))
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	rows := store.All[Keypair](tx, tKeypairs, "user", user)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	from, to, next := 0, len(rows), ""
	if atLeast(r, 35) {
		names := make([]string, len(rows))
		for i, k := range rows {
			names[i] = k.Name
		}
		if from, to, next, err = page(q, names); err != nil {
			return err
		}
	}
	out := make([]any, 0, to-from)
	for _, k := range rows[from:to] {
		out = append(out, map[string]any{"keypair": s.keypairView(r, k, false)})
	}
	api.JSON(w, http.StatusOK, s.paged(r, "keypairs", out, next))
	return nil
}

// queryUser is the user_id a keypair request names (microversion 2.10).
func queryUser(r *http.Request) string {
	if atLeast(r, 10) {
		return r.URL.Query().Get("user_id")
	}
	return ""
}

func (s *Service) showKeypair(w http.ResponseWriter, r *http.Request) error {
	user, err := keypairUser(r, queryUser(r))
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "name")
	k := store.Get[Keypair](tx, tKeypairs, user+"/"+name)
	if k == nil {
		return keypairNotFound(user, name)
	}
	api.JSON(w, http.StatusOK, map[string]any{"keypair": s.keypairView(r, k, true)})
	return nil
}

// keypairRequest is a validated create request.
type keypairRequest struct {
	name, typ, user string
	// public is the key to import; with imported false, one is made.
	public   string
	imported bool
}

func readKeypair(r *http.Request) (keypairRequest, error) {
	o, _, err := readBody(r, "keypair")
	if err != nil {
		return keypairRequest{}, err
	}
	fields := []string{"name", "public_key"}
	if atLeast(r, 2) {
		fields = append(fields, "type")
	}
	if atLeast(r, 10) {
		fields = append(fields, "user_id")
	}
	if err := allowOnly(o, fields...); err != nil {
		return keypairRequest{}, err
	}
	in := newInput(o)
	k := keypairRequest{typ: "ssh", imported: in.Has("public_key")}
	k.name = str(in, "name", true, 1, 255)
	switch {
	case in.Err != nil:
	case atLeast(r, 92) && !keypairNameRE292.MatchString(k.name):
		in.Fail(badField("name", k.name, "'%s' does not match '%s'", k.name, keypairNamePattern292))
	case atLeast(r, 92):
	case !keypairNamePattern.MatchString(k.name) || strings.TrimSpace(k.name) == "":
		in.Fail(badRequest("Keypair data is invalid: Keypair name contains unsafe characters"))
	}
	if in.Has("type") {
		k.typ = str(in, "type", false, 0, 0)
		if in.Err == nil && k.typ != "ssh" && k.typ != "x509" {
			in.Fail(badField("type", k.typ, "'%s' is not one of ['ssh', 'x509']", k.typ))
		}
	}
	k.public = str(in, "public_key", atLeast(r, 92), 0, 0)
	userGiven := str(in, "user_id", false, 1, 255)
	if in.Err != nil {
		return keypairRequest{}, in.Err
	}
	if k.user, err = keypairUser(r, userGiven); err != nil {
		return keypairRequest{}, err
	}
	if k.imported && strings.TrimSpace(k.public) == "" {
		return keypairRequest{}, badRequest("Keypair data is invalid: failed to generate fingerprint")
	}
	return k, nil
}

func (s *Service) createKeypair(w http.ResponseWriter, r *http.Request) error {
	req, err := readKeypair(r)
	if err != nil {
		return err
	}
	k := Keypair{UserID: req.user, Name: req.name, Type: req.typ, Created: s.now()}
	private := ""
	if req.imported {
		// Kept as given, as Nova keeps it: a client compares what it
		// imported with what it reads back, trailing newline and all.
		k.PublicKey = req.public
	} else {
		gen := generateKeypair
		if req.typ == "x509" {
			gen = generateCertificate
		}
		if k.PublicKey, private, err = gen(req.user); err != nil {
			return err
		}
	}
	if k.Fingerprint, err = fingerprint(req.typ, k.PublicKey); err != nil {
		return err
	}
	var row Keypair
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdKeypairCreate, keypairCreateCmd{Keypair: k, Project: principal(r).ProjectID}, &row); err != nil {
		return err
	}
	v := s.keypairView(r, &row, false)
	v["user_id"] = row.UserID
	if private != "" {
		v["private_key"] = private
	}
	status := http.StatusOK
	if atLeast(r, 2) {
		status = http.StatusCreated
	}
	api.JSON(w, status, map[string]any{"keypair": v})
	return nil
}

func (s *Service) deleteKeypair(w http.ResponseWriter, r *http.Request) error {
	user, err := keypairUser(r, queryUser(r))
	if err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdKeypairDelete, keypairDeleteCmd{UserID: user, Name: chi.URLParam(r, "name")}, nil); err != nil {
		return err
	}
	if atLeast(r, 2) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
