package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// ErrUnavailable means a call through the sidecar did not get an answer from
// the target app: the app or its sidecar is down, a timeout fired, or the
// caller's circuit breaker for that app is open. It is api.ErrUnavailable, so
// handlers answer 503.
var ErrUnavailable = api.ErrUnavailable

// NewHTTPClient returns the HTTP client the apps use to reach sidecars. One
// client per process keeps connections to the sidecar alive between calls.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// Invoker calls methods of other apps through this app's sidecar over HTTP:
// POST http://<sidecar>/v1.0/invoke/<app-id>/method/<method>.
type Invoker struct {
	base   string
	client *http.Client
	token  string
}

// NewInvoker returns an Invoker for the sidecar whose HTTP API is at base;
// token is the sidecar's API token (DAPR_API_TOKEN), "" when it has none.
func NewInvoker(base, token string, client *http.Client) *Invoker {
	return &Invoker{base: strings.TrimRight(base, "/"), client: client, token: token}
}

// Response is what the target app answered.
type Response struct {
	Status int
	Body   []byte
}

// DecodeJSON unmarshals the response body into v.
func (r Response) DecodeJSON(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// Invoke calls method (a path such as "users/42") on appID. A non-nil error
// wraps ErrUnavailable when the app could not be reached; any status the app
// itself answered comes back in Response, for the caller to interpret.
func (i *Invoker) Invoke(ctx context.Context, appID, verb, method string, body any) (Response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return Response{}, fmt.Errorf("encode %s %s/%s: %w", verb, appID, method, err)
		}
		rd = bytes.NewReader(data)
	}
	url := i.base + "/v1.0/invoke/" + appID + "/method/" + strings.TrimLeft(method, "/")
	req, err := http.NewRequestWithContext(ctx, verb, url, rd)
	if err != nil {
		return Response{}, fmt.Errorf("build %s %s/%s: %w", verb, appID, method, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if i.token != "" {
		req.Header.Set(server.AppTokenHeader, i.token)
	}
	if rid := server.RequestID(ctx); rid != "" {
		req.Header.Set(server.RequestIDHeader, rid)
	}
	telemetry.Inject(ctx, req.Header) // the sidecar's span joins this request's trace
	res, err := i.client.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s/%s: %w: %w", verb, appID, method, ErrUnavailable, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return Response{}, fmt.Errorf("%s %s/%s: read body: %w: %w", verb, appID, method, ErrUnavailable, err)
	}
	if SidecarError(res.StatusCode, data) != "" {
		return Response{Status: res.StatusCode, Body: data}, fmt.Errorf("%s %s/%s: %w: %s", verb, appID, method, ErrUnavailable, SidecarError(res.StatusCode, data))
	}
	return Response{Status: res.StatusCode, Body: data}, nil
}

// Call invokes an /internal/ route of appID (see api.InternalAnswer) and
// decodes its result into out. A refusal comes back as the callee's
// *api.Error; a failure of the callee or of the way to it wraps
// ErrUnavailable.
func (i *Invoker) Call(ctx context.Context, appID, verb, method string, body, out any) error {
	res, err := i.Invoke(ctx, appID, verb, method, body)
	if err != nil {
		return err
	}
	if res.Status != http.StatusOK {
		var e api.ErrorBody
		_ = json.Unmarshal(res.Body, &e)
		return fmt.Errorf("%s %s/%s answered %d (%s): %w", verb, appID, method, res.Status, e.Error.Code, ErrUnavailable)
	}
	var ans api.InternalAnswer
	if err := json.Unmarshal(res.Body, &ans); err != nil {
		return fmt.Errorf("%s %s/%s: decode answer: %w", verb, appID, method, err)
	}
	if ans.Refusal != nil {
		return ans.Refusal
	}
	if out == nil || len(ans.Result) == 0 {
		return nil
	}
	if err := json.Unmarshal(ans.Result, out); err != nil {
		return fmt.Errorf("%s %s/%s: decode result: %w", verb, appID, method, err)
	}
	return nil
}

// daprError is the body the sidecar itself answers with, as opposed to the
// target app's own {"error": {...}} bodies.
type daprError struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

// SidecarError returns a description when a response was produced by a Dapr
// sidecar rather than by the app behind it (for example ERR_DIRECT_INVOKE when
// the target is down or a circuit breaker is open), and "" otherwise.
func SidecarError(status int, body []byte) string {
	if status < 400 {
		return ""
	}
	var e daprError
	if json.Unmarshal(body, &e) != nil || e.ErrorCode == "" {
		return ""
	}
	return e.ErrorCode + ": " + e.Message
}

// Health asks the sidecar whether it and its components are up. It uses the
// outbound endpoint, which does not wait for this app: the app's readiness
// must not depend on the sidecar seeing the app as ready.
func Health(ctx context.Context, client *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1.0/healthz/outbound", nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("sidecar health: %w", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode >= 300 {
		return fmt.Errorf("sidecar health: status %d", res.StatusCode)
	}
	return nil
}
