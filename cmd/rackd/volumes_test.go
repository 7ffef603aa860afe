package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// An operator export of a volume attached to a server is refused before
// the volume is opened: opening it would take the guest's writer fence.
func TestExportOfAnAttachedVolumeIsRefused(t *testing.T) {
	local, err := store.NewLocal(volstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const vol = "81111111-2222-3333-4444-555555555555"
	if _, err := local.Propose(ctx, volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: volstate.Volume{ID: vol, Project: "p", Size: 1,
		Status: volstate.StatusAvailable, TypeID: volstate.DefaultTypeID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Propose(ctx, volstate.CmdAttach, volstate.AttachCmd{VolumeID: vol,
		Attachment: volstate.Attachment{ID: "a1", ServerID: "vm-1", Host: "n1"}}); err != nil {
		t.Fatal(err)
	}
	// No block store: the refusal must come before it is used.
	e := &volumeExports{node: "n1", state: local.Read, log: slog.Default()}
	_, err = e.export(ctx, vol)
	if api.StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "vm-1") {
		t.Fatalf("export of an attached volume: %v", err)
	}
	if e.exported(vol) {
		t.Fatal("the refused volume is exported")
	}
	if s, err := e.attachedTo(ctx, "not-a-cinder-volume"); s != "" || err != nil {
		t.Fatalf("a raw block volume: %q %v", s, err)
	}
}
