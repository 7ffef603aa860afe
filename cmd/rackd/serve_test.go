package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestFirstStartRegistersDisksBeforeTheAdmin: the first image upload of a
// new cloud (rackbench launch, right after /healthz turned green) got a
// 500 "no storage disks are available" when it came before this node's
// membership and disks were in the state. No client can hold a token
// before the admin exists, so both must be there by then.
func TestFirstStartRegistersDisksBeforeTheAdmin(t *testing.T) {
	tests := map[string]struct {
		notMember    int // Member is false this many times first
		diskFailures int // RegisterDisks fails this many times first
		want         string
	}{
		"registers then creates":   {0, 0, "leader? leader? member? disks admin"},
		"waits for the membership": {2, 0, "leader? leader? member? member? member? disks admin"},
		"retries the registration": {0, 2, "leader? leader? member? disks disks disks admin"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var calls []string
			leads := 0
			f := firstStart{
				Retry: time.Millisecond,
				IsLeader: func() bool {
					calls = append(calls, "leader?")
					leads++
					return leads > 1
				},
				Member: func() bool {
					calls = append(calls, "member?")
					tc.notMember--
					return tc.notMember < 0
				},
				RegisterDisks: func(context.Context) error {
					calls = append(calls, "disks")
					if tc.diskFailures > 0 {
						tc.diskFailures--
						return errors.New("no leader")
					}
					return nil
				},
				CreateAdmin: func(_ context.Context, pw string) error {
					calls = append(calls, "admin")
					return nil
				},
			}
			if err := f.run(context.Background(), "secret-pw"); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(calls, " "); got != tc.want {
				t.Fatalf("calls %q, want %q", got, tc.want)
			}
		})
	}
}

// A membership that never shows is logged and the cloud starts anyway.
func TestFirstStartGoesOnWithoutItsMembership(t *testing.T) {
	var log bytes.Buffer
	admin := false
	f := firstStart{
		Retry:         time.Microsecond,
		IsLeader:      func() bool { return true },
		Member:        func() bool { return false },
		RegisterDisks: func(context.Context) error { return nil },
		CreateAdmin:   func(context.Context, string) error { admin = true; return nil },
		Log:           slog.New(slog.NewTextHandler(&log, nil)),
	}
	if err := f.run(context.Background(), "secret-pw"); err != nil || !admin || !strings.Contains(log.String(), "membership") {
		t.Fatalf("err %v, admin created %v, log %q", err, admin, log.String())
	}
}

func TestFirstStartGivesUpWithoutTheAdmin(t *testing.T) {
	admin := false
	f := firstStart{
		Retry:         time.Microsecond,
		IsLeader:      func() bool { return true },
		Member:        func() bool { return true },
		RegisterDisks: func(context.Context) error { return errors.New("disk set refused") },
		CreateAdmin:   func(context.Context, string) error { admin = true; return nil },
	}
	err := f.run(context.Background(), "secret-pw")
	if err == nil || !strings.Contains(err.Error(), "register disks: disk set refused") || admin {
		t.Fatalf("err %v, admin created %v", err, admin)
	}
}
