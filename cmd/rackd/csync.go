package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/rackstack/rackstack/storage/swift"
)

// devSyncRealm is the realm a dev cloud declares when it is given no
// realms file: itself, one cluster named after the node, so that
// container sync between its own containers works out of the box.
const devSyncRealm = "rackstack"

func containerSyncFlags(mode string, str func(p *string, name, def, help string), durVar func(p *time.Duration, name string, def time.Duration, help string), o *options) {
	def := ""
	if mode == "dev" {
		def = "(dev: //" + devSyncRealm + "/<name>, this cloud)"
	}
	str(&o.ContainerSyncRealms, "container-sync-realms", "", "Swift container sync realms, a file in the format of Swift's container-sync-realms.conf ([realm] key, key2, cluster_NAME = https://host/object/v1/); the same file on every node. Without it container sync is off "+def)
	str(&o.ContainerSyncCurrent, "container-sync-current", "", "//REALM/CLUSTER: which cluster of the realms this cloud is (/info marks it)")
	durVar(&o.ContainerSyncInterval, "container-sync-interval", 5*time.Second, "pause between the container syncer's passes (it runs on the Raft leader)")
}

// containerSyncRealms reads --container-sync-realms; a dev cloud without
// one declares its own realm, with a key drawn at each start (sync
// within the cloud needs no other party to know it). nil: sync is off.
func containerSyncRealms(o *options, dev bool) (*swift.Realms, error) {
	var rs *swift.Realms
	switch {
	case o.ContainerSyncRealms != "":
		f, err := os.Open(o.ContainerSyncRealms)
		if err != nil {
			return nil, fmt.Errorf("--container-sync-realms: %w", err)
		}
		defer f.Close()
		if rs, err = swift.ParseRealms(f); err != nil {
			return nil, fmt.Errorf("--container-sync-realms %s: %w", o.ContainerSyncRealms, err)
		}
	case dev:
		var key [32]byte
		if _, err := rand.Read(key[:]); err != nil {
			return nil, err
		}
		rs = swift.NewRealm(devSyncRealm, hex.EncodeToString(key[:]), map[string]string{o.Name: o.apiURL() + "/object/v1/"})
		if o.ContainerSyncCurrent == "" {
			o.ContainerSyncCurrent = "//" + devSyncRealm + "/" + o.Name
		}
	default:
		if o.ContainerSyncCurrent != "" {
			return nil, fmt.Errorf("--container-sync-current needs --container-sync-realms")
		}
		return nil, nil
	}
	if o.ContainerSyncCurrent != "" {
		if err := rs.SetCurrent(o.ContainerSyncCurrent); err != nil {
			return nil, fmt.Errorf("--container-sync-current %w", err)
		}
	}
	return rs, nil
}
