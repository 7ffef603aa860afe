package object

import (
	"reflect"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Command handlers. They run in the FSM on every node: deterministic, no
// clock, no I/O. Times come in the command.

type accountPutCmd struct {
	Row Account `json:"row"`
}

func applyAccountPut(tx *memdb.Txn, c accountPutCmd) (any, error) {
	if c.Row.ID == "" {
		return nil, store.Invalidf("account: no project")
	}
	return nil, tx.Insert(tAccounts, &c.Row)
}

type diskSetCmd struct {
	Node  string    `json:"node"`
	Disks []DiskRow `json:"disks"`
}

// applyDiskSet records the disks a node serves now; its disks that are not
// in the list are marked gone.
func applyDiskSet(tx *memdb.Txn, c diskSetCmd) (any, error) {
	seen := map[string]bool{}
	for _, d := range c.Disks {
		d := d
		d.Node, d.Gone = c.Node, false
		if other := store.Get[DiskRow](tx, tDisks, d.ID); other != nil && other.Node != c.Node {
			return nil, store.Conflictf("disk %s already belongs to node %s", d.ID, other.Node)
		}
		seen[d.ID] = true
		if err := tx.Insert(tDisks, &d); err != nil {
			return nil, err
		}
	}
	for _, old := range store.All[DiskRow](tx, tDisks, "node", c.Node) {
		if !seen[old.ID] && !old.Gone {
			gone := *old
			gone.Gone = true
			if err := tx.Insert(tDisks, &gone); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// Container write modes.
const (
	modeCreate = "create" // fail if it exists
	modeUpsert = "upsert" // create or replace metadata
	modeUpdate = "update" // fail if it does not exist
)

type containerPutCmd struct {
	Mode string    `json:"mode"`
	Row  Container `json:"row"`
}

type containerPutResult struct {
	Created bool `json:"created"`
}

func applyContainerPut(tx *memdb.Txn, c containerPutCmd) (any, error) {
	row := c.Row
	row.ID = containerID(row.Project, row.Name)
	old := store.Get[Container](tx, tContainers, row.ID)
	switch {
	case old != nil && c.Mode == modeCreate:
		return nil, store.Conflictf("container %s already exists", row.Name)
	case old == nil && c.Mode == modeUpdate:
		return nil, store.NotFoundf("container %s not found", row.Name)
	}
	if old != nil {
		row.Created, row.Objects, row.Bytes = old.Created, old.Objects, old.Bytes
		keepVersioning(&row, old)
	}
	if err := checkVersioningModes(&row); err != nil {
		return nil, err
	}
	if err := tx.Insert(tContainers, &row); err != nil {
		return nil, err
	}
	return containerPutResult{Created: old == nil}, nil
}

type idCmd struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

func applyContainerDelete(tx *memdb.Txn, c idCmd) (any, error) {
	row := store.Get[Container](tx, tContainers, c.ID)
	if row == nil {
		return nil, store.NotFoundf("container not found")
	}
	it, err := tx.Get(tObjects, "id_prefix", objectPrefix(row.Project, row.Name))
	if err != nil {
		return nil, err
	}
	if it.Next() != nil {
		return nil, store.Conflictf("container %s is not empty", row.Name)
	}
	if hasVersions(tx, row.Project, row.Name) {
		return nil, store.Conflictf("container %s still holds object versions", row.Name)
	}
	for _, u := range store.All[Upload](tx, tUploads, "project", row.Project) {
		if u.Container == row.Name {
			if err := abortUpload(tx, u, c.Now); err != nil {
				return nil, err
			}
		}
	}
	return nil, tx.Delete(tContainers, row)
}

// collect queues the blobs of parts for deletion. Inline parts have none.
func collect(tx *memdb.Txn, parts []Part, now time.Time) error {
	for _, p := range parts {
		if p.Inline {
			continue
		}
		if err := tx.Insert(tGarbage, &Garbage{ID: p.Blob, Part: p, Since: now}); err != nil {
			return err
		}
	}
	return nil
}

// account adjusts a container's object count and bytes.
func account(tx *memdb.Txn, project, container string, objects, bytes int64) error {
	row := store.Get[Container](tx, tContainers, containerID(project, container))
	if row == nil {
		return nil
	}
	c := *row
	c.Objects += objects
	c.Bytes += bytes
	return tx.Insert(tContainers, &c)
}

// inlineBytes is the bytes parts hold in the state.
func inlineBytes(parts []Part) int64 {
	var n int64
	for _, p := range parts {
		if p.Inline {
			n += int64(len(p.Data))
		}
	}
	return n
}

func inlineUsed(tx *memdb.Txn) int64 {
	if u := store.Get[InlineUsage](tx, tInline, inlineUsageID); u != nil {
		return u.Bytes
	}
	return 0
}

// addInline moves the count of inline bytes in the state by delta.
func addInline(tx *memdb.Txn, delta int64) error {
	if delta == 0 {
		return nil
	}
	return tx.Insert(tInline, &InlineUsage{ID: inlineUsageID, Bytes: inlineUsed(tx) + delta})
}

// putObject replaces whatever object has row's id with row.
func putObject(tx *memdb.Txn, row Object) (any, error) {
	c := store.Get[Container](tx, tContainers, containerID(row.Project, row.Container))
	if c == nil {
		return nil, store.NotFoundf("container %s not found", row.Container)
	}
	if c.Versioning != "" {
		return putVersion(tx, c, row)
	}
	row.ID = objectID(row.Project, row.Container, row.Name)
	if old := store.Get[Object](tx, tObjects, row.ID); old != nil {
		if err := collect(tx, old.Parts, row.Modified); err != nil {
			return nil, err
		}
		if err := account(tx, row.Project, row.Container, -1, -old.Size); err != nil {
			return nil, err
		}
		if err := addInline(tx, -inlineBytes(old.Parts)); err != nil {
			return nil, err
		}
	}
	if err := insertCurrent(tx, &row); err != nil {
		return nil, err
	}
	return row, nil
}

// insertCurrent makes row its name's current object: counted in its
// container and account, its inline bytes in the store's total.
func insertCurrent(tx *memdb.Txn, row *Object) error {
	if err := account(tx, row.Project, row.Container, 1, row.Size); err != nil {
		return err
	}
	if err := addInline(tx, inlineBytes(row.Parts)); err != nil {
		return err
	}
	return tx.Insert(tObjects, row)
}

type objectPutCmd struct {
	Row Object `json:"row"`
}

func applyObjectPut(tx *memdb.Txn, c objectPutCmd) (any, error) {
	return putObject(tx, c.Row)
}

type objectInlineCmd struct {
	Row Object `json:"row"`
	// Budget is the most inline bytes the state may hold after this
	// command; the proposer's, so that every node decides alike.
	Budget int64 `json:"budget"`
}

// applyObjectInline stores an object whose bytes are in the command, unless
// that would take the state's inline bytes over the budget: then it refuses
// with ErrOverQuota and the writer stores the bytes in a blob instead.
func applyObjectInline(tx *memdb.Txn, c objectInlineCmd) (any, error) {
	for _, p := range c.Row.Parts {
		if !p.Inline || p.Blob != "" || int64(len(p.Data)) != p.Size {
			return nil, store.Invalidf("parts: an inline object's parts must hold their bytes and no blob")
		}
	}
	used := inlineUsed(tx) + inlineBytes(c.Row.Parts)
	if old := store.Get[Object](tx, tObjects, objectID(c.Row.Project, c.Row.Container, c.Row.Name)); old != nil && replaces(tx, old) {
		used -= inlineBytes(old.Parts)
	}
	if used > c.Budget {
		return nil, store.Fault(store.KindOverQuota, "", "inline objects would hold %d bytes, over the budget of %d", used, c.Budget)
	}
	return putObject(tx, c.Row)
}

// objectDeleteResult says whether the deleted object had already expired
// at the command's time: the caller answers not found, as Swift's object
// server does, though the row is deleted all the same.
type objectDeleteResult struct {
	Expired bool `json:"expired,omitempty"`
}

func applyObjectDelete(tx *memdb.Txn, c idCmd) (any, error) {
	old := store.Get[Object](tx, tObjects, c.ID)
	if old == nil {
		return nil, store.NotFoundf("object not found")
	}
	expired := old.Expired(c.Now)
	if err := collect(tx, old.Parts, c.Now); err != nil {
		return nil, err
	}
	if err := addInline(tx, -inlineBytes(old.Parts)); err != nil {
		return nil, err
	}
	if err := account(tx, old.Project, old.Container, -1, -old.Size); err != nil {
		return nil, err
	}
	return objectDeleteResult{Expired: expired}, tx.Delete(tObjects, old)
}

type objectMetaCmd struct {
	ID          string            `json:"id"`
	Version     string            `json:"version"`
	ContentType string            `json:"content_type"`
	Meta        map[string]string `json:"meta"`
	Headers     map[string]string `json:"headers"`
}

func applyObjectMeta(tx *memdb.Txn, c objectMetaCmd) (any, error) {
	old := store.Get[Object](tx, tObjects, c.ID)
	if old == nil || (c.Version != "" && old.Version != c.Version) {
		return nil, store.NotFoundf("object not found")
	}
	row := *old
	row.Meta, row.Headers = c.Meta, c.Headers
	if c.ContentType != "" {
		row.ContentType = c.ContentType
	}
	return row, tx.Insert(tObjects, &row)
}

type relocateCmd struct {
	Object string `json:"object"` // object id, or "" for an upload part
	Upload string `json:"upload"` // upload part id
	Old    Part   `json:"old"`
	New    Part   `json:"new"`
}

// applyRelocate moves one part of an object to a new layout, if nothing
// changed it since the mover read it.
func applyRelocate(tx *memdb.Txn, c relocateCmd) (any, error) {
	if c.Upload != "" {
		up := store.Get[UploadPart](tx, tUploadParts, c.Upload)
		if up == nil || !reflect.DeepEqual(up.Part, c.Old) {
			return nil, store.Conflictf("upload part changed while it was moved")
		}
		row := *up
		row.Part = c.New
		return nil, tx.Insert(tUploadParts, &row)
	}
	old, table := objectRow(tx, c.Object)
	if old == nil {
		return nil, store.Conflictf("object deleted while it was moved")
	}
	row := *old
	row.Parts = append([]Part(nil), old.Parts...)
	for i, p := range row.Parts {
		if p.Blob == c.Old.Blob {
			if !reflect.DeepEqual(p, c.Old) {
				return nil, store.Conflictf("part changed while it was moved")
			}
			row.Parts[i] = c.New
			return nil, tx.Insert(table, &row)
		}
	}
	return nil, store.Conflictf("object replaced while it was moved")
}

type uploadCreateCmd struct {
	Row Upload `json:"row"`
}

func applyUploadCreate(tx *memdb.Txn, c uploadCreateCmd) (any, error) {
	if store.Get[Container](tx, tContainers, containerID(c.Row.Project, c.Row.Container)) == nil {
		return nil, store.NotFoundf("container %s not found", c.Row.Container)
	}
	return c.Row, tx.Insert(tUploads, &c.Row)
}

type uploadPartCmd struct {
	Row UploadPart `json:"row"`
}

func applyUploadPart(tx *memdb.Txn, c uploadPartCmd) (any, error) {
	if store.Get[Upload](tx, tUploads, c.Row.UploadID) == nil {
		return nil, store.NotFoundf("upload %s not found", c.Row.UploadID)
	}
	c.Row.ID = uploadPartID(c.Row.UploadID, c.Row.Number)
	if old := store.Get[UploadPart](tx, tUploadParts, c.Row.ID); old != nil {
		if err := collect(tx, []Part{old.Part}, c.Row.Modified); err != nil {
			return nil, err
		}
	}
	return nil, tx.Insert(tUploadParts, &c.Row)
}

type uploadCompleteCmd struct {
	Upload string `json:"upload"`
	// Numbers are the parts to keep, in order; ETags what the client
	// expects each to be.
	Numbers []int    `json:"numbers"`
	ETags   []string `json:"etags"`
	Row     Object   `json:"row"` // everything but Parts and Size
}

func applyUploadComplete(tx *memdb.Txn, c uploadCompleteCmd) (any, error) {
	up := store.Get[Upload](tx, tUploads, c.Upload)
	if up == nil {
		return nil, store.NotFoundf("upload %s not found", c.Upload)
	}
	if len(c.Numbers) == 0 || len(c.Numbers) != len(c.ETags) {
		return nil, store.Invalidf("parts: the list of parts is empty or malformed")
	}
	row := c.Row
	row.Parts, row.Size = nil, 0
	used := map[string]bool{}
	for i, n := range c.Numbers {
		if i > 0 && n <= c.Numbers[i-1] {
			return nil, store.Invalidf("parts: part numbers must be in ascending order")
		}
		p := store.Get[UploadPart](tx, tUploadParts, uploadPartID(up.ID, n))
		if p == nil || strings.Trim(c.ETags[i], `"`) != p.Part.ETag {
			return nil, store.Invalidf("parts: part %d was not uploaded or its ETag does not match", n)
		}
		used[p.ID] = true
		row.Parts = append(row.Parts, p.Part)
		row.Size += p.Part.Size
	}
	for _, p := range store.All[UploadPart](tx, tUploadParts, "upload", up.ID) {
		if !used[p.ID] {
			if err := collect(tx, []Part{p.Part}, row.Modified); err != nil {
				return nil, err
			}
		}
		if err := tx.Delete(tUploadParts, p); err != nil {
			return nil, err
		}
	}
	if err := tx.Delete(tUploads, up); err != nil {
		return nil, err
	}
	return putObject(tx, row)
}

func abortUpload(tx *memdb.Txn, up *Upload, now time.Time) error {
	for _, p := range store.All[UploadPart](tx, tUploadParts, "upload", up.ID) {
		if err := collect(tx, []Part{p.Part}, now); err != nil {
			return err
		}
		if err := tx.Delete(tUploadParts, p); err != nil {
			return err
		}
	}
	return tx.Delete(tUploads, up)
}

func applyUploadAbort(tx *memdb.Txn, c idCmd) (any, error) {
	up := store.Get[Upload](tx, tUploads, c.ID)
	if up == nil {
		return nil, store.NotFoundf("upload %s not found", c.ID)
	}
	return nil, abortUpload(tx, up, c.Now)
}

type idsCmd struct {
	IDs []string `json:"ids"`
}

func applyGarbageDone(tx *memdb.Txn, c idsCmd) (any, error) {
	for _, id := range c.IDs {
		if g := store.Get[Garbage](tx, tGarbage, id); g != nil {
			if err := tx.Delete(tGarbage, g); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

type healAddCmd struct {
	Items []HealItem `json:"items"`
}

func applyHealAdd(tx *memdb.Txn, c healAddCmd) (any, error) {
	for _, it := range c.Items {
		it := it
		if store.Get[HealItem](tx, tHeal, it.ID) != nil {
			continue
		}
		if err := tx.Insert(tHeal, &it); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func applyHealDone(tx *memdb.Txn, c idsCmd) (any, error) {
	for _, id := range c.IDs {
		if h := store.Get[HealItem](tx, tHeal, id); h != nil {
			if err := tx.Delete(tHeal, h); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}
