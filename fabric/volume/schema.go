package volume

import (
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Schema is the volume service's part of the replicated state.
func Schema() store.Schema { return volstate.Schema() }
