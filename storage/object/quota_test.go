package object

import (
	"bytes"
	"errors"
	"testing"
)

// The object service holds every write to its container's quotas,
// inline or in a blob, whatever front end makes it, before storing a
// byte.
func TestContainerQuotaHoldsEveryWrite(t *testing.T) {
	f := newFixture(t, 3)
	if _, err := f.svc.PutContainer(f.ctx, Container{Project: "p", Name: "c", Meta: map[string]string{"quota-bytes": "70000", "quota-count": "2"}}, true); err != nil {
		t.Fatal(err)
	}
	f.put("p", "c", "small", random(100))
	put := func(name string, data []byte, size int64) error {
		_, err := f.svc.Put(f.ctx, "p", "c", name, bytes.NewReader(data), PutOptions{Size: size})
		return err
	}
	if err := put("big", random(70_000), 70_000); !errors.Is(err, ErrContainerQuota) {
		t.Fatalf("a blob past quota-bytes: %v", err)
	}
	f.put("p", "c", "second", random(60_000))
	if err := put("third", random(10), 10); !errors.Is(err, ErrContainerQuota) {
		t.Fatalf("an inline object past quota-count: %v", err)
	}
	if err := put("chunked", random(10), -1); !errors.Is(err, ErrContainerQuota) {
		t.Fatalf("a chunked object past quota-count: %v", err)
	}
	f.container("p", "d")
	if _, err := f.svc.Copy(f.ctx, f.put("p", "d", "src", random(10)), "p", "c", "copy", Attrs{}); !errors.Is(err, ErrContainerQuota) {
		t.Fatalf("a copy past quota-count: %v", err)
	}
	c, _ := f.svc.Container(f.ctx, "p", "c")
	if c.Objects != 2 || c.Bytes != 60_100 {
		t.Fatalf("container holds %d objects, %d bytes after the refusals", c.Objects, c.Bytes)
	}
}
