package object

import (
	"errors"
	"go/build"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

// The object store is a domain layer: it returns domain and store errors,
// and the front ends (Swift, S3, image) turn them into HTTP in their own
// formats. Importing the HTTP kit would let HTTP types leak back in.
func TestDomainLayerImportsNoHTTPKit(t *testing.T) {
	const module = "github.com/rackstack/rackstack/"
	seen := map[string]bool{}
	var walk func(path, dir string)
	walk = func(path, dir string) {
		if seen[path] {
			return
		}
		seen[path] = true
		var pkg *build.Package
		var err error
		if dir != "" {
			pkg, err = build.ImportDir(dir, 0)
		} else {
			pkg, err = build.Import(path, ".", 0)
		}
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		for _, imp := range pkg.Imports {
			if imp == module+"fabric/api" || strings.HasPrefix(imp, module+"fabric/api/") {
				t.Errorf("%s imports %s", path, imp)
			}
			if strings.HasPrefix(imp, module) {
				walk(imp, "")
			}
		}
	}
	walk(module+"storage/object", ".")
}

func TestBadNamesAreInvalidAndNameTheField(t *testing.T) {
	err := CheckName("object", "", 10)
	var ie *InvalidError
	if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &ie) || ie.Field != "object" {
		t.Fatalf("empty name: %#v", err)
	}
	if err := CheckName("container", "a\x00b", 10); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("name with NUL: %v", err)
	}
}
