package compute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Volumes made for a server create, after the 202. As Nova's compute
// manager does in _prep_block_device, a create whose block devices ask
// for new volumes (boot from a volume made from an image or a snapshot,
// blank or made data volumes) answers once the request is checked; the
// server waits in BUILD, task_state block_device_mapping, without a host,
// while this service makes the volumes and waits for each to be
// available. Once they all are, one command (serverBuildCmd "place")
// places the server and attaches them, and its ports are bound. A volume
// that cannot be made puts the server in ERROR with the fault "Build of
// instance … aborted: …" and a failed event on its create action; the
// server stays, deletable, and the volumes made with
// delete_on_termination go, as Nova's _cleanup_volumes does.
//
// An existing volume the create names (the boot volume, or a data
// volume) is reserved for the server in the command that records it, as
// Nova's API reserves it with Cinder's attachment_create before it
// answers: reserved, its attachment naming the server (reserveVolumes),
// so no other create or attach takes it before the server is placed.
// Placing attaches it under that attachment; a failed build, a server
// that finds no host or is deleted before it is placed gives it back
// (unreserveVolumes, or volstate.ReleaseServer when the server goes).
//
// The volumes' ids are chosen by the API and kept in the server's row
// (BlockDevices) before any is made, so none is ever made that the row
// does not name. The row names the process making them (BuildNode,
// BuildRun): a server deleted meanwhile is hidden and removed by that
// process once the volume in hand is made, with the volumes made for it
// (delete_on_termination); a process that died leaves its builds to the
// next process on its node, or to the leader for a lost node, which
// claim them (serverBuildCmd "claim") and carry on from the volumes that
// exist.

// taskBlockDeviceMapping is Nova's task_state while a server's volumes
// are made.
const taskBlockDeviceMapping = "block_device_mapping"

// How long a build waits for a volume to leave creating after the volume
// service's call returned (or after a restart): Nova's
// block_device_allocate_retries and _retries_interval.
var (
	volumeWaitAttempts = 60
	volumeWaitInterval = 3 * time.Second
)

// settleBuildsEvery is how often builds whose process died are looked for.
const settleBuildsEvery = 15 * time.Second

// makesVolumes says whether a create's block devices ask for new volumes.
func (req *serverRequest) makesVolumes() bool {
	if req.boot != nil && req.boot.Source != "volume" {
		return true
	}
	for _, d := range req.volumes {
		if d.Source != "volume" {
			return true
		}
	}
	return false
}

// blockDevices are the create's volumes as its server row keeps them,
// each new one under the id it will be made with.
func (req *serverRequest) blockDevices() []BlockDevice {
	var out []BlockDevice
	add := func(d *blockDevice, boot bool) {
		b := BlockDevice{Boot: boot, Source: d.Source, UUID: d.UUID, Type: d.Type, Size: d.Size,
			DeleteOnTermination: d.DeleteOnTermination, VolumeID: d.UUID, Tag: d.Tag}
		if d.Source != "volume" {
			b.VolumeID = api.NewUUID()
		}
		if !boot {
			b.AttachmentID = api.NewUUID()
		}
		out = append(out, b)
	}
	if req.boot != nil {
		add(req.boot, true)
	}
	for i := range req.volumes {
		add(&req.volumes[i], false)
	}
	return out
}

// Run resumes the builds whose process died (at start, then every
// settleBuildsEvery); when ctx ends it stops the builds in hand, which
// the next process resumes, and waits for them.
func (s *Service) Run(ctx context.Context) error {
	return s.bg.Run(ctx, settleBuildsEvery, s.resumeBuilds)
}

// abandoned reports whether the build a row names died with its
// process: an earlier process of this node, or (on the leader) one of a
// lost node.
func (s *Service) abandoned(node, run string) bool {
	if node == s.cfg.Node {
		return run != s.run
	}
	return s.cfg.IsLeader() && s.cfg.NodeLost(node)
}

// resumeBuilds claims the builds whose process died and carries them on.
func (s *Service) resumeBuilds(ctx context.Context) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return
	}
	for _, sv := range store.All[Server](tx, tServers, "id") {
		if sv.BuildRun == s.run && !s.building(sv.ID) {
			// This process's, but not running: a create or a step
			// whose proposal's outcome was unknown.
			s.startBuild(sv.ID, nil)
			continue
		}
		if sv.BuildRun == "" || !s.abandoned(sv.BuildNode, sv.BuildRun) {
			continue
		}
		c := serverBuildCmd{ID: sv.ID, Op: "claim", Node: s.cfg.Node, Run: s.run, PrevNode: sv.BuildNode, PrevRun: sv.BuildRun, Now: s.now()}
		if _, err := s.cfg.Repl.Propose(ctx, cmdServerBuild, c); err != nil {
			if !api.Rejected(err) {
				s.log.Warn("compute: claim an abandoned build", "server", sv.ID, "err", err)
			}
			continue
		}
		s.log.Warn("compute: the build of a server was abandoned; resumed", "server", sv.ID, "node", sv.BuildNode)
		s.startBuild(sv.ID, nil)
	}
}

// startBuild makes a server's volumes in the background; p is who asked
// for the server (nil: its owner, for a resumed build).
func (s *Service) startBuild(id string, p *api.Principal) {
	s.mu.Lock()
	if s.builds[id] {
		s.mu.Unlock()
		return
	}
	s.builds[id] = true
	s.mu.Unlock()
	// Once Run has ended nothing starts: the row keeps its build and the
	// next process resumes it.
	s.bg.Go(func(ctx context.Context) {
		defer func() {
			s.mu.Lock()
			delete(s.builds, id)
			s.mu.Unlock()
		}()
		s.build(ctx, id, p)
	})
}

// building says whether this process runs the build of server id.
func (s *Service) building(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.builds[id]
}

// buildRow is the server if this process builds it, else nil.
func (s *Service) buildRow(ctx context.Context, id string) *Server {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil
	}
	sv := store.Get[Server](tx, tServers, id)
	if sv == nil || sv.BuildRun != s.run {
		return nil
	}
	return sv
}

// build makes a server's volumes one after the other, then places it;
// a server deleted meanwhile is removed once the volume in hand is made.
// When the work context ends the build stops where it is, for the next
// process.
func (s *Service) build(ctx context.Context, id string, p *api.Principal) {
	sv := s.buildRow(ctx, id)
	if sv == nil {
		return
	}
	if p == nil || p.ProjectID != sv.Project {
		p = &api.Principal{UserID: sv.UserID, ProjectID: sv.Project, Roles: []string{"member", "reader"}}
	}
	for _, d := range sv.BlockDevices {
		if sv.Want == "deleted" {
			break
		}
		if d.Source == "volume" {
			continue
		}
		if err := s.makeBlockDevice(ctx, sv, p, d); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.failBuild(ctx, sv, p, err.Error())
			return
		}
		if sv = s.buildRow(ctx, id); sv == nil {
			return
		}
	}
	if sv.Want == "deleted" {
		s.removeBuilt(ctx, sv, p)
		return
	}
	s.placeBuilt(ctx, sv, p)
}

// volumeRow is a volume's row, nil if there is none (or it cannot be
// read).
func (s *Service) volumeRow(ctx context.Context, id string) *volstate.Volume {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil
	}
	return store.Get[volstate.Volume](tx, volstate.VolumeTable, id)
}

// makeBlockDevice makes one new volume of a server, unless it exists (a
// resumed build), and waits for it to be available, as Nova's
// _await_block_device_map_created does; the error says why it is not,
// in Nova's words.
func (s *Service) makeBlockDevice(ctx context.Context, sv *Server, p *api.Principal, d BlockDevice) error {
	start := time.Now()
	if s.cfg.Volumes == nil {
		return errors.New("Volumes made at server create are not supported by this cloud.")
	}
	if s.volumeRow(ctx, d.VolumeID) == nil {
		err := s.newVolume(ctx, p, d.VolumeID, d.Source, d.UUID, d.Size, sv.Name, d.Type)
		if err != nil && (ctx.Err() != nil || s.volumeRow(ctx, d.VolumeID) == nil) {
			// Refused before it was made (quota, a snapshot gone, ...).
			return errors.New(reason(err))
		}
	}
	for attempt := 1; ; attempt++ {
		v := s.volumeRow(ctx, d.VolumeID)
		switch {
		case v == nil:
			return fmt.Errorf("Volume %s could not be found.", d.VolumeID)
		case v.Status == volstate.StatusAvailable:
			return nil
		case v.Status != volstate.StatusCreating && v.Status != volstate.StatusDownloading || attempt >= volumeWaitAttempts:
			return fmt.Errorf("Volume %s did not finish being created even after we waited %d seconds or %d attempts. And its status is %s.",
				v.ID, int(time.Since(start).Seconds()), attempt, v.Status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(volumeWaitInterval):
		}
	}
}

// failBuild puts a server whose volumes could not be made in ERROR with
// the fault, releases its ports and deletes the volumes made for it with
// delete_on_termination, and the one that failed.
func (s *Service) failBuild(ctx context.Context, sv *Server, p *api.Principal, why string) {
	msg := fmt.Sprintf("Build of instance %s aborted: %s", sv.ID, why)
	c := serverBuildCmd{ID: sv.ID, Op: "fail", Run: s.run, Fault: msg, Now: s.now()}
	if _, err := s.cfg.Repl.Propose(ctx, cmdServerBuild, c); err != nil {
		s.log.Error("compute: record a failed build", "server", sv.ID, "fault", msg, "err", err)
		return
	}
	s.log.Warn("compute: build of a server failed", "server", sv.ID, "project", sv.Project, "fault", msg)
	s.releasePorts(ctx, sv)
	s.deleteBuiltVolumes(ctx, sv, p, true)
}

// placeBuilt places a server whose volumes all exist and attaches them,
// in one command, then binds its ports; with no host it is in ERROR as
// any unplaced server, and gives back its ports and volumes.
func (s *Service) placeBuilt(ctx context.Context, sv *Server, p *api.Principal) {
	hosts, err := s.schedulerHosts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.failBuild(ctx, sv, p, err.Error())
		}
		return
	}
	c := serverBuildCmd{ID: sv.ID, Op: "place", Run: s.run, Hosts: hosts, Scheduler: s.cfg.Scheduler, Now: s.now()}
	var row Server
	_, err = api.Propose(ctx, s.cfg.Repl, cmdServerBuild, c, &row)
	switch {
	case err != nil && api.Rejected(err):
		if now := s.buildRow(ctx, sv.ID); now != nil {
			if now.Want == "deleted" {
				s.removeBuilt(ctx, now, p)
			} else {
				// A volume it names is no longer free, say.
				s.failBuild(ctx, now, p, reason(err))
			}
		}
		return
	case err != nil:
		// Unknown outcome: the server may be placed (its ports are
		// bound if it is seen placed); if it is not, the build is
		// resumed (resumeBuilds).
		s.log.Error("compute: place a server whose volumes are made", "server", sv.ID, "err", err)
		tx, rerr := s.cfg.Repl.Read(ctx)
		if rerr != nil {
			return
		}
		if now := store.Get[Server](tx, tServers, sv.ID); now != nil && now.Host != "" && now.BuildRun == "" {
			s.settlePorts(ctx, []Server{*sv}, *now)
		}
		return
	}
	if row.Host == "" {
		s.log.Warn("compute: no valid host for a server", "server", sv.ID, "project", sv.Project, "reasons", faultMessage(&row))
		s.releasePorts(ctx, sv)
		s.deleteBuiltVolumes(ctx, sv, p, false)
		return
	}
	s.settlePorts(ctx, []Server{*sv}, row)
}

// reason is what an error says to the owner of the server: a refusal's
// message, or the error.
func reason(err error) string {
	if p := api.ProblemOf(err); p.Status > 0 && p.Status < 500 && p.Msg != "" {
		return p.Msg
	}
	return err.Error()
}

func faultMessage(sv *Server) string {
	if sv.Fault == nil {
		return ""
	}
	return sv.Fault.Message
}

// removeBuilt removes a server deleted while its volumes were made: its
// ports and the volumes made with delete_on_termination go first.
func (s *Service) removeBuilt(ctx context.Context, sv *Server, p *api.Principal) {
	// A volume still being made (by a process that stopped: the volume
	// service settles it) is waited for, to be deleted once it can be.
	for _, d := range sv.BlockDevices {
		for i := 0; d.Source != "volume" && d.DeleteOnTermination && i < volumeWaitAttempts; i++ {
			v := s.volumeRow(ctx, d.VolumeID)
			if v == nil || v.Status != volstate.StatusCreating && v.Status != volstate.StatusDownloading {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(volumeWaitInterval):
			}
		}
	}
	s.releasePorts(ctx, sv)
	s.deleteBuiltVolumes(ctx, sv, p, false)
	c := serverBuildCmd{ID: sv.ID, Op: "remove", Run: s.run, Now: s.now()}
	if _, err := s.cfg.Repl.Propose(ctx, cmdServerBuild, c); err != nil {
		s.log.Error("compute: remove a server deleted while its volumes were made", "server", sv.ID, "err", err)
	}
}

// deleteBuiltVolumes deletes the volumes made for a server that it takes
// with it (delete_on_termination), and with failed also one made in
// error (Nova deletes a volume that did not finish being created).
// Volumes that do not exist are skipped; one still being made is left to
// the build making it.
func (s *Service) deleteBuiltVolumes(ctx context.Context, sv *Server, p *api.Principal, failed bool) {
	if s.cfg.Volumes == nil {
		return
	}
	for _, d := range sv.BlockDevices {
		if d.Source == "volume" {
			continue
		}
		v := s.volumeRow(ctx, d.VolumeID)
		if v == nil || len(v.Attachments) > 0 || !(d.DeleteOnTermination || failed && v.Status == volstate.StatusError) {
			continue
		}
		if err := s.cfg.Volumes.Delete(ctx, p, d.VolumeID); err != nil && api.StatusOf(err) != http.StatusNotFound {
			s.log.Warn("compute: delete a volume made for a server", "server", sv.ID, "volume", d.VolumeID, "err", err)
		}
	}
}

// serverBuildCmd moves a server whose volumes are made: Op "claim" takes
// over a build whose process (PrevNode, PrevRun) died; the others need
// the build to be Run's: "place" places the server with the scheduler
// and attaches its volumes, "fail" puts it in ERROR with Fault, "remove"
// removes it once deleted.
type serverBuildCmd struct {
	ID        string           `json:"id"`
	Op        string           `json:"op"`
	Node      string           `json:"node,omitempty"`
	Run       string           `json:"run"`
	PrevNode  string           `json:"prev_node,omitempty"`
	PrevRun   string           `json:"prev_run,omitempty"`
	Hosts     []scheduler.Host `json:"hosts,omitempty"`
	Scheduler scheduler.Config `json:"scheduler"`
	Fault     string           `json:"fault,omitempty"`
	Now       time.Time        `json:"now"`
}

func buildEvents(c serverBuildCmd) eventMeta {
	return eventMeta{ids: []string{c.ID}, now: c.Now}
}

func applyServerBuild(tx *memdb.Txn, c serverBuildCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil {
		return nil, serverNotFound(c.ID)
	}
	s := *old
	if c.Op == "claim" {
		if s.BuildRun == "" || s.BuildNode != c.PrevNode || s.BuildRun != c.PrevRun {
			return nil, conflict("The build of server %s moved on.", c.ID)
		}
		s.BuildNode, s.BuildRun = c.Node, c.Run
		return s, tx.Insert(tServers, &s)
	}
	if s.BuildRun == "" || s.BuildRun != c.Run {
		return nil, conflict("The build of server %s is not this process's.", c.ID)
	}
	if (c.Op == "remove") != (s.Want == "deleted") {
		return nil, conflict("Server %s is %sdeleted.", c.ID, map[bool]string{true: "", false: "not "}[s.Want == "deleted"])
	}
	s.BuildNode, s.BuildRun, s.Updated = "", "", c.Now
	switch c.Op {
	case "remove":
		return actionResult{Server: s, Removed: true}, removeServer(tx, &s, c.Now)
	case "fail":
		buildFailed(&s, c.Fault, c.Now)
		if err := unreserveVolumes(tx, &s, c.Now); err != nil {
			return nil, err
		}
		if err := createFailed(tx, &s, c.Fault, c.Now); err != nil {
			return nil, err
		}
	case "place":
		if err := placeBuilt(tx, &s, c); err != nil {
			return nil, err
		}
	default:
		return nil, store.Invalidf("unknown build step %q", c.Op)
	}
	s.BuildHost = ""
	return s, tx.Insert(tServers, &s)
}

// placeBuilt places a server whose volumes exist with the scheduler and
// attaches them (the root disk first), as a create that made none does.
func placeBuilt(tx *memdb.Txn, s *Server, c serverBuildCmd) error {
	cc := serverCreateCmd{Hosts: c.Hosts, Scheduler: c.Scheduler, ForceHost: s.BuildHost, Now: c.Now}
	for _, d := range s.BlockDevices {
		if d.Boot {
			s.BootVolume, cc.DeleteBootVolume, cc.BootTag = d.VolumeID, d.DeleteOnTermination, d.Tag
			continue
		}
		cc.Volumes = append(cc.Volumes, createVolume{VolumeID: d.VolumeID, AttachmentID: d.AttachmentID, DeleteOnTermination: d.DeleteOnTermination, Tag: d.Tag})
	}
	var group *ServerGroup
	if s.Group != "" {
		group = store.Get[ServerGroup](tx, tGroups, s.Group)
	}
	if err := place(tx, s, group, cc); err != nil {
		return err
	}
	if s.Host == "" {
		// No valid host: in ERROR, holding nothing.
		s.BootVolume = ""
		if err := unreserveVolumes(tx, s, c.Now); err != nil {
			return err
		}
		return createFailed(tx, s, s.Fault.Message, c.Now)
	}
	if err := attachBootVolume(tx, s, cc); err != nil {
		return err
	}
	if err := attachDataVolumes(tx, s, cc); err != nil {
		return err
	}
	s.BlockDevices = nil
	return nil
}

// reserveVolumes reserves the existing volumes a server placed later
// names, in the command that records it (as Nova's API reserves them
// with Cinder's attachment_create before it answers): from the 202 on,
// no other create or attach takes them, and placing the server attaches
// each under its reservation's attachment. The boot volume's attachment
// is the server's id, as attachBootVolume makes it.
func reserveVolumes(tx *memdb.Txn, s *Server, now time.Time) error {
	for _, d := range s.BlockDevices {
		if d.Source != "volume" {
			continue
		}
		a := volstate.Attachment{ID: d.AttachmentID, ServerID: s.ID, Since: now, DeleteOnTermination: d.DeleteOnTermination, Tag: d.Tag}
		if d.Boot {
			a.ID, a.Device, a.Root = s.ID, "/dev/vda", true
		}
		if _, err := volstate.ReserveTx(tx, volstate.AttachCmd{VolumeID: d.VolumeID, Project: s.Project, Attachment: a}); err != nil {
			return store.WrapApplyError(err)
		}
	}
	return nil
}

// unreserveVolumes gives back the volumes reserveVolumes reserved for a
// server that will not be placed (its build failed, or found no host).
func unreserveVolumes(tx *memdb.Txn, s *Server, now time.Time) error {
	for _, d := range s.BlockDevices {
		if d.Source != "volume" {
			continue
		}
		att := d.AttachmentID
		if d.Boot {
			att = s.ID
		}
		if err := volstate.UnreserveTx(tx, d.VolumeID, att, s.ID, now); err != nil {
			return err
		}
	}
	return nil
}

// createFailed records a failed build on the server's create action:
// its build event failed, saying why, as Nova's
// compute__do_build_and_run_instance does.
func createFailed(tx *memdb.Txn, s *Server, why string, now time.Time) error {
	for _, a := range store.All[Action](tx, tActions, "server", s.ID) {
		if a.Action != "create" {
			continue
		}
		na := *a
		na.Message = "Error"
		na.Events = append(append([]ActionEvent(nil), a.Events...), ActionEvent{Event: "compute__do_build_and_run_instance",
			Start: a.Start, Finish: now, Result: "Error", Details: why})
		return tx.Insert(tActions, &na)
	}
	return nil
}
