package object

// Object versioning: S3's bucket versioning and Swift's object versioning
// (X-Versions-Enabled, Swift 2.24+, which Swift's s3api maps S3's onto) are
// one state of the container, kept here in the replicated state beside the
// object rows, so both front ends see the same versions.
//
// A container is never versioned (Versioning ""), Enabled or Suspended;
// once enabled it never goes back to "". The current version of a name is
// its row in storage_objects, exactly as in an unversioned container, so
// listings, reads, copies, expiry and every other reader of current objects
// are unchanged. Noncurrent versions and delete markers are rows of
// storage_versions keyed project\0container\0name\0<^seq as 16 hex
// digits>, so a name's versions sort newest first right after the name
// (names hold no NUL). As in Swift's design (a hidden versions container
// beside the primary one) a delete marker is only ever a noncurrent row:
// a name whose newest version is a marker has no current row, and reads of
// it answer not found with the marker's version.
//
// Every change is one command, applied deterministically on every node:
// the command numbers versions with the container's VersionSeq, and a
// version id is that number inverted (so ids sort newest first and find
// their row directly) followed by random digits the proposer chose (the
// write's own random Version, or a new one for a delete marker). Nothing is ever copied: archiving a version moves
// its row (parts and all) from one table to the other, so a version costs
// no bytes beyond its own. A version removed for good queues its blobs on
// the garbage list in the same command, as every other delete does, and
// the orphan sweep, healer, scrubber and rebalancer keep noncurrent
// versions' blobs like current ones (maint.go reads both tables).
//
// Usage: Container.Objects/Bytes count current objects (what a listing
// shows: Swift's X-Container-Object-Count, S3's ListObjects);
// VersionObjects/VersionBytes count noncurrent versions (delete markers
// hold nothing and are not counted). An account's usage and a container's
// quota count both: the bytes are stored, and a quota that let overwrites
// through would not bound anything. A container that still holds a
// version or a delete marker cannot be deleted (S3's BucketNotEmpty,
// Swift's 409).
//
// State written before versioning existed reads as it did: a container
// without the field is unversioned, an object without VersionID is the
// "null" version with Seq 0 (older than any version written since), and a
// snapshot without storage_versions restores an empty table.

import (
	"context"
	"fmt"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Versioning states of a container, named as S3 names them.
const (
	VersioningEnabled   = "Enabled"
	VersioningSuspended = "Suspended"
)

// NullVersion is the version id S3 and Swift show for VersionID "".
const NullVersion = "null"

const (
	cmdObjectRemove = "storage.object.remove"
	cmdVersioning   = "storage.container.versioning"
)

// ShownVersion is the version id clients see for a row's VersionID.
func ShownVersion(id string) string {
	if id == "" {
		return NullVersion
	}
	return id
}

// storedVersion is the VersionID a client's version id names.
func storedVersion(id string) string {
	if id == NullVersion {
		return ""
	}
	return id
}

// seqKey orders versions newest first: the inverted sequence number in 16
// hex digits.
func seqKey(seq uint64) string { return fmt.Sprintf("%016x", ^seq) }

// versionRowID is the storage_versions id of a version of o's name.
func versionRowID(o *Object) string {
	return objectID(o.Project, o.Container, o.Name) + sep + seqKey(o.Seq)
}

// newVersionID is the id of the version numbered seq: its seqKey, so that
// a version id finds its row and sorts newest first like Swift's inverted
// timestamps, then 16 hex digits of the proposer's random id (the write's
// own, or a delete marker's), so that ids are not reused once a container
// is deleted and made again.
func newVersionID(seq uint64, random string) string {
	if len(random) < 16 {
		random = fmt.Sprintf("%016x", seq)
	}
	return seqKey(seq) + random[:16]
}

// versionSeqKey is the seqKey part of a version id, if it has one.
func versionSeqKey(id string) (string, bool) {
	if len(id) != 32 {
		return "", false
	}
	return id[:16], true
}

// findVersion is the version of the name of id (current or not) whose
// VersionID is want, with its table.
func findVersion(tx *memdb.Txn, id, want string) (*Object, string) {
	if cur := store.Get[Object](tx, tObjects, id); cur != nil && cur.VersionID == want {
		return cur, tObjects
	}
	if key, ok := versionSeqKey(want); ok {
		if v := store.Get[Object](tx, tVersions, id+sep+key); v != nil && v.VersionID == want {
			return v, tVersions
		}
		return nil, ""
	}
	// The null version (or an id of another form): at most one per
	// name, found by a walk of its versions.
	it, err := tx.Get(tVersions, "id_prefix", id+sep)
	if err != nil {
		return nil, ""
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if v := raw.(*Object); v.VersionID == want {
			return v, tVersions
		}
	}
	return nil, ""
}

// objectRow finds the row of an object id, current or noncurrent, with
// the table it is in.
func objectRow(tx *memdb.Txn, id string) (*Object, string) {
	if strings.Count(id, sep) == 3 {
		return store.Get[Object](tx, tVersions, id), tVersions
	}
	return store.Get[Object](tx, tObjects, id), tObjects
}

// newestNoncurrent is the newest noncurrent version (or delete marker) of
// the name whose object id is id.
func newestNoncurrent(tx *memdb.Txn, id string) *Object {
	it, err := tx.Get(tVersions, "id_prefix", id+sep)
	if err != nil {
		return nil
	}
	if raw := it.Next(); raw != nil {
		return raw.(*Object)
	}
	return nil
}

func hasVersions(tx *memdb.Txn, project, container string) bool {
	it, err := tx.Get(tVersions, "id_prefix", objectPrefix(project, container))
	return err == nil && it.Next() != nil
}

// keepVersioning carries the versioning state of a container over a
// metadata write that does not set it (a Swift PUT or POST without
// X-Versions-Enabled, an S3 ACL change): versioning, once set, stays.
func keepVersioning(row, old *Container) {
	row.VersionSeq, row.VersionObjects, row.VersionBytes = old.VersionSeq, old.VersionObjects, old.VersionBytes
	if row.Versioning == "" {
		row.Versioning = old.Versioning
	}
}

// checkVersioningModes refuses a container both versioned and using
// Swift's legacy versioned writes, as Swift does.
func checkVersioningModes(row *Container) error {
	switch row.Versioning {
	case "", VersioningEnabled, VersioningSuspended:
	default:
		return store.Invalidf("versioning: must be %s or %s", VersioningEnabled, VersioningSuspended)
	}
	if row.Versioning != "" && row.Versions != "" {
		return store.Invalidf("versioning: a container cannot use object versioning and the legacy versioned writes (X-Versions-Location or X-History-Location) together")
	}
	return nil
}

// adjustContainer changes a container's row in place of a copy.
func adjustContainer(tx *memdb.Txn, project, container string, f func(*Container)) error {
	row := store.Get[Container](tx, tContainers, containerID(project, container))
	if row == nil {
		return nil
	}
	c := *row
	f(&c)
	return tx.Insert(tContainers, &c)
}

func accountVersions(tx *memdb.Txn, project, container string, objects, bytes int64) error {
	return adjustContainer(tx, project, container, func(c *Container) {
		c.VersionObjects += objects
		c.VersionBytes += bytes
	})
}

// nextSeq takes the container's next version sequence number.
func nextSeq(tx *memdb.Txn, project, container string) (uint64, error) {
	var seq uint64
	err := adjustContainer(tx, project, container, func(c *Container) {
		c.VersionSeq++
		seq = c.VersionSeq
	})
	return seq, err
}

// replaces reports whether a write of a new object under old's name
// removes old for good (rather than keeping it as a noncurrent version).
func replaces(tx *memdb.Txn, old *Object) bool {
	c := store.Get[Container](tx, tContainers, containerID(old.Project, old.Container))
	return c == nil || c.Versioning == "" || (c.Versioning == VersioningSuspended && old.VersionID == "")
}

// removeVersion removes a version (current or not) for good: its blobs go
// to the garbage list.
func removeVersion(tx *memdb.Txn, o *Object, table string, now time.Time) error {
	if err := collect(tx, o.Parts, now); err != nil {
		return err
	}
	if err := addInline(tx, -inlineBytes(o.Parts)); err != nil {
		return err
	}
	var err error
	switch {
	case table == tObjects:
		err = account(tx, o.Project, o.Container, -1, -o.Size)
	case !o.DeleteMarker:
		err = accountVersions(tx, o.Project, o.Container, -1, -o.Size)
	}
	if err != nil {
		return err
	}
	return tx.Delete(table, o)
}

// retire takes the current version out of storage_objects: for good if it
// is the null version of a suspended container (a new null version
// replaces it), else into storage_versions.
func retire(tx *memdb.Txn, cur *Object, mode string, now time.Time) error {
	if mode == VersioningSuspended && cur.VersionID == "" {
		return removeVersion(tx, cur, tObjects, now)
	}
	if err := tx.Delete(tObjects, cur); err != nil {
		return err
	}
	if err := account(tx, cur.Project, cur.Container, -1, -cur.Size); err != nil {
		return err
	}
	v := *cur
	v.ID = versionRowID(&v)
	if err := accountVersions(tx, v.Project, v.Container, 1, v.Size); err != nil {
		return err
	}
	return tx.Insert(tVersions, &v)
}

// dropNullVersion removes a name's noncurrent null version, if any: in a
// suspended container a new null version (object or delete marker)
// replaces it.
func dropNullVersion(tx *memdb.Txn, id string, now time.Time) error {
	if v, table := findVersion(tx, id, ""); v != nil && table == tVersions {
		return removeVersion(tx, v, tVersions, now)
	}
	return nil
}

// promote makes a name's newest noncurrent version current again once its
// current version is gone, unless that version is a delete marker.
func promote(tx *memdb.Txn, id string) error {
	if store.Get[Object](tx, tObjects, id) != nil {
		return nil
	}
	newest := newestNoncurrent(tx, id)
	if newest == nil || newest.DeleteMarker {
		return nil
	}
	v := *newest
	if err := tx.Delete(tVersions, newest); err != nil {
		return err
	}
	if err := accountVersions(tx, v.Project, v.Container, -1, -v.Size); err != nil {
		return err
	}
	v.ID = id
	if err := account(tx, v.Project, v.Container, 1, v.Size); err != nil {
		return err
	}
	return tx.Insert(tObjects, &v)
}

// putVersion stores row as the current version of its name in a
// versioned container c.
func putVersion(tx *memdb.Txn, c *Container, row Object) (any, error) {
	row.ID = objectID(row.Project, row.Container, row.Name)
	row.DeleteMarker = false
	seq, err := nextSeq(tx, row.Project, row.Container)
	if err != nil {
		return nil, err
	}
	row.Seq, row.VersionID = seq, ""
	if c.Versioning == VersioningEnabled {
		// With the write's own random id (its blob's, or its upload's):
		// the proposer chose it, so every node takes the same.
		row.VersionID = newVersionID(seq, row.Version)
	}
	if old := store.Get[Object](tx, tObjects, row.ID); old != nil {
		if err := retire(tx, old, c.Versioning, row.Modified); err != nil {
			return nil, err
		}
	}
	if c.Versioning == VersioningSuspended {
		if err := dropNullVersion(tx, row.ID, row.Modified); err != nil {
			return nil, err
		}
	}
	if err := insertCurrent(tx, &row); err != nil {
		return nil, err
	}
	return row, nil
}

type objectRemoveCmd struct {
	Project   string `json:"project"`
	Container string `json:"container"`
	Name      string `json:"name"`
	// ByVersion: remove the version VersionID ("" the null one) for
	// good. Otherwise delete the object: in a versioned container that
	// writes a delete marker, with the id Marker when versioning is
	// enabled.
	ByVersion bool      `json:"by_version,omitempty"`
	VersionID string    `json:"version_id,omitempty"`
	Marker    string    `json:"marker,omitempty"`
	Now       time.Time `json:"now"`
}

// Removed says what a delete did.
type Removed struct {
	// VersionID is the version removed, or the delete marker written
	// (as clients see it: "null" for the null version).
	VersionID string `json:"version_id,omitempty"`
	// DeleteMarker: a delete marker was written, or the version removed
	// was one.
	DeleteMarker bool `json:"delete_marker,omitempty"`
	// Expired: the object deleted had already expired (see Delete).
	Expired bool `json:"expired,omitempty"`
	// Existed: a delete marker was written over a current object (Swift
	// answers a delete of a name without one 404, the marker written all
	// the same).
	Existed bool `json:"existed,omitempty"`
	// Current is, after a version removed by its id, the version now
	// current (as clients see it), NullVersion when the name has none:
	// Swift's X-Object-Current-Version-Id.
	Current string `json:"current,omitempty"`
}

// errUnversioned refuses a version other than null in a container never
// versioned, as Swift does (400): its objects have no other.
func errUnversioned(version string) error {
	return badField("version-id", "the container is not versioned: its objects have only the version %q, not %q", NullVersion, version)
}

func applyObjectRemove(tx *memdb.Txn, c objectRemoveCmd) (any, error) {
	cont := store.Get[Container](tx, tContainers, containerID(c.Project, c.Container))
	if cont == nil {
		return nil, store.NotFoundf("container %s not found", c.Container)
	}
	id := objectID(c.Project, c.Container, c.Name)
	if !c.ByVersion && cont.Versioning == "" {
		res, err := applyObjectDelete(tx, idCmd{ID: id, Now: c.Now})
		if err != nil {
			return nil, err
		}
		return Removed{VersionID: NullVersion, Expired: res.(objectDeleteResult).Expired}, nil
	}
	if c.ByVersion && cont.Versioning == "" && c.VersionID != "" {
		return nil, errUnversioned(c.VersionID)
	}
	cur := store.Get[Object](tx, tObjects, id)
	if !c.ByVersion {
		var expired bool
		if cur != nil {
			expired = cur.Expired(c.Now)
			if err := retire(tx, cur, cont.Versioning, c.Now); err != nil {
				return nil, err
			}
		}
		if cont.Versioning == VersioningSuspended {
			if err := dropNullVersion(tx, id, c.Now); err != nil {
				return nil, err
			}
		}
		seq, err := nextSeq(tx, c.Project, c.Container)
		if err != nil {
			return nil, err
		}
		m := Object{Project: c.Project, Container: c.Container, Name: c.Name, Seq: seq, Modified: c.Now, DeleteMarker: true}
		if cont.Versioning == VersioningEnabled {
			if c.Marker == "" || c.Marker == NullVersion {
				return nil, store.Invalidf("marker: a delete marker needs a version id")
			}
			m.VersionID = newVersionID(seq, c.Marker)
		}
		m.ID = versionRowID(&m)
		if err := tx.Insert(tVersions, &m); err != nil {
			return nil, err
		}
		return Removed{VersionID: ShownVersion(m.VersionID), DeleteMarker: true, Expired: expired, Existed: cur != nil}, nil
	}
	target, table := findVersion(tx, id, c.VersionID)
	if target == nil {
		return nil, store.NotFoundf("version %s of object %s not found", ShownVersion(c.VersionID), c.Name)
	}
	if err := removeVersion(tx, target, table, c.Now); err != nil {
		return nil, err
	}
	if err := promote(tx, id); err != nil {
		return nil, err
	}
	current := NullVersion
	if now := store.Get[Object](tx, tObjects, id); now != nil {
		current = ShownVersion(now.VersionID)
	}
	return Removed{VersionID: ShownVersion(c.VersionID), DeleteMarker: target.DeleteMarker, Current: current}, nil
}

type versioningCmd struct {
	ID     string `json:"id"` // container id
	Status string `json:"status"`
}

func applyVersioning(tx *memdb.Txn, c versioningCmd) (any, error) {
	old := store.Get[Container](tx, tContainers, c.ID)
	if old == nil {
		return nil, store.NotFoundf("container not found")
	}
	if c.Status != VersioningEnabled && c.Status != VersioningSuspended {
		return nil, store.Invalidf("status: must be %s or %s", VersioningEnabled, VersioningSuspended)
	}
	row := *old
	row.Versioning = c.Status
	if err := checkVersioningModes(&row); err != nil {
		return nil, err
	}
	return nil, tx.Insert(tContainers, &row)
}

// SetVersioning turns a container's versioning on (VersioningEnabled) or
// suspends it (VersioningSuspended).
func (s *Service) SetVersioning(ctx context.Context, project, container, status string) error {
	_, err := s.repl.Propose(ctx, cmdVersioning, versioningCmd{ID: containerID(project, container), Status: status})
	return err
}

// Remove deletes an object. With version "" it deletes the current object
// (in a versioned container: writes a delete marker, even where the name
// has no current object, as S3 does); with a version id (NullVersion for
// the null version) it removes that version for good, and if it was the
// current one the newest older version becomes current unless that is a
// delete marker.
func (s *Service) Remove(ctx context.Context, project, container, name, version string) (Removed, error) {
	cmd := objectRemoveCmd{Project: project, Container: container, Name: name, Now: s.now()}
	if version != "" {
		cmd.ByVersion, cmd.VersionID = true, storedVersion(version)
	} else {
		cmd.Marker = newID()
	}
	res, err := s.repl.Propose(ctx, cmdObjectRemove, cmd)
	if err != nil {
		return Removed{}, err
	}
	var out Removed
	if err := res.Decode(&out); err != nil {
		return Removed{}, err
	}
	if out.Expired && version == "" && !out.DeleteMarker {
		return out, store.NotFoundf("object %s not found", name)
	}
	return out, nil
}

// DeletedError is the answer for a name whose newest version is a delete
// marker: not found (errors.Is(err, store.ErrNotFound)), with the marker's
// version id for the response headers.
type DeletedError struct {
	Name      string
	VersionID string // as clients see it
}

func (e *DeletedError) Error() string { return "object " + e.Name + " not found (deleted)" }

// Is makes a DeletedError a store.ErrNotFound.
func (e *DeletedError) Is(target error) bool { return target == store.ErrNotFound }

// latestMarker is the delete marker that is the newest version of the
// name of id, when it has no current version.
func latestMarker(tx *memdb.Txn, id string) *Object {
	if v := newestNoncurrent(tx, id); v != nil && v.DeleteMarker {
		return v
	}
	return nil
}

// HeadVersion returns one version of an object (NullVersion for the null
// one): a stored object, or a delete marker (DeleteMarker set, no bytes).
func (s *Service) HeadVersion(ctx context.Context, project, container, name, version string) (*Object, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	c := store.Get[Container](tx, tContainers, containerID(project, container))
	if c == nil {
		return nil, store.NotFoundf("container %s not found", container)
	}
	want := storedVersion(version)
	if c.Versioning == "" && want != "" {
		return nil, errUnversioned(version)
	}
	o, table := findVersion(tx, objectID(project, container, name), want)
	if o != nil && !(table == tObjects && o.Expired(s.cfg.Now())) {
		return o, nil
	}
	return nil, store.NotFoundf("version %s of object %s not found", version, name)
}

// VersionListOptions select and page a listing of versions, as S3's
// ListObjectVersions and Swift's ?versions do: versions of names after
// KeyMarker, or, with VersionMarker, the versions of KeyMarker older than
// that one and then those of the names after it.
type VersionListOptions struct {
	Prefix, Delimiter, KeyMarker, VersionMarker string
	Limit                                       int
}

// VersionEntry is one row of a versions listing: a version (an object or
// a delete marker) or a common prefix.
type VersionEntry struct {
	Object   *Object
	IsLatest bool
	Subdir   string
}

// ListVersions lists a container's versions by name, newest version of a
// name first. It reports whether more entries follow the last returned.
func (s *Service) ListVersions(ctx context.Context, project, container string, o VersionListOptions) ([]VersionEntry, bool, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, false, err
	}
	if store.Get[Container](tx, tContainers, containerID(project, container)) == nil {
		return nil, false, store.NotFoundf("container %s not found", container)
	}
	if o.Limit <= 0 {
		o.Limit = 10000
	}
	base := objectPrefix(project, container)
	now := s.cfg.Now()
	var out []VersionEntry
	// emitName adds the versions of a name, newest first, after the
	// version after (none: all of them), up to the limit; false once the
	// page is full with versions left over. The walk goes no further
	// than the page, however many versions the name has.
	emitName := func(name, after string) (bool, error) {
		id := base + name
		cur := store.Get[Object](tx, tObjects, id)
		if cur != nil && cur.Expired(now) {
			cur = nil
		}
		from := id + sep
		switch {
		case after == "":
			if cur != nil {
				if len(out) == o.Limit {
					return false, nil
				}
				out = append(out, VersionEntry{Object: cur, IsLatest: true})
			}
		case cur != nil && cur.VersionID == storedVersion(after):
			// After the current version: every noncurrent one.
		default:
			v, table := findVersion(tx, id, storedVersion(after))
			if v == nil || table != tVersions {
				return true, nil // gone since the last page: on to the next name
			}
			from = v.ID + "\x00" // just past it
		}
		// A noncurrent version is the latest when no current one is.
		latest := cur == nil && after == ""
		it, err := tx.LowerBound(tVersions, "id", from)
		if err != nil {
			return false, err
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			v := raw.(*Object)
			if !strings.HasPrefix(v.ID, id+sep) {
				break
			}
			if len(out) == o.Limit {
				return false, nil
			}
			out = append(out, VersionEntry{Object: v, IsLatest: latest})
			latest = false
		}
		return true, nil
	}
	cursor, inclusive := o.Prefix, true
	if o.KeyMarker != "" && o.KeyMarker >= o.Prefix {
		cursor, inclusive = o.KeyMarker, false
		if o.VersionMarker != "" && strings.HasPrefix(o.KeyMarker, o.Prefix) {
			if ok, err := emitName(o.KeyMarker, o.VersionMarker); err != nil || !ok {
				return out, !ok, err
			}
		}
	}
	for {
		name, ok := nextVersionedName(tx, base, cursor, inclusive)
		if !ok || !strings.HasPrefix(name, o.Prefix) {
			return out, false, nil
		}
		cursor, inclusive = name, false
		if o.Delimiter != "" {
			if i := strings.Index(name[len(o.Prefix):], o.Delimiter); i >= 0 {
				sub := name[:len(o.Prefix)+i+len(o.Delimiter)]
				// No valid UTF-8 name under sub sorts after sub+0xff.
				cursor, inclusive = sub+"\xff", true
				if sub == o.KeyMarker {
					continue
				}
				if len(out) == o.Limit {
					return out, true, nil
				}
				out = append(out, VersionEntry{Subdir: sub})
				continue
			}
		}
		if ok, err := emitName(name, ""); err != nil || !ok {
			return out, !ok, err
		}
	}
}

// nextVersionedName is the first name at or after (inclusive) or after
// from that has a current or a noncurrent version.
func nextVersionedName(tx *memdb.Txn, base, from string, inclusive bool) (string, bool) {
	key := base + from
	if !inclusive {
		// Past from itself and its versions (from\0...); names hold no
		// NUL, so nothing else sorts in between.
		key += "\x01"
	}
	best, found := "", false
	for _, table := range []string{tObjects, tVersions} {
		it, err := tx.LowerBound(table, "id", key)
		if err != nil {
			continue
		}
		raw := it.Next()
		if raw == nil {
			continue
		}
		o := raw.(*Object)
		if !strings.HasPrefix(o.ID, base) {
			continue
		}
		if !found || o.Name < best {
			best, found = o.Name, true
		}
	}
	return best, found
}
