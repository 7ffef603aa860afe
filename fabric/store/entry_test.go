package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// decodeSlow is decodeEntry without parseEntry: what every entry decoded
// to before it.
func decodeSlow(data []byte) ([]Command, bool, error) {
	if len(data) > 0 && data[0] == batchMarker {
		var cmds []Command
		err := json.Unmarshal(data[1:], &cmds)
		return cmds, true, err
	}
	var c Command
	err := json.Unmarshal(data, &c)
	return []Command{c}, false, err
}

func TestParseEntryDecodesAsJSONDoes(t *testing.T) {
	origin := &Origin{Time: time.Date(2026, 12, 6, 1, 2, 3, 456, time.UTC), User: "u1", Project: "p\"1", RequestID: "req-1"}
	bodies := []string{
		`{"row":{"id":"a","data":"AAEC/+=="}}`,
		`{"s":"a \"quoted\" } ] { [ string","t":"\\\\","u":"\\\\\"","n":[1,{"x":[]}]}`,
		`[1,2,"]"]`,
		`{"name":"naïve ✓"}`,
		`{}`,
	}
	var entries [][]byte
	for _, b := range bodies {
		for _, o := range []*Origin{nil, origin} {
			c := Command{Type: "storage.object.put_inline", Body: json.RawMessage(b), Origin: o}
			one, err := encodeEntry([]Command{c})
			if err != nil {
				t.Fatal(err)
			}
			two, err := encodeEntry([]Command{c, {Type: "note.put"}, c})
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, one, two)
		}
	}
	// Written by hand: what json.Marshal never writes falls back.
	entries = append(entries,
		[]byte(`{"type":"x"}`),
		[]byte(`{}`),
		[]byte(`{ "type": "x", "body": {} }`),
		[]byte(`{"type":"a\u0062","body":{"k":1}}`),
		[]byte(`{"type":"x","body":{"k":1},"extra":2}`),
		[]byte(`{"body":{"k":1},"type":"x"}`),
		[]byte(`{"type":"x","body":"string"}`),
		[]byte(`{"type":"x","body":null,"origin":null}`),
		[]byte(`B[{"type":"x"},{"type":"y","body":[]}]`),
	)
	for _, e := range entries {
		want, wantBatch, err := decodeSlow(e)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		got, batch, err := decodeEntry(e)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if batch != wantBatch || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v (batch %v)\nwant %+v (batch %v)", e, got, batch, want, wantBatch)
		}
	}
}

func TestParseEntryLeavesMalformedEntriesToJSON(t *testing.T) {
	for _, e := range []string{
		``, `{`, `{"type":"x"`, `{"type":"x","body":{"k":"}`, `{"type":"x"}}`, `{"type":"x"} x`,
		`B`, `B[`, `B[]`, `B[{"type":"x"}`, `B[{"type":"x"}]]`, `{"type":"x","origin":{"time":1}}`,
	} {
		if _, _, ok := parseEntry([]byte(e)); ok {
			t.Errorf("parseEntry accepted %q", e)
		}
		if _, _, err := decodeEntry([]byte(e)); err == nil {
			t.Errorf("decodeEntry accepted %q", e)
		}
	}
}

func BenchmarkDecodeEntry(b *testing.B) {
	data := make([]byte, 4<<10)
	body, _ := json.Marshal(map[string]any{"row": map[string]any{"id": "p/c/o", "data": data}, "budget": 1 << 26})
	e, _ := encodeEntry([]Command{{Type: "storage.object.put_inline", Body: body, Origin: &Origin{Time: time.Now(), User: "u"}}})
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			decodeEntry(e)
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			decodeSlow(e)
		}
	})
}
