package volume

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// User messages (3.3): what an asynchronous operation that failed tells
// its user, worded and numbered as Cinder's message_field: the event id
// is VOLUME_<resource>_<action>_<detail>, the text "<action>:<detail>".
// They are kept for Cinder's default message_ttl, 30 days.
const messageTTL = 30 * 24 * time.Hour

type msgAction struct{ id, text string }

var (
	actScheduleVolume = msgAction{"001", "schedule allocate volume"}
	actCopyImage      = msgAction{"005", "copy image to volume"}
	actExtendVolume   = msgAction{"007", "extend volume"}
	actCreateFromData = msgAction{"008", "create volume from backend storage"}
)

type msgDetail struct{ id, text string }

var (
	detUnknown      = msgDetail{"001", "An unknown error occurred."}
	detNoBackend    = msgDetail{"003", "Could not find any available weighted backend."}
	detDriverExtend = msgDetail{"010", "Volume Driver failed to extend volume."}
)

// tellUser records a user message about volume v's failed action.
// Failing to record it is logged: the operation's own outcome stands.
func (s *Service) tellUser(ctx context.Context, v *volstate.Volume, a msgAction, d msgDetail) {
	now := s.now()
	req := api.RequestID(ctx)
	if req == "" {
		req = "req-" + api.NewUUID()
	}
	m := volstate.Message{ID: api.NewUUID(), Project: v.Project, RequestID: req, EventID: "VOLUME_VOLUME_" + a.id + "_" + d.id,
		UserMessage: a.text + ":" + d.text, Level: "ERROR", ResourceType: "VOLUME", ResourceUUID: v.ID, CreatedAt: now, Expires: now.Add(messageTTL)}
	if _, err := s.cfg.Repl.Propose(context.WithoutCancel(ctx), volstate.CmdCreateMessage, volstate.CreateMessageCmd{Row: m, Now: now}); err != nil {
		s.log.Warn("volume: record a user message", "volume", v.ID, "event_id", m.EventID, "err", err)
	}
}

func needMessages(r *http.Request) error {
	if !atLeast(r, 3) {
		return &api.Error{Status: http.StatusNotFound, Msg: "The resource could not be found: user messages need microversion 3.3 or later."}
	}
	return nil
}

func (s *Service) messageView(r *http.Request, m *volstate.Message) api.View {
	return api.View{"id": m.ID, "request_id": m.RequestID, "event_id": m.EventID, "user_message": m.UserMessage,
		"message_level": m.Level, "resource_type": m.ResourceType, "resource_uuid": nullable(m.ResourceUUID),
		"created_at": timeText(m.CreatedAt), "guaranteed_until": timeText(m.Expires), "links": s.links(r, "messages", m.ID)}
}

// visibleMessages are the caller's project's messages not expired yet,
// every project's for an admin.
func (s *Service) visibleMessages(r *http.Request) ([]*volstate.Message, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	p, now := principal(r), s.now()
	var out []*volstate.Message
	for _, m := range store.All[volstate.Message](tx, volstate.MessageTable, "id") {
		if (m.Project == p.ProjectID || p.IsAdmin()) && now.Before(m.Expires) {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *Service) listMessages(w http.ResponseWriter, r *http.Request) error {
	if err := needMessages(r); err != nil {
		return err
	}
	ms, err := s.visibleMessages(r)
	if err != nil {
		return err
	}
	views := make([]api.View, 0, len(ms))
	for _, m := range ms {
		views = append(views, s.messageView(r, m))
	}
	return s.cinderListing("messages", []string{"id", "event_id", "created_at", "resource_type", "resource_uuid", "message_level", "request_id"}, nil).Write(w, sortParams(r), views)
}

func (s *Service) findMessage(r *http.Request) (*volstate.Message, error) {
	if err := needMessages(r); err != nil {
		return nil, err
	}
	ms, err := s.visibleMessages(r)
	if err != nil {
		return nil, err
	}
	id := chi.URLParam(r, "id")
	for _, m := range ms {
		if m.ID == id {
			return m, nil
		}
	}
	return nil, notFound("Message", id)
}

func (s *Service) showMessage(w http.ResponseWriter, r *http.Request) error {
	m, err := s.findMessage(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"message": s.messageView(r, m)})
	return nil
}

func (s *Service) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	m, err := s.findMessage(r)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Repl.Propose(r.Context(), volstate.CmdDeleteMessage, volstate.DeleteMessageCmd{ID: m.ID}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// createAction is the action a failed create of v was: a copy of its
// image, or the making of its blocks.
func createAction(v *volstate.Volume) msgAction {
	if v.ImageID != "" {
		return actCopyImage
	}
	return actCreateFromData
}

// createUnscheduled makes volume v in error, as Cinder does when its
// scheduler finds no back end for it, and tells its user why.
func (s *Service) createUnscheduled(w http.ResponseWriter, r *http.Request, p *api.Principal, v volstate.Volume, why string) error {
	v.Status, v.Reason = volstate.StatusError, why
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: v}, nil); err != nil {
		return err
	}
	s.tellUser(r.Context(), &v, actScheduleVolume, detNoBackend)
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusAccepted, map[string]any{"volume": changeView(s.volumeView(tx, r, p, &v))})
	return nil
}
