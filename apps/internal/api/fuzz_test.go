package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzRequest has the shapes of the apps' request types: strings, and
// pointers that tell a missing number from a zero. Extra takes any JSON
// value, so that nesting reaches the decoder.
type fuzzRequest struct {
	Name        string          `json:"name"`
	Email       string          `json:"email"`
	UserID      string          `json:"user_id"`
	ProductID   string          `json:"product_id"`
	OrderID     string          `json:"order_id"`
	Quantity    *int64          `json:"quantity"`
	PriceCents  *int64          `json:"price_cents"`
	Stock       *int64          `json:"stock"`
	AmountCents *int64          `json:"amount_cents"`
	Extra       json.RawMessage `json:"extra"`
}

// FuzzDecode checks that Decode, whatever the body, either fills the value or
// answers an *Error a client may see with a 4xx status, and that the body
// limits hold: more than MaxBodyBytes is always body_too_large, never
// anything else, and an accepted body is one JSON object (or null) no deeper
// than MaxJSONDepth. pad appends that many spaces, so that bodies reach the
// size limit.
func FuzzDecode(f *testing.F) {
	seeds := []struct {
		body string
		pad  uint16
	}{
		{`{"name":"Ada","email":"ada@example.com"}`, 0},
		{`{"user_id":"u-1","product_id":"p-1","quantity":2}`, 0},
		{`{"order_id":"o-1","amount_cents":2500}`, 0},
		{`{"name":"Mug","price_cents":1250,"stock":5,"extra":{"a":[1,{"b":null}]}}`, 0},
		{` {"name":"x"} `, 0},
		{`null`, 0},
		{``, 0},
		{`   `, 0},
		{`{`, 0},
		{`{"name":`, 0},
		{`{"name" "x"}`, 0},
		{`name=Ada`, 0},
		{`{"colour":"red"}`, 0},
		{`{"quantity":"2"}`, 0},
		{`{"quantity":1.5}`, 0},
		{`{"quantity":9223372036854775808}`, 0},
		{`{"quantity":-9223372036854775808}`, 0},
		{`{"quantity":1e3}`, 0},
		{`{"name":1}`, 0},
		{`[{"name":"a"}]`, 0},
		{`"string"`, 0},
		{`42`, 0},
		{`true`, 0},
		{`{"name":"a"}{"name":"b"}`, 0},
		{`{"name":"a"} x`, 0},
		{`{"name":"a","name":"b"}`, 0},
		{`{"NAME":"case"}`, 0},
		{`{"extra":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}`, 0},
		{`{"extra":` + strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1) + `}`, 0},
		{strings.Repeat("[", 10000), 0},
		{`{"name":"[[[[[[[[[[[[[[[[[[[[[[[[[["}`, 0},
		{`{"name":"\"[[[[[[[[[[[[[[[[[[[[[[[[[["}`, 0},
		{`{"name":"\\"}`, 0},
		{"{\"name\":\"\xff\xfe\"}", 0},
		{"{\"name\":\"\x00\"}", 0},
		{"\xef\xbb\xbf{}", 0},
		{`{"name":"\ud800"}`, 0},
		{`{}`, MaxBodyBytes - 2},
		{`{}`, MaxBodyBytes - 1},
		{`{}`, 65535},
		{`{"name":"a"}`, 65535},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.pad)
	}
	f.Fuzz(func(t *testing.T, body []byte, pad uint16) {
		body = append(body, bytes.Repeat([]byte(" "), int(pad))...)
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		w := httptest.NewRecorder()
		var got fuzzRequest

		err := Decode(w, r, &got)

		if err != nil {
			var e *Error
			require.True(t, errors.As(err, &e), "want *api.Error, got %T: %v", err, err)
			status := e.Code.Status()
			assert.True(t, status >= 400 && status < 500, "%s is a client error, got %d", e.Code, status)
			assert.NotEmpty(t, e.Message)
			if len(body) > MaxBodyBytes {
				assert.Equal(t, CodeBodyTooLarge, e.Code, "a body of %d bytes is too large", len(body))
			} else {
				assert.NotEqual(t, CodeBodyTooLarge, e.Code, "a body of %d bytes is within the limit", len(body))
			}
			return
		}
		require.LessOrEqual(t, len(body), MaxBodyBytes, "an accepted body is within the limit")
		assert.True(t, json.Valid(body), "an accepted body is JSON: %q", body)
		assert.LessOrEqual(t, jsonDepth(body), MaxJSONDepth)
		trimmed := bytes.TrimSpace(body)
		assert.True(t, bytes.HasPrefix(trimmed, []byte("{")) || string(trimmed) == "null", "an accepted body is an object: %q", body)
		var again fuzzRequest
		require.NoError(t, json.Unmarshal(body, &again))
		assert.Equal(t, again, got, "Decode reads what encoding/json reads")
	})
}

var validIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FuzzValidID checks ValidID against its definition, and that a valid id
// holds nothing that could change a state key's or a path's meaning.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{
		"u-1", "o_1", "A", "0", strings.Repeat("a", 64), strings.Repeat("a", 65), "",
		"a b", "a/b", "a.b", "..", "a||b", "a\x00", "\xff", "é", "ａ", "a\n", "-", "_", "%2F", "user-1?x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		valid := ValidID(s)

		assert.Equal(t, validIDPattern.MatchString(s), valid, "ValidID(%q)", s)
		if valid {
			assert.NotContains(t, s, "||")
			assert.NotContains(t, s, "/")
			assert.NotContains(t, s, ".")
			assert.Equal(t, s, strings.TrimSpace(s))
			assert.True(t, len(s) >= 1 && len(s) <= 64)
		}
	})
}
