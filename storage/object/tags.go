package object

import (
	"context"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Object tags (S3's PUT/GET/DELETE ?tagging). Tags are part of the
// object's row in the replicated state, set with its bytes (Attrs.Tags,
// from x-amz-tagging) or replaced alone by cmdObjectTags; a write of new
// bytes under the name starts with the tags it brings, as in S3. Like
// every command, a tag update is acknowledged once the state has
// committed it, so it survives a crash of any node.

const cmdObjectTags = "storage.object.tags"

type objectTagsCmd struct {
	ID   string            `json:"id"`
	Tags map[string]string `json:"tags"`
	Now  time.Time         `json:"now"`
}

// applyObjectTags replaces the tags of the object now under the id,
// whatever its version: S3 applies a tagging request to the current
// object. An expired object is gone, as Head says.
func applyObjectTags(tx *memdb.Txn, c objectTagsCmd) (any, error) {
	old := store.Get[Object](tx, tObjects, c.ID)
	if old == nil || old.Expired(c.Now) {
		return nil, store.NotFoundf("object not found")
	}
	row := *old
	row.Tags = c.Tags
	if len(row.Tags) == 0 {
		row.Tags = nil
	}
	return row, tx.Insert(tObjects, &row)
}

// SetTags replaces an object's tags (none: removes them).
func (s *Service) SetTags(ctx context.Context, project, container, name string, tags map[string]string) (*Object, error) {
	res, err := s.repl.Propose(ctx, cmdObjectTags, objectTagsCmd{ID: objectID(project, container, name), Tags: tags, Now: s.cfg.Now()})
	if err != nil {
		return nil, err
	}
	var out Object
	return &out, res.Decode(&out)
}
