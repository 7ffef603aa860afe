package api

import "strconv"

// Reasons words why a value fails Input's own checks. Input uses the
// jsonschema wording Nova and Keystone answer with ("5 is not of type
// 'string'"); a Wording that also implements Reasons words them as its
// service does instead (Neutron's "'x' cannot be converted to boolean").
type Reasons interface {
	// NotString: v, the value of a string field or of an item of a list
	// of strings, is not a string.
	NotString(v any) string
	// TooLong: s has more than max characters.
	TooLong(s string, max int) string
	// NotBool: v is not a boolean.
	NotBool(v any) string
}

// schemaReasons is Input's own wording.
type schemaReasons struct{}

func (schemaReasons) NotString(v any) string { return Text(v) + " is not of type 'string'" }

func (schemaReasons) TooLong(s string, max int) string {
	return "'" + s + "' is too long (at most " + strconv.Itoa(max) + " characters)"
}

func (schemaReasons) NotBool(v any) string { return "'" + Text(v) + "' is not a boolean" }

// reasons is the wording of in's own checks.
func (in *Input) reasons() Reasons {
	if r, ok := in.Word.(Reasons); ok {
		return r
	}
	return schemaReasons{}
}
