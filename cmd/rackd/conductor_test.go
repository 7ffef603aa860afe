package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/node/conductor"
)

func TestConductorKeySurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "baremetal", "conductor.key")
	first, err := conductorKey(path)
	if err != nil || len(first) != 32 {
		t.Fatalf("%x %v", first, err)
	}
	again, err := conductorKey(path)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatal("a restarted rackd derives tokens from another key: machines in the middle of a boot would be refused")
	}
}

func TestSealedPasswordsOpenOnlyForTheirNode(t *testing.T) {
	k, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := ring.Seal([]byte("hunter2"), []byte("node-1"))
	if err != nil {
		t.Fatal(err)
	}
	p := sealedPasswords{ring}
	n := &bmstate.Node{ID: "node-1", Secrets: map[string]string{"ipmi_password": sealed}}
	if got, err := p.Unseal(n, "ipmi_password"); err != nil || got != "hunter2" {
		t.Fatalf("Unseal = %q, %v", got, err)
	}
	other := &bmstate.Node{ID: "node-2", Secrets: n.Secrets}
	if _, err := p.Unseal(other, "ipmi_password"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("another node's copy opened: %v", err)
	}
}

func TestFakeHardwareKeepsItsPowerBetweenCalls(t *testing.T) {
	ctx := context.Background()
	var b bmcs
	info := map[string]string{"fake_name": "m1"}
	first, err := b.open(ctx, "fake-hardware", info, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.SetPower(ctx, conductor.PowerOn); err != nil {
		t.Fatal(err)
	}
	first.Close(ctx)
	again, err := b.open(ctx, "fake-hardware", info, "")
	if err != nil {
		t.Fatal(err)
	}
	if on, err := again.PowerState(ctx); err != nil || !on {
		t.Fatalf("a fake machine powered on reads on=%t, %v on the next call", on, err)
	}
	other, _ := b.open(ctx, "fake-hardware", map[string]string{"fake_name": "m2"}, "")
	if on, _ := other.PowerState(ctx); on {
		t.Fatal("another fake machine shares its power")
	}
	if _, err := b.open(ctx, "ipmi", map[string]string{}, ""); err == nil || !strings.Contains(err.Error(), "ipmi_address") {
		t.Fatalf("ipmi without an address: %v", err)
	}
}
