package store

import (
	"context"
	"encoding/json"

	memdb "github.com/hashicorp/go-memdb"
)

// Helpers every service's schema and handlers use.

// Get returns the row of table whose id is id, or nil.
func Get[T any](tx *memdb.Txn, table, id string) *T {
	raw, _ := tx.First(table, "id", id)
	if raw == nil {
		return nil
	}
	return raw.(*T)
}

// All returns the rows of table that index matches with args, in index
// order.
func All[T any](tx *memdb.Txn, table, index string, args ...any) []*T {
	it, err := tx.Get(table, index, args...)
	if err != nil {
		return nil
	}
	var out []*T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*T))
	}
	return out
}

// DecodeBody decodes a command body; a malformed one is ErrInvalid.
func DecodeBody(body json.RawMessage, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return Invalidf("decode command: %v", err)
	}
	return nil
}

// StringIndex indexes a string field.
func StringIndex(name, field string, unique bool) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, Unique: unique, Indexer: &memdb.StringFieldIndex{Field: field}}
}

// NewTable describes a table whose rows (of row's type) have a unique
// string ID, plus extra indexes.
func NewTable(name string, row any, extra ...*memdb.IndexSchema) Table {
	idx := map[string]*memdb.IndexSchema{"id": StringIndex("id", "ID", true)}
	for _, e := range extra {
		idx[e.Name] = e
	}
	return Table{Schema: &memdb.TableSchema{Name: name, Indexes: idx}, Row: row}
}

// MemDB is a bare database with the tables of schemas, no FSM in front:
// for tests of code that only reads the state (node agents), which write
// the rows they need straight into it.
func MemDB(schemas ...Schema) (*memdb.MemDB, error) {
	tables := map[string]*memdb.TableSchema{}
	for _, sc := range schemas {
		for _, t := range sc.Tables {
			tables[t.Schema.Name] = t.Schema
		}
	}
	return memdb.NewMemDB(&memdb.DBSchema{Tables: tables})
}

// MemState is a bare state for the tests of node agents: the tables of
// schemas without the FSM, rows put directly, read as an agent reads.
type MemState struct {
	DB *memdb.MemDB
	tb TB
}

// NewMemState builds an empty MemState over the tables of schemas.
func NewMemState(tb TB, schemas ...Schema) *MemState {
	db, err := MemDB(schemas...)
	if err != nil {
		tb.Fatalf("build state: %v", err)
	}
	return &MemState{DB: db, tb: tb}
}

// Put inserts (or replaces) row in table.
func (m *MemState) Put(table string, row any) {
	m.tb.Helper()
	tx := m.DB.Txn(true)
	if err := tx.Insert(table, row); err != nil {
		m.tb.Fatalf("put %s: %v", table, err)
	}
	tx.Commit()
}

// Read is a read of the current state, shaped as an agent's State func.
func (m *MemState) Read(context.Context) (*memdb.Txn, error) { return m.DB.Txn(false), nil }
