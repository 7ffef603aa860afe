package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestFirstStartRegistersDisksBeforeTheAdmin: the first image upload of a
// new cloud (rackbench launch, right after /healthz turned green) got a
// 500 when it came before the object store had registered this node's
// disks. No client can hold a token before the admin exists, so the disks
// must be in the state by then.
func TestFirstStartRegistersDisksBeforeTheAdmin(t *testing.T) {
	tests := map[string]struct {
		diskFailures int // RegisterDisks fails this many times first
		want         string
	}{
		"registers then creates":   {0, "leader? leader? disks admin"},
		"retries the registration": {2, "leader? leader? disks disks disks admin"},
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

func TestFirstStartGivesUpWithoutTheAdmin(t *testing.T) {
	admin := false
	f := firstStart{
		Retry:         time.Microsecond,
		IsLeader:      func() bool { return true },
		RegisterDisks: func(context.Context) error { return errors.New("disk set refused") },
		CreateAdmin:   func(context.Context, string) error { admin = true; return nil },
	}
	err := f.run(context.Background(), "secret-pw")
	if err == nil || !strings.Contains(err.Error(), "register disks: disk set refused") || admin {
		t.Fatalf("err %v, admin created %v", err, admin)
	}
}
