// Package api holds what every app's HTTP edge shares: the one error type with
// stable codes, the table that maps those codes to HTTP statuses, and strict
// JSON decoding and encoding.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// Code is a stable, machine-readable error code. Clients switch on it; the
// message beside it is for humans and may change.
type Code string

// The error codes of the public API. Each maps to one HTTP status in statusOf.
const (
	CodeInvalidRequest        Code = "invalid_request"
	CodeBodyTooLarge          Code = "body_too_large"
	CodeNotFound              Code = "not_found"
	CodeUnauthorized          Code = "unauthorized"
	CodeForbidden             Code = "forbidden"
	CodeMethodNotAllowed      Code = "method_not_allowed"
	CodeConflict              Code = "conflict"
	CodeEmailTaken            Code = "email_taken"
	CodeInsufficientStock     Code = "insufficient_stock"
	CodeInvalidState          Code = "invalid_state"
	CodeUnprocessable         Code = "unprocessable"
	CodeUnknownUser           Code = "unknown_user"
	CodeUnknownProduct        Code = "unknown_product"
	CodeUnknownOrder          Code = "unknown_order"
	CodeOrderAlreadyPaid      Code = "order_already_paid"
	CodeAmountMismatch        Code = "amount_mismatch"
	CodeIdempotencyKeyReused  Code = "idempotency_key_reused"
	CodeRequestInFlight       Code = "request_in_flight"
	CodeDependencyUnavailable Code = "dependency_unavailable"
	CodeInternal              Code = "internal"
)

var statusOf = map[Code]int{
	CodeInvalidRequest:        http.StatusBadRequest,
	CodeBodyTooLarge:          http.StatusBadRequest,
	CodeNotFound:              http.StatusNotFound,
	CodeUnauthorized:          http.StatusUnauthorized,
	CodeForbidden:             http.StatusForbidden,
	CodeMethodNotAllowed:      http.StatusMethodNotAllowed,
	CodeConflict:              http.StatusConflict,
	CodeEmailTaken:            http.StatusConflict,
	CodeInsufficientStock:     http.StatusConflict,
	CodeInvalidState:          http.StatusConflict,
	CodeUnprocessable:         http.StatusUnprocessableEntity,
	CodeUnknownUser:           http.StatusUnprocessableEntity,
	CodeUnknownProduct:        http.StatusUnprocessableEntity,
	CodeUnknownOrder:          http.StatusUnprocessableEntity,
	CodeOrderAlreadyPaid:      http.StatusUnprocessableEntity,
	CodeAmountMismatch:        http.StatusUnprocessableEntity,
	CodeIdempotencyKeyReused:  http.StatusUnprocessableEntity,
	CodeRequestInFlight:       http.StatusConflict,
	CodeDependencyUnavailable: http.StatusServiceUnavailable,
	CodeInternal:              http.StatusInternalServerError,
}

// Status returns the HTTP status for a code; unknown codes are internal errors.
func (c Code) Status() int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is the error that crosses the HTTP edge. Domain code returns it for
// anything a client may be told about; every other error becomes CodeInternal
// and its details stay in the log.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON document every error response carries:
// {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrUnavailable marks an error caused by a dependency that did not answer: a
// state store, a broker, another app or its sidecar. Clients see 503.
var ErrUnavailable = errors.New("dependency unavailable")

// WriteError writes err as the JSON error body. Errors that are not *Error are
// logged with their details and reported to the client without them: as 503
// when a dependency failed, as 500 otherwise.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, ErrUnavailable):
		log.WarnContext(r.Context(), "dependency unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Code: CodeDependencyUnavailable, Message: "a service this request needs is unavailable; try again later"}
	default:
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Code: CodeInternal, Message: "internal error"}
	}
	telemetry.RecordErrorCode(r.Context(), string(e.Code)) // counted by code in the request metrics
	WriteJSON(w, e.Code.Status(), ErrorBody{Error: *e})
}

// MaxBodyBytes bounds every request body the apps read.
const MaxBodyBytes = 64 << 10

// MaxJSONDepth bounds how deeply a request body may nest objects and arrays.
// No request of the API nests past 2; the bound keeps a hostile body from
// making the decoder recurse thousands of levels.
const MaxJSONDepth = 16

// Decode reads one JSON object from the request body into v, strictly: the
// body must be at most MaxBodyBytes, must not name fields v does not have, and
// must hold exactly one value. Its errors are *Error values fit for the client.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return decodeError(err)
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] != '{' && json.Valid(trimmed) {
		return Errorf(CodeInvalidRequest, "request body must be a JSON object")
	}
	if depth := jsonDepth(body); depth > MaxJSONDepth {
		return Errorf(CodeInvalidRequest, "request body nests deeper than %d levels", MaxJSONDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return Errorf(CodeInvalidRequest, "request body must hold a single JSON object")
	}
	return nil
}

// jsonDepth returns the deepest nesting of objects and arrays in data,
// skipping string contents; it does not validate.
func jsonDepth(data []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func decodeError(err error) error {
	var (
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooLarge):
		return Errorf(CodeBodyTooLarge, "request body is larger than %d bytes", tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return Errorf(CodeInvalidRequest, "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(CodeInvalidRequest, "request body is not complete JSON")
	case errors.As(err, &syntax):
		return Errorf(CodeInvalidRequest, "request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return Errorf(CodeInvalidRequest, "field %q must be a %s", typeErr.Field, typeErr.Type)
		}
		return Errorf(CodeInvalidRequest, "request body must be a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return Errorf(CodeInvalidRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return Errorf(CodeInvalidRequest, "request body is not valid JSON")
	}
}

// NotFoundHandler answers unknown routes with the JSON error body.
func NotFoundHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusNotFound, ErrorBody{Error: Error{Code: CodeNotFound, Message: "no route for " + r.URL.Path}})
	})
}

// MethodNotAllowedHandler answers a known route called with the wrong verb.
func MethodNotAllowedHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: Error{Code: CodeMethodNotAllowed, Message: r.Method + " is not allowed on " + r.URL.Path}})
	})
}

// ValidID reports whether s can be a resource id: 1 to 64 letters, digits,
// '-' or '_'. Anything else never names a stored resource, and keeps ids
// safe as state keys (Dapr rejects keys holding "||").
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// InternalAnswer is the body of every answer on an /internal/ route: the
// routes one service calls on another through Dapr. Exactly one field is set.
//
// Dapr's circuit breakers count every answer outside 200–399 as a failure of
// the callee, so an expected refusal (unknown user, not enough stock) sent as
// a 4xx would open the caller's breaker and cut a healthy service off. On
// internal routes a refusal is a 200 carrying the error instead; 5xx still
// means the callee failed, and trips the breaker as it should. Public routes,
// reached through the gateway (whose sidecar has no breaker), keep ordinary
// 4xx statuses.
type InternalAnswer struct {
	Result  json.RawMessage `json:"result,omitempty"`
	Refusal *Error          `json:"refusal,omitempty"`
}

// WriteInternal answers an internal route: result on success, a refusal for
// an *Error with a 4xx status, and an ordinary error answer otherwise.
func WriteInternal(w http.ResponseWriter, r *http.Request, log *slog.Logger, result any, err error) {
	var e *Error
	switch {
	case err == nil:
		data, mErr := json.Marshal(result)
		if mErr != nil {
			WriteError(w, r, log, mErr)
			return
		}
		WriteJSON(w, http.StatusOK, InternalAnswer{Result: data})
	case errors.As(err, &e) && e.Code.Status() < 500:
		WriteJSON(w, http.StatusOK, InternalAnswer{Refusal: e})
	default:
		WriteError(w, r, log, err)
	}
}
