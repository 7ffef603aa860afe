package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/swift"
)

// Every service's schema must fit in one state: no table or command type
// registered twice.
func TestSchemasBuildOneState(t *testing.T) {
	if _, err := store.NewState(schemas()...); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogListsNeutron(t *testing.T) {
	for _, s := range catalog(&options{S3Listen: "off"}) {
		if s.Type == "network" {
			if s.Name != "neutron" || s.Path != "/network" {
				t.Fatalf("network entry %+v", s)
			}
			return
		}
	}
	t.Fatal("no network service in the catalog")
}

func TestSwiftInfoAtRoot(t *testing.T) {
	r := chi.NewRouter()
	mountSwift(r, &swift.Handler{})
	for _, path := range []string{"/info", "/object/info"} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var info map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &info); rec.Code != http.StatusOK || err != nil || info["swift"] == nil {
			t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
	}
}

// cinderclient finds Cinder as volumev3, openstacksdk as block-storage;
// both at the project's v3 URL.
func TestCatalogListsCinderUnderBothTypes(t *testing.T) {
	found := map[string]bool{}
	for _, s := range catalog(&options{S3Listen: "off"}) {
		if s.Type == "volumev3" || s.Type == "block-storage" {
			if s.Path != "/volume/v3/{project_id}" {
				t.Errorf("%s entry %+v", s.Type, s)
			}
			found[s.Type] = true
		}
	}
	if !found["volumev3"] || !found["block-storage"] {
		t.Fatalf("catalog has %v of volumev3 and block-storage", found)
	}
}
