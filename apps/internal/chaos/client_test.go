//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// client is the one way the soak talks to the public API, so a credential
// the gateway comes to require is added in one place (do).
type client struct {
	base  string
	token string // a bearer token for the gateway; "" sends none
	http  *http.Client
}

func newClient(base string) *client {
	return &client{base: base, http: &http.Client{
		// Longer than any timeout of the system (the gateway's and the
		// sidecars'): no answer within it is an ambiguous outcome.
		Timeout:   15 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}}
}

// answer is an HTTP answer, or none (Status 0, Err set): a timeout or a
// refused connection, an outcome the client cannot know.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error
}

// do sends one request; body is JSON-encoded when not nil.
func (c *client) do(ctx context.Context, method, path string, body any, headers ...string) answer {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return answer{Err: err}
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return answer{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return answer{Status: res.StatusCode, Header: res.Header, Err: err}
	}
	return answer{Status: res.StatusCode, Header: res.Header, Body: data}
}

// decode reads a JSON body into v.
func (a answer) decode(v any) error { return json.Unmarshal(a.Body, v) }

// ambiguous reports whether the request may or may not have taken effect:
// no answer, or a server-side failure that may have come after the write.
func (a answer) ambiguous() bool { return a.Status == 0 || a.Status >= 500 }

// label is the answer as the report counts it: its status, or "none".
func (a answer) label() string {
	if a.Status == 0 {
		return "none"
	}
	return strconv.Itoa(a.Status)
}
