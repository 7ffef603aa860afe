package identity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Password guessing is slowed per (source address, user): after
// freeFailures failures from one source for one user, that source waits
// 1 s, 2 s, 4 s … (at most maxBackoff) after each further failure before
// it may try that user again, and is answered 429 with Retry-After
// meanwhile, without the password being checked. Nothing else is slowed:
// the user, from any source that has not failed, logs in as usual, so
// guessing cannot lock anyone out. A success clears the source's count.
//
// Failures count cluster-wide: each node adds the failures it saw to the
// replicated state once per flushEvery, in one command for all of them,
// rather than one Raft entry per failed login (which would let a guesser
// turn bcrypt-bound attempts into log writes). Between flushes a node
// counts its own failures on top of the replicated ones, so at most one
// flush interval of failures on each node goes unseen by the others.
// Counts older than forgetAfter are dropped.
const (
	freeFailures = 5
	maxBackoff   = 5 * time.Minute
	forgetAfter  = 15 * time.Minute
	flushEvery   = time.Second
	// maxFlush bounds one command; the rest waits for the next flush.
	maxFlush = 1000
)

// LoginFailures is a (source, user) pair's recent failed logins.
type LoginFailures struct {
	ID     string    `json:"id"` // source + " " + user
	Count  int       `json:"count"`
	Last   time.Time `json:"last"`
	Source string    `json:"source"`
	User   string    `json:"user"`
}

// failureRecord is what one node adds for a pair: Count more failures,
// the latest at Last; Reset (a success) clears the pair first.
type failureRecord struct {
	Source string    `json:"source"`
	User   string    `json:"user"`
	Count  int       `json:"count,omitempty"`
	Last   time.Time `json:"last"`
	Reset  bool      `json:"reset,omitempty"`
}

type failuresCmd struct {
	Now     time.Time       `json:"now"` // counts older than forgetAfter go
	Records []failureRecord `json:"records"`
}

const (
	cmdLoginFailures = "identity.login.failures"
	tLoginFailures   = "login_failures"
)

func throttleKey(source, user string) string { return source + " " + user }

func applyLoginFailures(tx *memdb.Txn, c failuresCmd) (any, error) {
	for _, rec := range c.Records {
		id := throttleKey(rec.Source, rec.User)
		row := LoginFailures{ID: id, Source: rec.Source, User: rec.User}
		if old := store.Get[LoginFailures](tx, tLoginFailures, id); old != nil && !rec.Reset {
			row = *old
		}
		if rec.Reset && rec.Count == 0 {
			if old := store.Get[LoginFailures](tx, tLoginFailures, id); old != nil {
				if err := tx.Delete(tLoginFailures, old); err != nil {
					return nil, err
				}
			}
			continue
		}
		row.Count += rec.Count
		if rec.Last.After(row.Last) {
			row.Last = rec.Last
		}
		if err := tx.Insert(tLoginFailures, &row); err != nil {
			return nil, err
		}
	}
	for _, row := range store.All[LoginFailures](tx, tLoginFailures, "id") {
		if c.Now.Sub(row.Last) > forgetAfter {
			if err := tx.Delete(tLoginFailures, row); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// backoff is how long a source waits after its failures-th failure.
func backoff(failures int) time.Duration {
	if failures < freeFailures {
		return 0
	}
	shift := failures - freeFailures
	if shift > 20 {
		return maxBackoff
	}
	return min(time.Second<<shift, maxBackoff)
}

// loginThrottle holds this node's failures not yet in the replicated
// state: pending ones, and those of a flush under way.
type loginThrottle struct {
	mu       sync.Mutex
	pending  map[string]*failureRecord
	inflight map[string]*failureRecord
}

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{pending: map[string]*failureRecord{}, inflight: map[string]*failureRecord{}}
}

// errThrottled is a refused attempt: the source must wait.
type errThrottled struct{ wait time.Duration }

func (e *errThrottled) Error() string {
	return fmt.Sprintf("too many failed logins from this address; retry in %s", e.wait)
}

// retryAfter is the Retry-After value: whole seconds, rounded up.
func (e *errThrottled) retryAfter() string {
	return strconv.Itoa(int(math.Ceil(e.wait.Seconds())))
}

// check refuses an attempt from source on user while its backoff runs.
func (l *loginThrottle) check(tx *memdb.Txn, source, user string, now time.Time) error {
	key := throttleKey(source, user)
	count, last := 0, time.Time{}
	if row := store.Get[LoginFailures](tx, tLoginFailures, key); row != nil && now.Sub(row.Last) <= forgetAfter {
		count, last = row.Count, row.Last
	}
	l.mu.Lock()
	for _, m := range []map[string]*failureRecord{l.inflight, l.pending} {
		if rec := m[key]; rec != nil {
			if rec.Reset {
				count, last = 0, time.Time{}
			}
			count += rec.Count
			if rec.Last.After(last) {
				last = rec.Last
			}
		}
	}
	l.mu.Unlock()
	if wait := last.Add(backoff(count)).Sub(now); wait > 0 {
		return &errThrottled{wait: wait}
	}
	return nil
}

func (l *loginThrottle) fail(source, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := throttleKey(source, user)
	rec := l.pending[key]
	if rec == nil {
		rec = &failureRecord{Source: source, User: user}
		l.pending[key] = rec
	}
	rec.Count++
	rec.Last = now
}

// succeed clears the pair, here at once and cluster-wide at the next
// flush, when it has failures anywhere.
func (l *loginThrottle) succeed(tx *memdb.Txn, source, user string, now time.Time) {
	key := throttleKey(source, user)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, inflight := l.inflight[key]
	if store.Get[LoginFailures](tx, tLoginFailures, key) == nil && l.pending[key] == nil && !inflight {
		return
	}
	l.pending[key] = &failureRecord{Source: source, User: user, Last: now, Reset: true}
}

// take moves up to maxFlush pending records in flight.
func (l *loginThrottle) take() []failureRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []failureRecord
	for key, rec := range l.pending {
		if len(out) == maxFlush {
			break
		}
		out = append(out, *rec)
		l.inflight[key] = rec
		delete(l.pending, key)
	}
	return out
}

// done ends a flush: applied records leave; records of a failed flush
// return to pending (counted again rather than lost, should the failed
// proposal have committed after all).
func (l *loginThrottle) done(recs []failureRecord, applied bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rec := range recs {
		key := throttleKey(rec.Source, rec.User)
		delete(l.inflight, key)
		if applied {
			continue
		}
		if p := l.pending[key]; p != nil && !p.Reset {
			if !rec.Reset {
				p.Count += rec.Count
			}
			continue
		} else if p != nil {
			continue // a later success wins
		}
		r := rec
		l.pending[key] = &r
	}
}

// flushFailures adds this node's failures to the replicated state.
func (s *Service) flushFailures(ctx context.Context) error {
	recs := s.throttle.take()
	if len(recs) == 0 {
		return nil
	}
	_, err := s.cfg.Repl.Propose(ctx, cmdLoginFailures, failuresCmd{Now: s.cfg.Now().UTC(), Records: recs})
	s.throttle.done(recs, err == nil)
	return err
}

// source is the address a request comes from, for the throttle. Only the
// connection's address counts: a client-supplied X-Forwarded-For would
// let a guesser pick a new source for every attempt.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return strings.ToLower(host)
}

// throttledError turns a refusal into Keystone's 429 with Retry-After.
func throttledError(w http.ResponseWriter, err error) error {
	var t *errThrottled
	if !errors.As(err, &t) {
		return err
	}
	w.Header().Set("Retry-After", t.retryAfter())
	return &api.Error{Status: http.StatusTooManyRequests, Msg: t.Error()}
}
