package api

import "net/http"

// WSGIFault is the key of the error body OpenStack's wsgi services (Nova,
// Cinder) write for a status when the error names no fault of its own.
func WSGIFault(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "badRequest"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "itemNotFound"
	case http.StatusMethodNotAllowed:
		return "badMethod"
	case http.StatusNotAcceptable:
		return "notAcceptable"
	case http.StatusConflict:
		return "conflictingRequest"
	case http.StatusRequestEntityTooLarge:
		return "overLimit"
	case http.StatusNotImplemented:
		return "notImplemented"
	case http.StatusServiceUnavailable:
		return "serviceUnavailable"
	}
	return "computeFault"
}

// WriteWSGIError writes a wsgi service's error body,
// {"<fault>": {"code", "message"}}; a 401 comes in keystonemiddleware's
// format, which answers it in front of those services.
func WriteWSGIError(w http.ResponseWriter, status int, fault, msg string) {
	if status == http.StatusUnauthorized {
		JSON(w, status, map[string]any{"error": map[string]any{"code": status, "title": "Unauthorized", "message": msg}})
		return
	}
	JSON(w, status, map[string]any{fault: map[string]any{"code": status, "message": msg}})
}
