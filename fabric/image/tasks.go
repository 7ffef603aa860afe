package image

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Glance's tasks: every image import is recorded as a task
// (api_image_import) whose input is the import request and whose status
// says how it went (GET /v2/images/{id}/tasks, API 2.12). Admins list
// and show all tasks (/v2/tasks, Glance's default policy). An ended task
// is kept for taskTTL (Glance's task_time_to_live), then deleted.

type Task = imagestate.Task

const taskTTL = 48 * time.Hour

var taskStatuses = []string{imagestate.TaskPending, imagestate.TaskProcessing, imagestate.TaskSuccess, imagestate.TaskFailure}

func rawOrNull(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return raw
}

// taskView is a task as Glance shows it; a list shows stubs (no input,
// result or message).
func taskView(t *Task, full bool) map[string]any {
	var expires any
	if !t.ExpiresAt.IsZero() {
		expires = timeText(t.ExpiresAt)
	}
	v := map[string]any{"id": t.ID, "type": t.Type, "status": t.Status, "owner": t.Owner,
		"created_at": timeText(t.CreatedAt), "updated_at": timeText(t.UpdatedAt), "expires_at": expires,
		"self": "/v2/tasks/" + t.ID, "schema": "/v2/schemas/task"}
	if full {
		v["input"], v["result"], v["message"] = rawOrNull(t.Input), rawOrNull(t.Result), t.Message
		v["image_id"], v["request_id"], v["user_id"] = t.ImageID, t.Request, t.UserID
	}
	return v
}

func taskNotFound(id string) error { return store.NotFoundf("Failed to find task %s", id) }

func (s *Service) showTask(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	t := store.Get[Task](tx, imagestate.TaskTable, id)
	if t == nil {
		return taskNotFound(id)
	}
	api.JSON(w, http.StatusOK, taskView(t, true))
	return nil
}

// listTasks is GET /v2/tasks: Glance's filters (type, status), sort
// (sort_key, sort_dir; newest first) and paging (limit, marker).
func (s *Service) listTasks(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return badRequest("limit param must be a positive integer")
		}
		limit = min(n, maxLimit)
	}
	if v := q.Get("status"); v != "" && !slices.Contains(taskStatuses, v) {
		return badRequest("Invalid status value: %s", v)
	}
	if v := q.Get("type"); v != "" && v != imagestate.TaskTypeImport && v != "import" {
		return badRequest("Invalid type value: %s", v)
	}
	key := q.Get("sort_key")
	if key == "" {
		key = "created_at"
	}
	by := map[string]func(t *Task) string{
		"id": func(t *Task) string { return t.ID }, "type": func(t *Task) string { return t.Type },
		"status":     func(t *Task) string { return t.Status },
		"created_at": func(t *Task) string { return t.CreatedAt.UTC().Format(time.RFC3339Nano) },
		"updated_at": func(t *Task) string { return t.UpdatedAt.UTC().Format(time.RFC3339Nano) },
	}[key]
	if by == nil {
		return badRequest("Invalid sort_key value: %s", key)
	}
	desc := true
	switch q.Get("sort_dir") {
	case "", "desc":
	case "asc":
		desc = false
	default:
		return badRequest("Invalid sort direction: %s", q.Get("sort_dir"))
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	var items []*Task
	for _, t := range store.All[Task](tx, imagestate.TaskTable, "id") {
		if (q.Get("status") == "" || t.Status == q.Get("status")) && (q.Get("type") == "" || t.Type == q.Get("type")) {
			items = append(items, t)
		}
	}
	cmp := func(a, b *Task) int {
		c := strings.Compare(by(a), by(b))
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if desc {
			return -c
		}
		return c
	}
	slices.SortFunc(items, cmp)
	if m := q.Get("marker"); m != "" {
		mt := store.Get[Task](tx, imagestate.TaskTable, m)
		if mt == nil {
			return badRequest("Invalid marker. Task %s could not be found.", m)
		}
		at, _ := slices.BinarySearchFunc(items, mt, cmp)
		if at < len(items) && items[at].ID == mt.ID {
			at++
		}
		items = items[at:]
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	views := make([]map[string]any, 0, len(items))
	for _, t := range items {
		views = append(views, taskView(t, false))
	}
	first := url.Values{}
	for k, v := range q {
		if k != "marker" {
			first[k] = v
		}
	}
	body := map[string]any{"tasks": views, "schema": "/v2/schemas/tasks", "first": "/v2/tasks"}
	if len(first) > 0 {
		body["first"] = "/v2/tasks?" + first.Encode()
	}
	if more && len(items) > 0 {
		first.Set("marker", items[len(items)-1].ID)
		body["next"] = "/v2/tasks?" + first.Encode()
	}
	api.JSON(w, http.StatusOK, body)
	return nil
}

// imageTasks is GET /v2/images/{id}/tasks: the image's import tasks,
// newest first, to those who may change the image (a task's input may
// hold a URL the owner would not show everyone the image is shared with).
func (s *Service) imageTasks(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	img, err := s.find(r.Context(), p, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if !p.CanRead(img.Owner) {
		return policyDenied("get_image_tasks")
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	ts := store.All[Task](tx, imagestate.TaskTable, "image", img.ID)
	slices.SortFunc(ts, func(a, b *Task) int { return b.CreatedAt.Compare(a.CreatedAt) })
	views := make([]map[string]any, 0, len(ts))
	for _, t := range ts {
		views = append(views, taskView(t, true))
	}
	api.JSON(w, http.StatusOK, map[string]any{"tasks": views})
	return nil
}

// errKeepImage, returned by a taskChange's change, writes the task
// without the image.
var errKeepImage = errors.New("task only")

// taskChange writes task t (created when create) together with image
// id as change leaves it, in one command, retrying while the image
// changes under it. change gets copies of the current image (nil when
// it is gone) and of t; returning errKeepImage writes the task alone.
func (s *Service) taskChange(ctx context.Context, t Task, create bool, id string, change func(img *Image, t *Task) error) (*Image, error) {
	for attempt := 0; ; attempt++ {
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return nil, err
		}
		var img *Image
		var rev int64
		if cur := store.Get[Image](tx, tImages, id); cur != nil {
			img, rev = cur.Clone(), cur.Revision
		}
		task := t
		task.UpdatedAt = s.now()
		err = change(img, &task)
		c := imagestate.TaskPutCmd{Task: task, Create: create}
		switch {
		case errors.Is(err, errKeepImage):
		case err != nil:
			return nil, err
		case img != nil:
			img.UpdatedAt = task.UpdatedAt
			c.Image, c.Revision = img, rev
		}
		res, err := s.cfg.Repl.Propose(ctx, imagestate.CmdTaskPut, c)
		if imagestate.IsStale(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		var out Image
		if err := res.Decode(&out); err != nil {
			return nil, err
		}
		return &out, nil
	}
}

// newImportTask is the task of an import request: its input is
// Glance's (the image and the request as sent).
func (s *Service) newImportTask(r *http.Request, id string, req map[string]any) Task {
	input, _ := json.Marshal(map[string]any{"image_id": id, "import_req": req, "backend": []string{}})
	now := s.now()
	return Task{ID: api.NewUUID(), Type: imagestate.TaskTypeImport, Status: imagestate.TaskPending, ImageID: id,
		UserID: principal(r).UserID, Request: api.RequestID(r.Context()), Input: input, CreatedAt: now, UpdatedAt: now}
}

// endTask marks t ended with status, as of now.
func (s *Service) endTask(t *Task, status, message string) {
	t.Status, t.Message = status, message
	t.ExpiresAt = s.now().Add(taskTTL)
	if status == imagestate.TaskSuccess {
		t.Result, _ = json.Marshal(map[string]any{"image_id": t.ImageID})
	}
}

// expireTasks deletes the tasks whose expiry has passed.
func (s *Service) expireTasks(ctx context.Context) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return
	}
	now := s.now()
	var ids []string
	for _, t := range store.All[Task](tx, imagestate.TaskTable, "id") {
		if t.Done() && !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now) {
			ids = append(ids, t.ID)
		}
		if len(ids) == 1000 {
			break
		}
	}
	if len(ids) == 0 {
		return
	}
	if _, err := s.cfg.Repl.Propose(ctx, imagestate.CmdTaskExpire, imagestate.TaskExpireCmd{IDs: ids, At: now}); err != nil {
		s.log.Warn("delete expired image tasks", "err", err)
	}
}

// createTask is POST /v2/tasks, Glance's older import (type "import"):
// a new image with input.image_properties, its data fetched from
// input.import_from as web-download fetches it (the same filter, the
// same task bookkeeping). Admin only, as Glance's default policy.
func (s *Service) createTask(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Type  string `json:"type"`
		Input *struct {
			ImportFrom       string     `json:"import_from"`
			ImportFromFormat string     `json:"import_from_format"`
			ImageProperties  api.Object `json:"image_properties"`
		} `json:"input"`
	}
	raw, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	if err := remarshal(raw, &body); err != nil {
		return badRequest("Malformed task: %v", err)
	}
	switch {
	case body.Type != "import":
		return badRequest("Invalid type value: %s. Tasks of type import can be created.", body.Type)
	case body.Input == nil || body.Input.ImportFrom == "" || body.Input.ImportFromFormat == "" || body.Input.ImageProperties == nil:
		return badRequest("Input for an import task requires import_from, import_from_format and image_properties.")
	}
	if err := s.checkImportURI(body.Input.ImportFrom); err != nil {
		return err
	}
	props := body.Input.ImageProperties
	if _, ok := props["disk_format"]; !ok {
		props["disk_format"] = body.Input.ImportFromFormat
	}
	if _, ok := props["container_format"]; !ok {
		props["container_format"] = "bare"
	}
	p := principal(r)
	img, err := s.createFrom(r.Context(), p, props)
	if err != nil {
		return err
	}
	input, _ := json.Marshal(raw["input"])
	now := s.now()
	task := Task{ID: api.NewUUID(), Type: "import", Status: imagestate.TaskPending, ImageID: img.ID, UserID: p.UserID,
		Request: api.RequestID(r.Context()), Input: input, CreatedAt: now, UpdatedAt: now}
	task, err = s.startWebDownload(r, task, func(*Image) error { return nil }, body.Input.ImportFrom)
	if err != nil {
		if api.Rejected(err) {
			// Nothing started: the image made for it is not wanted.
			if _, derr := s.cfg.Repl.Propose(r.Context(), imagestate.CmdDelete, imagestate.DeleteCmd{ID: img.ID, Revision: img.Revision}); derr != nil {
				s.log.Warn("delete the image of a task that did not start", "image", img.ID, "err", derr)
			}
		}
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v2/tasks/"+task.ID)
	api.JSON(w, http.StatusCreated, taskView(&task, true))
	return nil
}
