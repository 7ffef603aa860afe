package identity

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// loginFrom posts a password login for user from the address source to
// svc and returns the status, the Retry-After header and the body.
func loginFrom(t *testing.T, svc *Service, source, user, password string) (int, string, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(passwordAuth(user, password, ""))
	req := httptest.NewRequest("POST", "/v3/auth/tokens", strings.NewReader(string(raw)))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = source + ":40000"
	w := httptest.NewRecorder()
	svc.Handler().ServeHTTP(w, req)
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, w.Header().Get("Retry-After"), body
}

func TestLoginThrottleSlowsTheGuessingSourceOnly(t *testing.T) {
	f := newFixture(t)
	const guesser, other = "192.0.2.7", "198.51.100.9"
	for i := 0; i < freeFailures; i++ {
		if code, _, _ := loginFrom(t, f.svc, guesser, "admin", "guess"); code != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, code)
		}
	}
	// The guesser waits, even with the right password, and is told how
	// long in Keystone's error body.
	code, retry, body := loginFrom(t, f.svc, guesser, "admin", "admin-secret")
	if code != http.StatusTooManyRequests || retry != "1" {
		t.Fatalf("right password from the guessing source: %d Retry-After %q, want 429 and 1", code, retry)
	}
	if e, _ := body["error"].(map[string]any); e == nil || e["code"] != float64(429) || e["message"] == "" {
		t.Fatalf("429 body %v, want Keystone's error", body)
	}
	// Another source, which has not failed, logs in at once.
	if code, _, _ := loginFrom(t, f.svc, other, "admin", "admin-secret"); code != 201 {
		t.Fatalf("right password from a source that has not failed: %d, want 201", code)
	}
	// The wait doubles with each further failure.
	f.now = f.now.Add(time.Second)
	if code, _, _ := loginFrom(t, f.svc, guesser, "admin", "guess"); code != 401 {
		t.Fatalf("guess after the wait: %d, want 401", code)
	}
	if code, retry, _ := loginFrom(t, f.svc, guesser, "admin", "guess"); code != 429 || retry != "2" {
		t.Fatalf("next guess: %d Retry-After %q, want 429 and 2", code, retry)
	}
	// Once waited out, the right password works and clears the count.
	f.now = f.now.Add(2 * time.Second)
	if code, _, _ := loginFrom(t, f.svc, guesser, "admin", "admin-secret"); code != 201 {
		t.Fatalf("right password after the wait: %d, want 201", code)
	}
	if code, _, _ := loginFrom(t, f.svc, guesser, "admin", "guess"); code != 401 {
		t.Fatalf("a failure after a success: %d, want 401 (not throttled)", code)
	}
	// Guessing at unknown users is slowed the same way.
	for i := 0; i < freeFailures; i++ {
		loginFrom(t, f.svc, guesser, "nobody", "x")
	}
	if code, _, _ := loginFrom(t, f.svc, guesser, "nobody", "x"); code != 429 {
		t.Fatalf("guessing an unknown user: %d, want 429", code)
	}
}

// Failures seen by one node slow the same source on every node, and reach
// the replicated state in one command per flush, not one per failure.
func TestLoginFailuresCountClusterWide(t *testing.T) {
	f := newFixture(t)
	second, err := New(Config{Repl: f.local, Now: func() time.Time { return f.now }, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	const guesser = "203.0.113.5"
	for i := 0; i < freeFailures; i++ {
		loginFrom(t, f.svc, guesser, "admin", "guess")
	}
	before := f.local.Applied[cmdLoginFailures]
	if err := f.svc.flushFailures(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.local.Applied[cmdLoginFailures] - before; n != 1 {
		t.Fatalf("%d failures took %d commands, want 1", freeFailures, n)
	}
	code, retry, _ := loginFrom(t, second, guesser, "admin", "admin-secret")
	if code != 429 {
		t.Fatalf("the same source on another node: %d, want 429", code)
	}
	if s, _ := strconv.Atoi(retry); s < 1 {
		t.Fatalf("Retry-After %q", retry)
	}
	// A success on the other node clears the count everywhere once flushed.
	f.now = f.now.Add(time.Second)
	if code, _, _ := loginFrom(t, second, guesser, "admin", "admin-secret"); code != 201 {
		t.Fatalf("after the wait: %d", code)
	}
	if err := second.flushFailures(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tx := f.local.Local(); tx != nil {
		if row, _ := tx.First(tLoginFailures, "id", throttleKey(guesser, userIDOf(t, f, "admin"))); row != nil {
			t.Fatalf("a success left the count in the replicated state: %+v", row)
		}
	}
}

func userIDOf(t *testing.T, f *fixture, name string) string {
	t.Helper()
	raw, _ := f.local.Local().First(tUsers, "name", "default", name)
	if raw == nil {
		t.Fatalf("no user %s", name)
	}
	return raw.(*User).ID
}
