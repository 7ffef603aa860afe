package image

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Members: the owner of a shared image offers it to other projects; each
// accepts (it then appears in their listings) or rejects it.

func memberView(img *Image, m *Member) map[string]any {
	return map[string]any{
		"member_id": m.Project, "image_id": img.ID, "status": m.Status,
		"created_at": timeText(m.CreatedAt), "updated_at": timeText(m.UpdatedAt), "schema": "/v2/schemas/member",
	}
}

func memberNotFound(img *Image, member string) error {
	return store.NotFoundf("%s is not a member of image %s", member, img.ID)
}

// sharedImage reads the image of a member request: 404 if p cannot see
// it, 403 if it is not shared.
func (s *Service) sharedImage(r *http.Request) (*Image, error) {
	img, err := s.find(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return nil, err
	}
	if img.Visibility != VisibilityShared {
		return nil, forbidden("Only shared images have members.")
	}
	return img, nil
}

func (s *Service) listMembers(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	img, err := s.sharedImage(r)
	if err != nil {
		return err
	}
	out := []any{}
	for i := range img.Members {
		m := &img.Members[i]
		// A consumer sees only its own membership.
		if p.CanRead(img.Owner) || m.Project == p.ProjectID {
			out = append(out, memberView(img, m))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"members": out, "schema": "/v2/schemas/members"})
	return nil
}

func (s *Service) showMember(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	img, err := s.sharedImage(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "member")
	m := img.MemberOf(id)
	if m == nil || !p.CanRead(img.Owner) && id != p.ProjectID {
		return memberNotFound(img, id)
	}
	api.JSON(w, http.StatusOK, memberView(img, m))
	return nil
}

func (s *Service) createMember(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Member *string `json:"member"`
	}
	if err := api.RequireUTF8(r); err != nil {
		return err
	}
	if err := api.Decode(r, &body); err != nil {
		return err
	}
	if body.Member == nil || *body.Member == "" || len(*body.Member) > 255 {
		return badRequest("Member to be added not specified: the body must be {\"member\": \"<project id>\"}.")
	}
	id := *body.Member
	if err := checkText("member", id); err != nil {
		return err
	}
	var added Member
	img, err := s.change(r, "add_member", func(img *Image) error {
		if img.Visibility != VisibilityShared {
			return forbidden("Only shared images have members.")
		}
		if img.MemberOf(id) != nil {
			return conflict("Member %s already associated with image %s.", id, img.ID)
		}
		if len(img.Members) >= maxMembers {
			return tooLarge("Maximum number of image members exceeded: attempted %d, maximum %d.", len(img.Members)+1, maxMembers)
		}
		now := s.now()
		added = Member{Project: id, Status: MemberPending, CreatedAt: now, UpdatedAt: now}
		img.Members = append(img.Members, added)
		slices.SortFunc(img.Members, func(a, b Member) int { return cmp.Compare(a.Project, b.Project) })
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, memberView(img, &added))
	return nil
}

// updateMember records a consumer's answer; only the consumer gives it.
func (s *Service) updateMember(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	var body struct {
		Status *string `json:"status"`
	}
	if err := api.RequireUTF8(r); err != nil {
		return err
	}
	if err := api.Decode(r, &body); err != nil {
		return err
	}
	if body.Status == nil || (*body.Status != MemberPending && *body.Status != MemberAccepted && *body.Status != MemberRejected) {
		return badRequest("Invalid status: the status of a member is one of pending, accepted, rejected.")
	}
	id := chi.URLParam(r, "member")
	var updated Member
	img, err := s.mutate(r.Context(), chi.URLParam(r, "id"), func(img *Image) error {
		if !visible(p, img) {
			return notFound(img.ID)
		}
		if img.Visibility != VisibilityShared {
			return forbidden("Only shared images have members.")
		}
		m := img.MemberOf(id)
		if m == nil {
			return memberNotFound(img, id)
		}
		if !p.IsAdmin() && (id != p.ProjectID || !p.HasRole("member")) {
			return forbidden("You are not permitted to modify the status of member %s of image %s.", id, img.ID)
		}
		m.Status, m.UpdatedAt = *body.Status, s.now()
		updated = *m
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, memberView(img, &updated))
	return nil
}

func (s *Service) deleteMember(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	id := chi.URLParam(r, "member")
	_, err := s.mutate(r.Context(), chi.URLParam(r, "id"), func(img *Image) error {
		if !visible(p, img) {
			return notFound(img.ID)
		}
		if img.Visibility != VisibilityShared {
			return forbidden("Only shared images have members.")
		}
		i := slices.IndexFunc(img.Members, func(m Member) bool { return m.Project == id })
		if i < 0 || !p.CanRead(img.Owner) && id != p.ProjectID {
			return memberNotFound(img, id)
		}
		if err := writable(p, img, "delete_member"); err != nil {
			return err
		}
		img.Members = slices.Delete(img.Members, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
