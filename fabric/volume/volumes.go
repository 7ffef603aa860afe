package volume

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// maxSize bounds a volume's size in GiB (16 TiB), well inside what the
// block store addresses. A request's size is read up to Cinder's bound
// (its database's integer) and checked against the quota first
// (sizeOverMax), as Cinder's quota comes before a back end's limit.
const maxSize = 16 << 10

// sizeOverMax refuses a size past maxSize: with the quota it exceeds
// (413, Cinder's answer), else as a size this cloud does not make. gb of
// the size are new.
func sizeOverMax(tx *memdb.Txn, project, field string, size, gb int) error {
	if err := volstate.CheckVolumeSize(tx, project, size, gb); err != nil {
		return err
	}
	return cinderWording{}.BadField(field, size, fmt.Sprintf("%d is greater than the maximum of %d, the most this cloud's block store gives one volume", size, maxSize))
}

// volumes is the volumes collection: the caller's project's, or every
// project's for an admin asking all_tenants.
func (s *Service) volumes(r *http.Request, detail bool) api.Collection[volstate.Volume] {
	visible := visibleTo(allTenants(r) || byID(r))
	return api.Collection[volstate.Volume]{
		Table: volstate.VolumeTable, One: "volume",
		Visible: func(p *api.Principal, v *volstate.Volume) bool { return visible(p, v.Project) },
		View: func(tx *memdb.Txn, p *api.Principal, v *volstate.Volume) api.View {
			if !detail {
				return api.View{"id": v.ID, "name": v.Name, "links": s.links(r, "volumes", v.ID)}
			}
			return s.volumeView(tx, r, p, v)
		},
		NotFound: func(id string) error { return notFound("Volume", id) },
		Listing: s.cinderListing("volumes", []string{"id", "name", "status", "size", "created_at", "updated_at", "availability_zone", "bootable", "volume_type", "description"}, map[string]api.Filter{
			"metadata":       metadataFilter,
			"display_name":   func(v api.View, want []string) (bool, error) { return api.MatchValue(v["name"], want), nil },
			"consumes_quota": consumesQuotaFilter(r),
			"created_at":     timeFilter(r, "created_at"),
			"updated_at":     timeFilter(r, "updated_at"),
			// An admin listing all_tenants names one project.
			"project_id": func(v api.View, want []string) (bool, error) {
				return api.MatchValue(v["os-vol-tenant-attr:tenant_id"], want), nil
			},
		}),
	}
}

// namedVolume is the volume a request's body names by id (the volume a
// backup is made of): an admin's request reads any project's, as Cinder's
// admin context does; anyone else's only the caller's project's.
func (s *Service) namedVolume(tx *memdb.Txn, r *http.Request, id string) (*volstate.Volume, error) {
	c := s.volumes(r, true)
	visible := visibleTo(true)
	c.Visible = func(p *api.Principal, v *volstate.Volume) bool { return visible(p, v.Project) }
	return c.Get(tx, principal(r), id)
}

// byID reports whether the request names one resource by id: an admin
// reads any project's, as Cinder's admin context does, where a list
// needs all_tenants.
func byID(r *http.Request) bool { return chi.URLParam(r, "id") != "" }

// allTenants is Cinder's all_tenants query parameter.
func allTenants(r *http.Request) bool {
	q := r.URL.Query()
	if !q.Has("all_tenants") {
		return false
	}
	b, ok := api.ToBool(q.Get("all_tenants"))
	return !ok || b || q.Get("all_tenants") == ""
}

// visibleTo is the Visible test of Cinder's project-scoped collections:
// the caller's project's rows, or every project's for an admin when all
// is set (all_tenants, or one resource read by id).
func visibleTo(all bool) func(p *api.Principal, project string) bool {
	return func(p *api.Principal, project string) bool {
		return all && p.IsAdmin() || project == p.ProjectID && p.CanRead(project)
	}
}

// cinderListing is how Cinder pages, sorts and filters the collection
// listed under key.
func (s *Service) cinderListing(key string, sortKeys []string, filters map[string]api.Filter) api.Listing {
	return api.Listing{Key: key, Word: cinderWording{}, Base: s.baseURL, ZeroLimit: true, Offset: true, MissingMarker: missingMarker, FullPageNext: true,
		SortKeys: sortKeys, Reserved: []string{"all_tenants", "sort", "offset", "with_count"}, Filters: filters}
}

// metadataFilter matches metadata={'k': 'v'} (a Python dict literal, as
// cinderclient sends it) or a JSON object: every pair must be present.
func metadataFilter(v api.View, want []string) (bool, error) {
	md, _ := v["metadata"].(map[string]string)
	for _, w := range want {
		pairs, err := parseDict(w)
		if err != nil {
			return false, badRequest("Invalid metadata filter %q: %v", w, err)
		}
		for k, val := range pairs {
			if md[k] != val {
				return false, nil
			}
		}
	}
	return true, nil
}

// parseDict reads {'k': 'v', "k2": "v2"}.
func parseDict(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, errors.New("not a dictionary")
	}
	out := map[string]string{}
	body := strings.TrimSpace(s[1 : len(s)-1])
	if body == "" {
		return out, nil
	}
	for _, pair := range strings.Split(body, ",") {
		k, v, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("%q is not key: value", pair)
		}
		out[strings.Trim(strings.TrimSpace(k), `'"`)] = strings.Trim(strings.TrimSpace(v), `'"`)
	}
	return out, nil
}

// sortParams turns Cinder's sort=key:dir,key2 into the kit's sort_key and
// sort_dir.
func sortParams(r *http.Request) *http.Request {
	q := r.URL.Query()
	sortSpec := q.Get("sort")
	if sortSpec == "" && !slices.Contains(q["sort_key"], "display_name") {
		return r
	}
	q.Del("sort")
	for _, part := range strings.Split(sortSpec, ",") {
		k, dir, _ := strings.Cut(strings.TrimSpace(part), ":")
		if k == "" {
			continue
		}
		if dir == "" {
			dir = "desc"
		}
		q.Add("sort_key", k)
		q.Add("sort_dir", dir)
	}
	// display_name is the v1 name of name, which clients still sort by.
	for i, k := range q["sort_key"] {
		if k == "display_name" {
			q["sort_key"][i] = "name"
		}
	}
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	return r2
}

func (s *Service) links(r *http.Request, collection, id string) []any {
	p := chi.URLParam(r, "project_id")
	if p != "" {
		// Links name the project when the request's URL did (3.67).
		p += "/"
	}
	return []any{
		map[string]any{"rel": "self", "href": s.baseURL(r) + "/v3/" + p + collection + "/" + id},
		map[string]any{"rel": "bookmark", "href": s.baseURL(r) + "/" + p + collection + "/" + id},
	}
}

func (s *Service) volumeView(tx *memdb.Txn, r *http.Request, p *api.Principal, v *volstate.Volume) api.View {
	typeName := volstate.DefaultTypeName
	if t, err := volstate.LoadType(tx, v.TypeID); err == nil {
		typeName = t.Name
	}
	attachments := []any{}
	for _, a := range v.Attachments {
		attachments = append(attachments, map[string]any{
			"id": v.ID, "attachment_id": a.ID, "volume_id": v.ID, "server_id": a.ServerID, "host_name": a.Host,
			"device": a.Device, "attached_at": timeText(a.Since),
		})
	}
	md := maps.Clone(v.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	// Cinder shows these two admin metadata keys among the metadata.
	if v.ReadOnly != nil {
		md["readonly"] = pyBool(*v.ReadOnly)
	}
	if len(v.Attachments) == 1 {
		md["attached_mode"] = modeText(v.Attachments[0])
	}
	view := api.View{
		"id": v.ID, "name": nullable(v.Name), "description": nullable(v.Description), "status": v.Status, "size": v.Size,
		"availability_zone": "nova", "created_at": timeText(v.CreatedAt), "updated_at": timeText(v.UpdatedAt),
		"attachments": attachments, "links": s.links(r, "volumes", v.ID), "volume_type": typeName,
		"snapshot_id": nullable(v.SnapshotID), "source_volid": nullable(v.SourceVolID), "metadata": md,
		"user_id": v.User, "bootable": fmt.Sprint(v.Bootable), "encrypted": v.Key != "", "replication_status": nil,
		"consistencygroup_id": consistencyGroupOf(tx, v), "multiattach": false, "os-vol-tenant-attr:tenant_id": v.Project,
	}
	if atLeast(r, 13) {
		view["group_id"] = nullable(v.GroupID)
	}
	if atLeast(r, 48) {
		// No target is shared between volumes (each is its own NBD
		// export), so attaching needs no host-wide lock.
		view["shared_targets"], view["service_uuid"] = false, blockServiceUUID
	}
	if v.KeyID != "" && atLeast(r, 64) {
		// Cinder shows it from 3.64: before, clients validate the volume
		// against a schema without it (tempest's refused every encrypted
		// volume it was shown on).
		view["encryption_key_id"] = v.KeyID
	}
	if atLeast(r, 61) && p.IsAdmin() {
		// The volume's cluster: none, as Cinder shows a volume of a back
		// end that is not clustered (this cloud's clusters API is 501).
		view["cluster_name"] = nil
	}
	if atLeast(r, 63) {
		view["volume_type_id"] = v.TypeID
	}
	if atLeast(r, 65) {
		// Every volume here counts in its project's quota: there are no
		// temporary volumes (Cinder's use_quota false) to leave out.
		view["consumes_quota"] = true
	}
	if p.IsAdmin() {
		view["os-vol-host-attr:host"] = volumePool
		view["os-vol-mig-status-attr:migstat"] = nil
		view["os-vol-mig-status-attr:name_id"] = nil
		view["migration_status"] = nil
	}
	if v.Reason != "" && p.IsAdmin() {
		// Cinder's messages API says what failed in its fixed words;
		// admins also see the cause itself on the volume.
		view["rackstack:error_reason"] = v.Reason
	}
	if v.ImageID != "" || v.ImageMetadata != nil {
		md := maps.Clone(v.ImageMetadata)
		if md == nil {
			md = map[string]string{}
		}
		if _, set := md["image_id"]; !set && v.ImageID != "" {
			md["image_id"] = v.ImageID
		}
		view["volume_image_metadata"] = md
	}
	return view
}

// nullable shows "" as null, as Cinder shows unset attributes.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Service) listVolumes(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := project(r); err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		r = sortParams(r)
		// Filters apply to the detailed view, then the summary is shown.
		full := s.volumes(r, true)
		var summary func(api.View) api.View
		if !detail {
			summary = func(v api.View) api.View { return api.View{"id": v["id"], "name": v["name"], "links": v["links"]} }
		}
		return listCounted(w, r, full.Listing, full.Views(tx, principal(r)), summary)
	}
}

func (s *Service) showVolume(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	return s.volumes(r, true).Show(w, r, tx, chi.URLParam(r, "id"))
}

// body reads {"<key>": {...}}.
func body(r *http.Request, key string) (api.Object, error) {
	top, err := api.ReadObject(r)
	if err != nil {
		return nil, err
	}
	v, ok := top[key]
	if !ok {
		return nil, cinderWording{}.Missing(key)
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, cinderWording{}.BadField(key, v, "is not of type 'object'")
	}
	return o, nil
}

// metadata reads a metadata object: string keys of 1-255 characters and
// string values of at most 255.
func metadata(in *api.Input, field string) map[string]string {
	o := in.Object(field)
	if o == nil || in.Err != nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range o {
		str, ok := v.(string)
		switch {
		case k == "" || len(k) > 255:
			in.Fail(in.Word.BadField(field, k, "metadata keys must be 1 to 255 characters"))
		case !ok:
			in.Fail(in.Word.BadField(field+"."+k, v, api.Text(v)+" is not of type 'string'"))
		case len(str) > 255:
			in.Fail(in.Word.BadField(field+"."+k, v, "metadata values must be at most 255 characters"))
		}
		out[k] = str
	}
	return out
}

// resolveTypeFor is resolveType where "" is project's default type
// (3.62's project default, else the cloud's).
func resolveTypeFor(tx *memdb.Txn, project, ref string) (*volstate.Type, error) {
	if ref == "" {
		return volstate.ProjectDefaultType(tx, project)
	}
	return resolveType(tx, ref)
}

// resolveType finds the type a create names, by id or name; "" is the
// cloud's default.
func resolveType(tx *memdb.Txn, ref string) (*volstate.Type, error) {
	if ref == "" {
		return volstate.LoadType(tx, volstate.DefaultTypeID)
	}
	if t, err := volstate.LoadType(tx, ref); err == nil {
		return t, nil
	}
	if t := volstate.TypeByName(tx, ref); t != nil {
		return t, nil
	}
	return nil, notFound("Volume type", ref)
}

// imageVolumeType is the type a volume made from img takes when the
// create names none: the image's cinder_img_volume_type (a type's name or
// id), as Cinder's create flow reads it. A type not found, or private to
// other projects, is nil: the volume takes the default type, as in Cinder
// (which logs it and goes on).
func imageVolumeType(tx *memdb.Txn, p *api.Principal, project string, img *ImageInfo, typeRef string) *volstate.Type {
	if img == nil || typeRef != "" || img.Properties["cinder_img_volume_type"] == "" {
		return nil
	}
	t, err := resolveType(tx, img.Properties["cinder_img_volume_type"])
	if err != nil || !t.Usable(project) && !p.IsAdmin() {
		return nil
	}
	return t
}

func (s *Service) createVolume(w http.ResponseWriter, r *http.Request) error {
	proj, err := project(r)
	if err != nil {
		return err
	}
	o, err := body(r, "volume")
	if err != nil {
		return err
	}
	in := newInput(o)
	now := s.now()
	p := principal(r)
	v := volstate.Volume{ID: api.NewUUID(), Project: proj, User: p.UserID, Status: volstate.StatusCreating, CreatedAt: now, UpdatedAt: now}
	v.Name = in.Str("name", in.Str("display_name", "", 255), 255)
	v.Description = in.Str("description", in.Str("display_description", "", 255), 255)
	size := in.Int("size", 1, int(*dbMaxInt))
	v.SnapshotID = in.Str("snapshot_id", "", 36)
	v.SourceVolID = in.Str("source_volid", "", 36)
	v.ImageID = in.Str("imageRef", "", 36)
	typeRef := in.Str("volume_type", "", 255)
	namedType := typeRef != ""
	v.Metadata = metadata(in, "metadata")
	if in.Bool("multiattach", false) {
		in.Fail(in.Word.BadField("multiattach", true, "multiattach volumes are not supported"))
	}
	az := in.Str("availability_zone", "", 255)
	if in.Err == nil && az != "" && az != zone {
		in.Fail(in.Word.BadField("availability_zone", az, "the only availability zone is "+zone))
	}
	backupID := ""
	if atLeast(r, 47) {
		backupID = in.Str("backup_id", "", 36)
	}
	groupID := ""
	if atLeast(r, 13) {
		groupID = in.Str("group_id", "", 36)
	}
	// consistencygroup_id (any version) names a consistency group, the
	// group the volume is made in (consistencygroups.go).
	cgID := in.Str("consistencygroup_id", "", 36)
	if cgID != "" && groupID != "" && cgID != groupID {
		in.Fail(in.Word.BadField("consistencygroup_id", cgID, "names another group than group_id"))
	}
	for _, unsupported := range []string{"group_id", "backup_id", "source_replica"} {
		if unsupported == "backup_id" && atLeast(r, 47) || unsupported == "group_id" && atLeast(r, 13) {
			continue
		}
		if in.Has(unsupported) && !in.IsNull(unsupported) {
			in.Fail(in.Word.BadField(unsupported, o[unsupported], "creating a volume from a "+strings.TrimSuffix(unsupported, "_id")+" is not supported"))
		}
	}
	if in.Err != nil {
		return in.Err
	}
	sources := 0
	for _, src := range []string{v.SnapshotID, v.SourceVolID, v.ImageID, backupID} {
		if src != "" {
			sources++
		}
	}
	if sources > 1 {
		return badRequest("Invalid input received: only one of snapshot_id, source_volid, imageRef and backup_id may be given.")
	}
	if size != nil && *size > maxSize {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		return sizeOverMax(tx, proj, "size", *size, *size)
	}
	if v.ImageID != "" && atLeast(r, 46) {
		// A Nova snapshot image of a volume-backed server: the volume
		// is made from the snapshot it names.
		snap, err := s.imageSnapshot(r.Context(), p, v.ImageID)
		if err != nil {
			return err
		}
		if snap != "" {
			v.SnapshotID, v.ImageID = snap, ""
		}
	}
	var img *ImageInfo
	if v.ImageID != "" {
		if img, err = s.sourceImage(r.Context(), p, v.ImageID, size); err != nil {
			return err
		}
		if size == nil {
			size = new(int)
			*size = imageGiB(img)
		}
		v.Bootable, v.ImageMetadata = true, imageMetadata(img)
	}

	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	// The size defaults to the source's; a snapshot or a volume the
	// caller cannot see is not found.
	from := ""
	// srcKey is the sealed key of an encrypted source, bound to keyFrom.
	srcKey, keyFrom := "", ""
	var backup *volstate.Backup
	switch {
	case backupID != "":
		// 3.47: the backup is restored into the new volume.
		if err := s.needBackups(); err != nil {
			return err
		}
		b, err := s.backups(r, true).Get(tx, p, backupID)
		if err != nil {
			return err
		}
		if b.Status != volstate.BackupAvailable {
			return badRequest("Invalid backup: Backup status must be available (it is %s).", b.Status)
		}
		backup, srcKey, keyFrom = b, b.Key, b.ID
		if size == nil {
			size = &b.Size
		}
		if *size < b.Size {
			return badRequest("Invalid input received: volume size %dGB is too small to restore backup %s of size %dGB.", *size, b.ID, b.Size)
		}
		if src := store.Get[volstate.Volume](tx, volstate.VolumeTable, b.VolumeID); src != nil && typeRef == "" {
			typeRef = src.TypeID
		}
	case v.SnapshotID != "":
		snap, err := s.snapshots(r, true).Get(tx, p, v.SnapshotID)
		if err != nil {
			return err
		}
		from, srcKey, keyFrom = snap.ID, snap.Key, snap.ID
		typeRef = fromSnapshot(tx, snap, &v, &size, typeRef)
	case v.SourceVolID != "":
		src, err := s.volumes(r, true).Get(tx, p, v.SourceVolID)
		if err != nil {
			return err
		}
		from, srcKey, keyFrom = src.ID, src.Key, src.ID
		if size == nil {
			size = &src.Size
		}
		inheritBoot(&v, src)
		if typeRef == "" {
			typeRef = src.TypeID
		}
	}
	if size == nil {
		return cinderWording{}.Missing("size")
	}
	v.Size = *size
	if cgID != "" {
		if groupID, err = s.cgOfVolume(r, tx, in); err != nil {
			return err
		}
	}
	if groupID != "" {
		// 3.13: the volume is made in the caller's group, which the
		// state machine checks takes its type.
		g, err := s.groups(r).Get(tx, p, groupID)
		if err != nil {
			return err
		}
		v.GroupID = g.ID
	}
	t := imageVolumeType(tx, p, proj, img, typeRef)
	if t == nil {
		if t, err = resolveTypeFor(tx, proj, typeRef); err != nil {
			return err
		}
	}
	if namedType && !t.Usable(proj) && !p.IsAdmin() {
		// A private type the project was not given does not exist for it
		// (a copy keeps its source's type).
		return notFound("Volume type", typeRef)
	}
	v.TypeID = t.ID
	if err := checkTypeFits(t, az); err != nil {
		return err
	}
	policy, err := policyOf(t)
	if err != nil {
		return err
	}
	if err := s.volumeKey(&v, t, keyFrom, srcKey); err != nil {
		return err
	}

	if why := unschedulable(t); why != "" {
		return s.createUnscheduled(w, r, p, v, why)
	}
	s.worked(&v)
	defer s.carry(v.ID)()
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: v}, nil); err != nil {
		return err
	}
	// The row is taken; now the blocks. A failure is recorded on the
	// volume (status error, with the cause), as Cinder does: the client
	// sees it and deletes the volume.
	dataErr := s.makeBlocks(r.Context(), &v, from, policy)
	var row *volstate.Volume
	if backup != nil && dataErr == nil {
		// Restored in the background; the volume is creating until then.
		// The backup is carried from before the proposal that marks it
		// restoring until the restore ends (restoreInto).
		defer s.carry(backup.ID)()
		if _, err := s.changeBackup(r.Context(), backup.ID, func(b *volstate.Backup) error {
			if b.Status != volstate.BackupAvailable {
				return badRequest("Invalid backup: Backup status must be available (it is %s).", b.Status)
			}
			b.Status, b.WorkNode, b.WorkRun = volstate.BackupRestoring, s.cfg.Node, s.run
			return nil
		}); err != nil {
			s.finish(context.WithoutCancel(r.Context()), v.ID, volstate.StatusError, volstate.StatusError, "restore backup "+backup.ID, err)
			return err
		}
		s.restoreInto(backup, v.ID, volstate.StatusError)
		row = &v
	} else if img != nil && dataErr == nil {
		// The copy takes time: the volume is answered creating and
		// becomes available (or error) when it is done.
		release := s.carry(v.ID)
		s.background(func(ctx context.Context) {
			defer release()
			err := s.cfg.Data.ImageToVolume(ctx, img.ID, v.ID)
			if _, err := s.finish(ctx, v.ID, volstate.StatusAvailable, volstate.StatusError, "copy image "+img.ID+" into the volume", err); err != nil {
				s.log.Warn("volume: create from image", "volume", v.ID, "image", img.ID, "err", err)
			}
		})
		row = &v
	} else if row, err = s.finish(r.Context(), v.ID, volstate.StatusAvailable, volstate.StatusError, "create the volume's blocks", dataErr); err != nil {
		return err
	}
	tx, err = s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusAccepted, map[string]any{"volume": changeView(s.volumeView(tx, r, p, row))})
	return nil
}

// fromSnapshot prepares v, a volume made from snapshot snap: its size is
// the snapshot's unless *size is given, its type the source volume's
// unless typeRef names one (the type it takes is returned), and it is
// bootable as the source is.
func fromSnapshot(tx *memdb.Txn, snap *volstate.Snapshot, v *volstate.Volume, size **int, typeRef string) string {
	v.SnapshotID = snap.ID
	if *size == nil {
		*size = &snap.Size
	}
	if src := store.Get[volstate.Volume](tx, volstate.VolumeTable, snap.VolumeID); src != nil {
		if typeRef == "" {
			typeRef = src.TypeID
		}
		inheritBoot(v, src)
	}
	return typeRef
}

// makeBlocks makes the blocks of new volume v: empty, or a copy-on-write
// copy of from (a snapshot or volume, read at one instant: copySource)
// grown to v's size.
func (s *Service) makeBlocks(ctx context.Context, v *volstate.Volume, from string, policy volstate.Policy) error {
	if from == "" {
		return s.cfg.Blocks.Create(ctx, v.ID, int64(v.Size)*volstate.GiB, policy)
	}
	if err := s.cloneBlocks(ctx, v.ID, from); err != nil {
		return err
	}
	return s.cfg.Blocks.Resize(ctx, v.ID, int64(v.Size)*volstate.GiB)
}

// volumeKey gives v, of type t, its encryption key: a new one, or for a
// copy of an encrypted volume or snapshot (from) the source's, as its
// blocks are the source's ciphertext. A copy does not change whether
// data is encrypted, so that is refused. An image is written through
// the new key's LUKS layer (Data.ImageToVolume).
func (s *Service) volumeKey(v *volstate.Volume, t *volstate.Type, from, srcKey string) error {
	var err error
	switch {
	case t.Encryption == nil && srcKey != "":
		return badRequest("Invalid volume type: the source is encrypted; its copy must be of an encrypted volume type, not %s.", t.Name)
	case t.Encryption == nil:
		return nil
	case from != "" && srcKey == "":
		return badRequest("Invalid volume type: the source is not encrypted; a copy of it cannot be of encrypted type %s.", t.Name)
	case from != "":
		v.Key, v.KeyID, err = s.copyKey(srcKey, from, v.ID)
	default:
		v.Key, v.KeyID, err = s.newVolumeKey(v.ID)
	}
	return err
}

// inheritBoot gives a copy of a volume (or of its snapshot) what makes
// the source bootable: the flag and the image metadata, as Cinder copies
// them.
func inheritBoot(v, src *volstate.Volume) {
	v.Bootable = src.Bootable
	if src.ImageMetadata != nil || src.ImageID != "" {
		v.ImageMetadata = maps.Clone(src.ImageMetadata)
		if v.ImageMetadata == nil {
			v.ImageMetadata = map[string]string{}
		}
		if src.ImageID != "" {
			v.ImageMetadata["image_id"] = src.ImageID
		}
	}
}

// policyOf is the storage policy of a type's volumes.
func policyOf(t *volstate.Type) (volstate.Policy, error) {
	spec, ok := t.ExtraSpecs[volstate.PolicySpec]
	if !ok {
		return volstate.Policy{}, nil
	}
	pol, err := volstate.ParsePolicy(spec)
	if err != nil {
		return pol, badRequest("Invalid volume type %s: %v", t.Name, err)
	}
	return pol, nil
}

// finish records the outcome of a data operation on a volume: status ok,
// or status failed with the cause as its reason. It answers the data
// error (a 500 whose cause is logged) after recording it.
func (s *Service) finish(ctx context.Context, id, ok, failed, what string, dataErr error) (*volstate.Volume, error) {
	row, err := s.changeVolume(ctx, id, func(v *volstate.Volume) error {
		v.WorkNode, v.WorkRun = "", ""
		if dataErr != nil {
			v.Status, v.Reason = failed, what+": "+dataErr.Error()
			return nil
		}
		v.Status, v.Reason = ok, ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	if dataErr != nil {
		if failed == volstate.StatusError {
			s.tellUser(ctx, row, createAction(row), detUnknown)
		}
		return nil, fmt.Errorf("%s %s: %w", what, id, dataErr)
	}
	return row, nil
}

// changeVolume applies change to the current row of volume id and
// proposes it, reading again and retrying when another change got in
// first. change may refuse with an error.
func (s *Service) changeVolume(ctx context.Context, id string, change func(v *volstate.Volume) error) (*volstate.Volume, error) {
	return changeRow(ctx, s.cfg.Repl, func(tx *memdb.Txn) (*volstate.Volume, error) { return volstate.LoadVolume(tx, id) },
		func(cur *volstate.Volume) (string, any, error) {
			next := cur.Clone()
			if err := change(next); err != nil {
				return "", nil, err
			}
			next.UpdatedAt = s.now()
			return volstate.CmdPutVolume, volstate.PutVolumeCmd{Row: *next, Revision: cur.Revision}, nil
		})
}

// changeRow reads a row with load and proposes what put makes of it (the
// command and its body, naming the revision read), reading again and
// retrying when another change got in first. put may refuse with an error.
func changeRow[R any](ctx context.Context, repl store.Replicated, load func(*memdb.Txn) (*R, error), put func(cur *R) (string, any, error)) (*R, error) {
	for attempt := 0; ; attempt++ {
		tx, err := store.Current(ctx, repl)
		if err != nil {
			return nil, err
		}
		cur, err := load(tx)
		if err != nil {
			return nil, err
		}
		typ, body, err := put(cur)
		if err != nil {
			return nil, err
		}
		var row R
		_, err = api.Propose(ctx, repl, typ, body, &row)
		if volstate.IsStale(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &row, nil
	}
}

// ownVolume is the volume id if the caller may change it.
func (s *Service) ownVolume(r *http.Request, id string) (*volstate.Volume, error) {
	return own(s, r, s.volumes(r, true), id, volstate.LoadVolume, func(v *volstate.Volume) string { return v.Project }, "volume:update")
}

// own is row id of c if the caller may change it: a row the caller sees
// in a project it may write to or, for an admin, any project's row,
// listed or not. rule names the policy a refusal cites.
func own[T any](s *Service, r *http.Request, c api.Collection[T], id string, load func(*memdb.Txn, string) (*T, error), projectOf func(*T) string, rule string) (*T, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	p := principal(r)
	row, err := c.Get(tx, p, id)
	if err != nil {
		if p.IsAdmin() {
			if row, err := load(tx, id); err == nil {
				return row, nil
			}
		}
		return nil, err
	}
	if !p.CanWrite(projectOf(row)) {
		return nil, policyDenied(rule)
	}
	return row, nil
}

func (s *Service) updateVolume(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	o, err := body(r, "volume")
	if err != nil {
		return err
	}
	if extra := api.Unexpected(o, "name", "description", "display_name", "display_description", "metadata"); len(extra) > 0 {
		return cinderWording{}.BadField(extra[0], o[extra[0]], "Additional properties are not allowed ('"+extra[0]+"' was unexpected)")
	}
	in := newInput(o)
	name, hasName := in.Str("name", in.Str("display_name", "", 255), 255), in.Has("name") || in.Has("display_name")
	desc, hasDesc := in.Str("description", in.Str("display_description", "", 255), 255), in.Has("description") || in.Has("display_description")
	md := metadata(in, "metadata")
	if in.Err != nil {
		return in.Err
	}
	if len(o) == 0 {
		return badRequest("Missing request body: the volume update needs name, description or metadata.")
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	row, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		if hasName {
			v.Name = name
		}
		if hasDesc {
			v.Description = desc
		}
		if md != nil {
			v.Metadata = md
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.answerVolume(w, r, http.StatusOK, row)
}

func (s *Service) answerVolume(w http.ResponseWriter, r *http.Request, status int, v *volstate.Volume) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, status, map[string]any{"volume": changeView(s.volumeView(tx, r, principal(r), v))})
	return nil
}

// changeView is a volume as create and update answer it: Cinder's
// extension attributes (os-vol-*, volume_image_metadata) are only on
// show and list.
func changeView(v api.View) api.View {
	delete(v, "volume_image_metadata")
	for k := range v {
		if strings.HasPrefix(k, "os-vol-") {
			delete(v, k)
		}
	}
	return v
}

// deletable are the statuses a volume may be deleted from (Cinder's).
var deletable = map[string]bool{volstate.StatusAvailable: true, volstate.StatusError: true,
	volstate.StatusErrorDeleting: true, volstate.StatusErrorExtending: true}

func (s *Service) deleteVolume(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	cascade := false
	if q := r.URL.Query(); q.Has("cascade") {
		b, ok := api.ToBool(q.Get("cascade"))
		if !ok {
			return cinderWording{}.BadField("cascade", q.Get("cascade"), "is not a boolean")
		}
		cascade = b
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if v.GroupID != "" {
		return badRequest("Invalid volume: Volume %s belongs to group %s: remove it from the group, or delete the group with delete-volumes.", v.ID, v.GroupID)
	}
	if err := s.removeVolume(r.Context(), v.ID, cascade, false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// removeVolume deletes volume id's blocks and row, and with cascade its
// snapshots first (which must be available or in error unless force).
// Unless force, the volume must be in a status it may be deleted from;
// an attached volume is never deleted.
func (s *Service) removeVolume(ctx context.Context, id string, cascade, force bool) error {
	defer s.carry(id)()
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	snaps := store.All[volstate.Snapshot](tx, volstate.SnapshotTable, "volume", id)
	if len(snaps) > 0 && !cascade {
		return badRequest("Invalid volume: Volume %s still has %d dependent snapshots.", id, len(snaps))
	}
	for _, sn := range snaps {
		if err := snapshotDeletable(sn, force); err != nil {
			return err
		}
		if sn.GroupSnapshotID != "" && !force {
			return badRequest("Invalid volume: Volume %s's snapshot %s is part of group snapshot %s: delete the group snapshot first.", id, sn.ID, sn.GroupSnapshotID)
		}
	}
	row, err := s.changeVolume(ctx, id, func(v *volstate.Volume) error {
		if len(v.Attachments) > 0 {
			return badRequest("Invalid volume: Volume %s is attached: detach it before deleting it.", v.ID)
		}
		if !force && !deletable[v.Status] {
			return badRequest("Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer (it is %s).", v.Status)
		}
		v.Status, v.Reason = volstate.StatusDeleting, ""
		s.worked(v)
		return nil
	})
	if err != nil {
		return err
	}
	// The volume is deleting: no snapshot of it is taken any more.
	for _, sn := range snaps {
		if err := s.removeSnapshot(ctx, sn.ID, force); err != nil && !errors.Is(err, store.ErrNotFound) {
			_, ferr := s.finish(ctx, id, volstate.StatusDeleting, volstate.StatusErrorDeleting, "delete the volume's snapshot "+sn.ID, err)
			return ferr
		}
	}
	if err := s.cfg.Blocks.Delete(ctx, id); err != nil {
		_, ferr := s.finish(ctx, id, volstate.StatusDeleting, volstate.StatusErrorDeleting, "delete the volume's blocks", err)
		return ferr
	}
	_, err = api.Propose(ctx, s.cfg.Repl, volstate.CmdDeleteVolume, volstate.DeleteVolumeCmd{ID: row.ID, Revision: row.Revision}, nil)
	return err
}

// forceDetach (admin) ends an attachment whatever the attaching side
// thinks: one Nova made is unplugged by the node agent, as Nova's detach
// does it; one this API recorded is dropped.
func (s *Service) forceDetach(w http.ResponseWriter, r *http.Request, arg any) error {
	if !principal(r).IsAdmin() {
		return policyDenied("volume_extension:volume_admin_actions:force_detach")
	}
	in, err := actionArg(arg, "os-force_detach")
	if err != nil {
		return err
	}
	att := in.Str("attachment_id", "", 36)
	if in.Err != nil {
		return in.Err
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := s.release(r, v.ID, att); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) forceDelete(w http.ResponseWriter, r *http.Request) error {
	if !principal(r).IsAdmin() {
		return policyDenied("volume_extension:volume_admin_actions:force_delete")
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if v.GroupID != "" {
		return badRequest("Invalid volume: Volume %s belongs to group %s: remove it from the group, or delete the group with delete-volumes.", v.ID, v.GroupID)
	}
	if err := s.removeVolume(r.Context(), v.ID, false, true); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) volumeAction(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	action, arg, err := readAction(r)
	if err != nil {
		return err
	}
	switch action {
	case "os-extend":
		return s.extend(w, r, arg)
	case "os-reset_status":
		return s.resetStatus(w, r, arg)
	case "os-set_bootable":
		return s.setBootable(w, r, arg)
	case "os-attach", "os-detach", "os-reserve", "os-unreserve", "os-begin_detaching", "os-roll_detaching":
		return s.legacyAttach(w, r, action, arg)
	case "os-initialize_connection", "os-terminate_connection":
		// Connections to hosts outside the cloud are not made.
		return &api.Error{Status: http.StatusNotImplemented, Msg: "the " + action + " action is not supported: attach volumes through the compute API"}
	case "os-volume_upload_image":
		return s.uploadImage(w, r, arg)
	case "os-force_delete":
		return s.forceDelete(w, r)
	case "os-retype":
		return s.retype(w, r, arg)
	case "os-force_detach":
		return s.forceDetach(w, r, arg)
	case "os-show_image_metadata", "os-set_image_metadata", "os-unset_image_metadata":
		return s.imageMetadataAction(w, r, action, arg)
	case "os-update_readonly_flag":
		return s.updateReadonly(w, r, arg)
	case "os-reimage":
		return s.reimage(w, r, arg)
	case "os-extend_volume_completion":
		return s.extendCompletion(w, r, arg)
	case "revert":
		return s.revert(w, r, arg)
	case "os-migrate_volume", "os-migrate_volume_completion", "os-unmanage":
		return &api.Error{Status: http.StatusNotImplemented, Msg: "the " + action + " action is not supported by this cloud yet"}
	}
	return badRequest("There is no such action: %s", action)
}

func actionArg(arg any, action string) (*api.Input, error) {
	o, ok := arg.(map[string]any)
	if !ok {
		return nil, cinderWording{}.BadField(action, arg, "is not of type 'object'")
	}
	return newInput(o), nil
}

func (s *Service) extend(w http.ResponseWriter, r *http.Request, arg any) error {
	in, err := actionArg(arg, "os-extend")
	if err != nil {
		return err
	}
	size := in.Int("new_size", 1, int(*dbMaxInt))
	if in.Err != nil {
		return in.Err
	}
	if size == nil {
		// Absent or null.
		return cinderWording{}.Missing("new_size")
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if *size > maxSize {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		return sizeOverMax(tx, v.Project, "new_size", *size, *size-v.Size)
	}
	inUseOK, was := atLeast(r, 42), ""
	if _, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		// From 3.42 an attached volume grows too: its node's agent
		// tells the guest.
		if v.Status != volstate.StatusAvailable && !(v.Status == volstate.StatusInUse && inUseOK) {
			return badRequest("Invalid volume: Volume %s status must be 'available' (or 'in-use' from microversion 3.42) to extend, but current status is: %s.", v.ID, v.Status)
		}
		was = v.Status
		if *size <= v.Size {
			return badRequest("Invalid input received: New size for extend must be greater than current size. (current: %d, extended: %d).", v.Size, *size)
		}
		v.Status, v.Size = volstate.StatusExtending, *size
		return nil
	}); err != nil {
		return err
	}
	dataErr := s.cfg.Blocks.Resize(r.Context(), v.ID, int64(*size)*volstate.GiB)
	if dataErr != nil {
		// The blocks kept their size: so does the volume.
		_, err := s.changeVolume(r.Context(), v.ID, func(row *volstate.Volume) error {
			row.Status, row.Size, row.Reason = volstate.StatusErrorExtending, v.Size, "grow the volume's blocks: "+dataErr.Error()
			return nil
		})
		if err != nil {
			return err
		}
		s.tellUser(r.Context(), v, actExtendVolume, detDriverExtend)
		return fmt.Errorf("extend volume %s: %w", v.ID, dataErr)
	}
	if _, err := s.finish(r.Context(), v.ID, was, volstate.StatusErrorExtending, "grow the volume's blocks", nil); err != nil {
		return err
	}
	if was == volstate.StatusInUse {
		s.volumeExtended(r.Context(), v, *size, principal(r).UserID)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) resetStatus(w http.ResponseWriter, r *http.Request, arg any) error {
	if !principal(r).IsAdmin() {
		return policyDenied("volume_extension:volume_admin_actions:reset_status")
	}
	in, err := actionArg(arg, "os-reset_status")
	if err != nil {
		return err
	}
	status := in.Str("status", "", 255)
	attach := in.Str("attach_status", "", 255)
	if in.Err != nil {
		return in.Err
	}
	if status == "" && attach == "" {
		return badRequest("Must specify 'status' or 'attach_status'")
	}
	if status != "" && !contains(volstate.Statuses(), status) {
		return cinderWording{}.BadField("status", status, "must be one of "+strings.Join(volstate.Statuses(), ", "))
	}
	if attach != "" && attach != "attached" && attach != "detached" {
		return cinderWording{}.BadField("attach_status", attach, "must be attached or detached")
	}
	if attach == "attached" {
		return badRequest("Invalid input received: attach_status attached can only be reached by attaching the volume.")
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if _, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		if status != "" {
			v.Status = status
			if !strings.HasPrefix(status, "error") {
				v.Reason = ""
			}
		}
		if attach == "detached" {
			v.Attachments = nil
		}
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Service) setBootable(w http.ResponseWriter, r *http.Request, arg any) error {
	in, err := actionArg(arg, "os-set_bootable")
	if err != nil {
		return err
	}
	if !in.Has("bootable") {
		return cinderWording{}.Missing("bootable")
	}
	b := in.Bool("bootable", false)
	if in.Err != nil {
		return in.Err
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if _, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error { v.Bootable = b; return nil }); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) readableVolume(r *http.Request) (*volstate.Volume, error) {
	if _, err := project(r); err != nil {
		return nil, err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	return s.volumes(r, true).Get(tx, principal(r), chi.URLParam(r, "id"))
}
