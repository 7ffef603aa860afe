package store

import (
	"bytes"
	"encoding/json"
)

// parseEntry reads an entry as encodeEntry writes it (json.Marshal of a
// Command, or the batch marker and an array of them: compact, fields in
// struct order, ASCII type names) without json.Unmarshal, which scans
// every byte of the entry twice (once to validate it, once to decode it)
// only to copy each body out whole; handlers decode the body themselves,
// which scans it again. Replaying the log after a restart spent a quarter
// of the FSM's time there, the bodies of small inline objects being
// mostly base64. ok is false for anything it was not written to expect
// (whitespace, escapes in the type, unknown fields, a body that is not an
// object or array), and the caller then decodes the entry as before.
//
// A body is delimited, not validated: the handler's DecodeBody validates
// it as it decodes it.
func parseEntry(data []byte) (cmds []Command, batch bool, ok bool) {
	if len(data) > 0 && data[0] == batchMarker {
		i := 1
		if i >= len(data) || data[i] != '[' {
			return nil, true, false
		}
		i++
		for {
			c, next, ok := parseCommand(data, i)
			if !ok {
				return nil, true, false
			}
			cmds = append(cmds, c)
			i = next
			if i >= len(data) {
				return nil, true, false
			}
			if data[i] == ']' {
				i++
				break
			}
			if data[i] != ',' {
				return nil, true, false
			}
			i++
		}
		return cmds, true, i == len(data)
	}
	c, next, ok := parseCommand(data, 0)
	if !ok || next != len(data) {
		return nil, false, false
	}
	return []Command{c}, false, true
}

// parseCommand reads the Command object starting at data[i] and returns
// it with the index just past it.
func parseCommand(data []byte, i int) (c Command, next int, ok bool) {
	if i >= len(data) || data[i] != '{' {
		return c, 0, false
	}
	i++
	if i < len(data) && data[i] == '}' {
		return c, i + 1, true
	}
	for {
		key, j, ok := plainString(data, i)
		if !ok || j >= len(data) || data[j] != ':' {
			return c, 0, false
		}
		i = j + 1
		switch key {
		case "type":
			s, j, ok := plainString(data, i)
			if !ok {
				return c, 0, false
			}
			c.Type, i = s, j
		case "body":
			if i >= len(data) || (data[i] != '{' && data[i] != '[') {
				return c, 0, false
			}
			j, ok := valueEnd(data, i)
			if !ok {
				return c, 0, false
			}
			// A copy, as json.Unmarshal makes: the handler and the
			// observers may keep the body past the log entry's buffer.
			c.Body = bytes.Clone(data[i:j])
			i = j
		case "origin":
			if i >= len(data) || data[i] != '{' {
				return c, 0, false
			}
			j, ok := valueEnd(data, i)
			if !ok {
				return c, 0, false
			}
			var o Origin
			if json.Unmarshal(data[i:j], &o) != nil {
				return c, 0, false
			}
			c.Origin, i = &o, j
		default:
			return c, 0, false
		}
		if i >= len(data) {
			return c, 0, false
		}
		switch data[i] {
		case ',':
			i++
		case '}':
			return c, i + 1, true
		default:
			return c, 0, false
		}
	}
}

// plainString reads a JSON string at data[i] that needs no decoding
// (printable ASCII, no escapes) and returns it with the index past its
// closing quote.
func plainString(data []byte, i int) (string, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch b := data[j]; {
		case b == '"':
			return string(data[i+1 : j]), j + 1, true
		case b == '\\' || b < 0x20 || b >= 0x80:
			return "", 0, false
		}
	}
	return "", 0, false
}

// valueEnd returns the index just past the JSON object or array starting
// at data[i], matching brackets outside strings.
func valueEnd(data []byte, i int) (int, bool) {
	depth := 0
	for i < len(data) {
		switch data[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case '"':
			// Skip the string, to the first quote not escaped (one after
			// an even run of backslashes). Most of a body's bytes are in
			// strings (base64 data), which IndexByte crosses quickly.
			for {
				k := bytes.IndexByte(data[i+1:], '"')
				if k < 0 {
					return 0, false
				}
				i += 1 + k
				bs := 0
				for data[i-1-bs] == '\\' {
					bs++
				}
				if bs%2 == 0 {
					break
				}
			}
		}
		i++
	}
	return 0, false
}
