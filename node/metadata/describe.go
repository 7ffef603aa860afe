package metadata

import (
	"encoding/base64"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/node/configdrive"
)

// Describe is what the config drive and the metadata service tell server
// s about itself, NICs aside (the caller knows their devices): one
// builder, so that both say the same.
func Describe(s computestate.Server) configdrive.Server {
	cd := configdrive.Server{
		UUID: s.ID, Name: s.Name, Hostname: computestate.Hostname(&s), Project: s.Project, AZ: s.AZ, Meta: s.Metadata,
		BlockDeviceMapping: computestate.DeviceMapping(&s), InstanceType: s.Flavor.Name,
	}
	if s.PublicKey != "" {
		cd.Keys = []configdrive.Key{{Name: s.KeyName, Data: s.PublicKey}}
	}
	if s.UserData != "" {
		if ud, err := base64.StdEncoding.DecodeString(s.UserData); err == nil {
			cd.UserData = ud
		}
	}
	for _, f := range s.Personality {
		// The API checked the contents are base64.
		if data, err := base64.StdEncoding.DecodeString(f.Contents); err == nil {
			cd.Files = append(cd.Files, configdrive.File{Path: f.Path, Data: data})
		}
	}
	return cd
}

// NIC is port p as the server sees it, on the host device dev.
func NIC(p netstate.Port, dev string, mtu int) configdrive.NIC {
	return configdrive.NIC{PortID: p.ID, NetworkID: p.NetworkID, MAC: p.MAC, MTU: mtu, Device: dev}
}
