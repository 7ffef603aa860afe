package compute

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// The rows are computestate's, so node agents read them without this
// package; the aliases keep existing callers compiling.
type (
	Flavor       = computestate.Flavor
	FlavorAccess = computestate.FlavorAccess
	Keypair      = computestate.Keypair
	Fault        = computestate.Fault
	Server       = computestate.Server
	BlockDevice  = computestate.BlockDevice
	ServerGroup  = computestate.ServerGroup
	Quota        = computestate.Quota
	Action       = computestate.Action
	ActionEvent  = computestate.ActionEvent
	ConsoleToken = computestate.ConsoleToken
	Observed     = computestate.Observed
	File         = computestate.File
	UsageRecord  = computestate.UsageRecord
	Migration    = computestate.Migration
)

// Nova's power states.
const (
	PowerNoState   = computestate.PowerNoState
	PowerRunning   = computestate.PowerRunning
	PowerPaused    = computestate.PowerPaused
	PowerShutdown  = computestate.PowerShutdown
	PowerCrashed   = computestate.PowerCrashed
	PowerSuspended = computestate.PowerSuspended
)

// Table names.
const (
	tFlavors  = computestate.TableFlavors
	tAccess   = computestate.TableFlavorAccess
	tKeypairs = computestate.TableKeypairs
	tServers  = computestate.TableServers
	tGroups   = computestate.TableGroups
	tQuotas   = computestate.TableQuotas
	tActions  = computestate.TableActions
	tConsoles = computestate.TableConsoles
	tUsage    = computestate.TableUsage
	// tMigrations holds the resizes' migration records.
	tMigrations = computestate.TableMigrations
)

// Command types.
const (
	cmdFlavorCreate   = "compute.flavor.create"
	cmdFlavorUpdate   = "compute.flavor.update"
	cmdFlavorDelete   = "compute.flavor.delete"
	cmdFlavorSpecs    = "compute.flavor.extra_specs"
	cmdFlavorAccess   = "compute.flavor.access"
	cmdKeypairCreate  = "compute.keypair.create"
	cmdKeypairDelete  = "compute.keypair.delete"
	cmdServerCreate   = "compute.server.create"
	cmdServerUpdate   = "compute.server.update"
	cmdServerTags     = "compute.server.tags"
	cmdServerAction   = "compute.server.action"
	cmdServerRebuild  = "compute.server.rebuild"
	cmdServerImage    = "compute.server.create_image"
	cmdServerUnshelve = "compute.server.unshelve"
	cmdServerReport   = "compute.server.report"
	// cmdServerResize starts a resize; cmdServerResizeEnd confirms or
	// reverts it.
	cmdServerResize    = "compute.server.resize"
	cmdServerResizeEnd = "compute.server.resize_end"
	// cmdServerMigrate starts a cold migration (server_migrate.go).
	cmdServerMigrate = "compute.server.migrate"
	// cmdServerEvacuate rebuilds a server of a down host on another
	// (server_evacuate.go).
	cmdServerEvacuate = "compute.server.evacuate"
	// cmdServerLiveMigrate begins a live migration, cmdServerLiveFlag
	// asks for its abort or its completion (server_livemigrate.go).
	cmdServerLiveMigrate = "compute.server.live_migrate"
	cmdServerLiveFlag    = "compute.server.live_flag"
	// cmdServerRescue starts a rescue or an unrescue.
	cmdServerRescue   = "compute.server.rescue"
	cmdServerBuild    = "compute.server.build"
	cmdServerPassword = "compute.server.password"
	cmdGroupCreate    = "compute.server_group.create"
	cmdGroupDelete    = "compute.server_group.delete"
	cmdQuotaSet       = "compute.quota.set"
	cmdQuotaDelete    = "compute.quota.delete"
	cmdConsoleToken   = "compute.console.token"

	cmdServerInterface = "compute.server.interface"
)

// Schema is the compute service's part of the replicated state: the
// tables of computestate and the handlers of the commands that change
// them.
func Schema() store.Schema {
	s := computestate.Schema()
	s.Handlers = map[string]store.Handler{
		cmdFlavorCreate:                 applyFlavorCreate,
		cmdFlavorUpdate:                 store.Typed(applyFlavorUpdate),
		cmdFlavorDelete:                 store.Typed(applyFlavorDelete),
		cmdFlavorSpecs:                  store.Typed(applyFlavorSpecs),
		cmdFlavorAccess:                 store.Typed(applyFlavorAccess),
		cmdKeypairCreate:                applyKeypairCreate,
		cmdKeypairDelete:                store.Typed(applyKeypairDelete),
		cmdServerCreate:                 store.Typed(withEvents(applyServerCreate, createEvents)),
		cmdServerUpdate:                 store.Typed(applyServerUpdate),
		cmdServerTags:                   store.Typed(applyServerTags),
		cmdServerAction:                 store.Typed(withEvents(applyServerAction, actionEvents)),
		cmdServerRebuild:                store.Typed(withEvents(applyServerRebuild, rebuildEvents)),
		cmdServerReport:                 store.Typed(withEvents(applyServerReport, reportEvents)),
		cmdServerResize:                 withIndex(applyServerResize, resizeEvents),
		cmdServerResizeEnd:              store.Typed(withEvents(applyServerResizeEnd, resizeEndEvents)),
		cmdServerMigrate:                withIndex(applyServerMigrate, migrateEvents),
		cmdServerEvacuate:               withIndex(applyServerEvacuate, evacuateEvents),
		cmdServerLiveMigrate:            withIndex(applyServerLiveMigrate, liveMigrateEvents),
		cmdServerLiveFlag:               store.Typed(applyServerLiveFlag),
		computestate.CmdLiveMigrateStep: store.Typed(applyLiveMigrateStep),
		cmdServerRescue:                 store.Typed(withEvents(applyServerRescue, rescueEvents)),
		cmdServerBuild:                  store.Typed(withEvents(applyServerBuild, buildEvents)),
		cmdServerPassword:               store.Typed(applyServerPassword),
		cmdGroupCreate:                  store.Typed(applyGroupCreate),
		cmdGroupDelete:                  store.Typed(applyGroupDelete),
		cmdQuotaSet:                     store.Typed(applyQuotaSet),
		cmdQuotaDelete:                  store.Typed(applyQuotaDelete),
		cmdConsoleToken:                 store.Typed(applyConsoleToken),
		cmdServiceUpdate:                store.Typed(applyServiceUpdate),

		cmdServerInterface: store.Typed(withEvents(applyServerInterface, interfaceEvents)),

		cmdVolumeAttachmentUpdate: store.Typed(applyVolumeAttachmentUpdate),
		cmdBootVolumeState:        store.Typed(applyBootVolumeState),
		cmdShelvedVolume:          store.Typed(applyShelvedVolume),

		computestate.CmdVolumeExtended: store.Typed(applyVolumeExtended),
		computestate.CmdExtendDone:     store.Typed(applyExtendDone),
		cmdServerImage:                 store.Typed(withEvents(applyServerImage, serverImageEvents)),
		cmdServerUnshelve:              store.Typed(withEvents(applyServerUnshelve, serverUnshelveEvents)),
		computestate.CmdImageStep:      store.Typed(applyImageStep),
	}
	for typ, h := range aggregateHandlers() {
		s.Handlers[typ] = h
	}
	s.Observers = []store.Observer{eventstate.Observe(eventResources()...)}
	return s
}

// eventResources are how flavors, keypairs and server groups appear in the
// event log. Servers record theirs through withEvents, which names their
// actions. A flavor belongs to no project and a keypair to a user, so
// only admins read their events.
func eventResources() []eventstate.Resource {
	return []eventstate.Resource{
		{Table: computestate.TableFlavors, Type: eventstate.Flavor, Describe: func(row any) eventstate.Subject {
			f := row.(*computestate.Flavor)
			return eventstate.Subject{ID: f.ID, Detail: fmt.Sprintf("%s: %d vCPU, %d MB RAM, %d GB disk", f.Name, f.VCPUs, f.RAM, f.Disk)}
		}},
		{Table: computestate.TableKeypairs, Type: eventstate.Keypair, Describe: func(row any) eventstate.Subject {
			k := row.(*computestate.Keypair)
			return eventstate.Subject{ID: k.ID, Detail: k.Type + " " + k.Fingerprint}
		}},
		{Table: computestate.TableGroups, Type: eventstate.ServerGroup, Describe: func(row any) eventstate.Subject {
			g := row.(*computestate.ServerGroup)
			return eventstate.Subject{ID: g.ID, Project: g.Project, Detail: g.Policy}
		}},
	}
}

// TableNames lists the tables Load reads, so a watcher can watch them.
func TableNames() []string { return computestate.TableNames() }

// Load reads every server (see computestate.Load).
func Load(txn *memdb.Txn) ([]Server, error) { return computestate.Load(txn) }

// Hostname is the hostname a server's guest gets (see
// computestate.Hostname).
func Hostname(sv *Server) string { return computestate.Hostname(sv) }
