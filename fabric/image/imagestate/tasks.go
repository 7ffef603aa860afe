package imagestate

import (
	"encoding/json"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// StatusImporting is an image whose data the cloud is fetching for an
// import (web-download); it goes active when the data is stored, back
// to queued when the fetch fails.
const StatusImporting = "importing"

// Task statuses, Glance's.
const (
	TaskPending    = "pending"
	TaskProcessing = "processing"
	TaskSuccess    = "success"
	TaskFailure    = "failure"
)

// TaskTypeImport is the type of the tasks image imports record.
const TaskTypeImport = "api_image_import"

// Task is Glance's record of an asynchronous operation: here, an image
// import. A row is replaced whole by each change.
type Task struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Status  string          `json:"status"`
	Owner   string          `json:"owner"` // the image owner's project
	ImageID string          `json:"image_id"`
	UserID  string          `json:"user_id"`
	Request string          `json:"request_id"`
	Input   json.RawMessage `json:"input,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Message string          `json:"message"`
	// Upload is the image's upload (Image.UploadID) this task's work
	// runs as, so that an upload given back (its node restarted) fails
	// its task too.
	Upload    string    `json:"upload,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ExpiresAt is set when the task ends: after it the task is deleted.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Done reports whether the task has ended.
func (t *Task) Done() bool { return t.Status == TaskSuccess || t.Status == TaskFailure }

const (
	TaskTable = "image_tasks"

	// CmdTaskPut writes a task and, in the same command, the image it
	// changes: an import's start, end or failure is one entry, so a crash
	// leaves the task and the image agreeing.
	CmdTaskPut = "image.task.put"
	// CmdTaskExpire deletes ended tasks past their expiry.
	CmdTaskExpire = "image.task.expire"
)

func taskTable() store.Table {
	return store.NewTable(TaskTable, &Task{}, store.StringIndex("image", "ImageID", false))
}

// TaskPutCmd writes Task and, if Image is set, replaces that image whose
// current revision is Revision. Create refuses an existing task id.
type TaskPutCmd struct {
	Task     Task   `json:"task"`
	Create   bool   `json:"create,omitempty"`
	Image    *Image `json:"image,omitempty"`
	Revision int64  `json:"revision,omitempty"`
}

func applyTaskPut(tx *memdb.Txn, c TaskPutCmd) (any, error) {
	cur := store.Get[Task](tx, TaskTable, c.Task.ID)
	switch {
	case c.Task.ID == "" || c.Task.ImageID == "":
		return nil, store.Invalidf("a task needs an id and an image")
	case c.Create && cur != nil:
		return nil, store.Conflictf("Task with identifier %s already exists!", c.Task.ID)
	case !c.Create && cur == nil:
		return nil, store.NotFoundf("Task with identifier %s not found", c.Task.ID)
	case cur != nil && cur.Done():
		// An ended task stays as it ended: a late writer (a download
		// whose upload was given back meanwhile) does not revive it.
		return nil, store.Conflictf("Task %s has already ended (%s).", cur.ID, cur.Status)
	}
	var out Image
	if c.Image != nil {
		res, err := applyPut(tx, PutCmd{Row: *c.Image, Revision: c.Revision})
		if err != nil {
			return nil, err
		}
		out = res.(Image)
	}
	t := c.Task
	return out, tx.Insert(TaskTable, &t)
}

// TaskExpireCmd deletes the tasks IDs that have ended and expired by At
// (the proposer's clock).
type TaskExpireCmd struct {
	IDs []string  `json:"ids"`
	At  time.Time `json:"at"`
}

func applyTaskExpire(tx *memdb.Txn, c TaskExpireCmd) (any, error) {
	for _, id := range c.IDs {
		t := store.Get[Task](tx, TaskTable, id)
		if t == nil || !t.Done() || t.ExpiresAt.IsZero() || t.ExpiresAt.After(c.At) {
			continue
		}
		if err := tx.Delete(TaskTable, t); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
