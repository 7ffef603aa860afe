package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

type row struct{ ID string }

func TestReadWatchesTheTablesGiven(t *testing.T) {
	table := func(name string) *memdb.TableSchema {
		return &memdb.TableSchema{Name: name, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}}
	}
	db, err := memdb.NewMemDB(&memdb.DBSchema{Tables: map[string]*memdb.TableSchema{"a": table("a"), "b": table("b")}})
	if err != nil {
		t.Fatal(err)
	}
	state := func(context.Context) (*memdb.Txn, error) { return db.Txn(false), nil }
	write := func(tbl string) {
		w := db.Txn(true)
		if err := w.Insert(tbl, &row{ID: tbl}); err != nil {
			t.Fatal(err)
		}
		w.Commit()
	}

	_, ws, err := Read(context.Background(), state, []string{"a", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	write("b")
	if !ws.Watch(time.After(50 * time.Millisecond)) {
		t.Fatal("a write to a table not asked for fired the watch")
	}
	write("a")
	if ws.Watch(time.After(5 * time.Second)) {
		t.Fatal("a write to a watched table did not fire the watch")
	}

	down := errors.New("no leader")
	if _, _, err := Read(context.Background(), func(context.Context) (*memdb.Txn, error) { return nil, down }, nil); !errors.Is(err, down) {
		t.Fatalf("state error: %v", err)
	}
}
