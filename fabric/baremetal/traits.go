package baremetal

import (
	"net/http"
	"regexp"
	"slices"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
)

// Traits (1.37) are the node's placement traits: standard ones
// (HW_CPU_X86_VMX) and CUSTOM_ ones, matched by bare-metal flavors'
// trait:<NAME>=required.

const maxTraits = 50

var traitRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,254}$`)

func checkTrait(t string) error {
	if !traitRE.MatchString(t) {
		return wording{}.BadField("traits", t, "A trait must be at most 255 upper-case letters, digits and underscores, such as CUSTOM_GPU or HW_CPU_X86_VMX.")
	}
	return nil
}

func (s *Service) listTraits(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	traits := n.Traits
	if traits == nil {
		traits = []string{}
	}
	api.JSON(w, http.StatusOK, map[string]any{"traits": traits})
	return nil
}

func (s *Service) setTraits(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := api.NewInput(body, wording{})
	if !in.Has("traits") {
		return wording{}.Missing("traits")
	}
	traits := in.Strs("traits")
	if in.Err != nil {
		return in.Err
	}
	return s.changeTraits(w, r, func(cur []string) ([]string, error) { return traits, nil })
}

func (s *Service) addTrait(w http.ResponseWriter, r *http.Request) error {
	t := chi.URLParam(r, "trait")
	return s.changeTraits(w, r, func(cur []string) ([]string, error) {
		if slices.Contains(cur, t) {
			return cur, nil
		}
		return append(cur, t), nil
	})
}

func (s *Service) removeTraits(w http.ResponseWriter, r *http.Request) error {
	return s.changeTraits(w, r, func([]string) ([]string, error) { return nil, nil })
}

func (s *Service) removeTrait(w http.ResponseWriter, r *http.Request) error {
	t := chi.URLParam(r, "trait")
	return s.changeTraits(w, r, func(cur []string) ([]string, error) {
		i := slices.Index(cur, t)
		if i < 0 {
			return nil, notFoundf("Node %s doesn't have a trait '%s'", chi.URLParam(r, "node"), t)
		}
		return slices.Delete(cur, i, i+1), nil
	})
}

// changeTraits stores the traits change computes from the node's.
func (s *Service) changeTraits(w http.ResponseWriter, r *http.Request, change func(cur []string) ([]string, error)) error {
	_, err := s.mutateNode(r.Context(), chi.URLParam(r, "node"), func(_ *memdb.Txn, n *bmstate.Node) error {
		traits, err := change(slices.Clone(n.Traits))
		if err != nil {
			return err
		}
		for _, t := range traits {
			if err := checkTrait(t); err != nil {
				return err
			}
		}
		if len(traits) > maxTraits {
			return badRequestf("Could not add traits to node %s because the node would have %d traits; at most %d are allowed.", n.ID, len(traits), maxTraits)
		}
		slices.Sort(traits)
		n.Traits = slices.Compact(traits)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
