package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// Jaeger reads traces from Jaeger's HTTP query API (the module's web UI is a
// placeholder, so the console draws them itself).
type Jaeger struct {
	Base   string
	Client *http.Client
}

// JaegerTrace is a trace as /api/traces returns it.
type JaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []JaegerSpan             `json:"spans"`
	Processes map[string]JaegerProcess `json:"processes"`
}

// JaegerSpan is one span; times are in microseconds.
type JaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64      `json:"startTime"`
	Duration  int64      `json:"duration"`
	ProcessID string     `json:"processID"`
	Tags      []KeyValue `json:"tags"`
}

// KeyValue is a span tag.
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// JaegerProcess names the service that wrote a span: the app id of the sidecar.
type JaegerProcess struct {
	ServiceName string `json:"serviceName"`
}

// Tag returns a span tag's value as text, or "".
func (s JaegerSpan) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			switch v := t.Value.(type) {
			case string:
				return v
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64)
			case bool:
				return strconv.FormatBool(v)
			}
		}
	}
	return ""
}

// Failed says whether the span records an error or an error status.
func (s JaegerSpan) Failed() bool {
	if s.Tag("error") == "true" || s.Tag("otel.status_code") == "ERROR" {
		return true
	}
	for _, k := range []string{"http.status_code", "http.response.status_code"} {
		if code, err := strconv.Atoi(s.Tag(k)); err == nil && code >= 500 {
			return true
		}
	}
	return false
}

// Parent is the span's parent span id, or "".
func (s JaegerSpan) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Service is the service (app id) that wrote span s.
func (t JaegerTrace) Service(s JaegerSpan) string { return t.Processes[s.ProcessID].ServiceName }

// Start is when the trace's first span started.
func (t JaegerTrace) Start() time.Time {
	var first int64
	for _, s := range t.Spans {
		if first == 0 || s.StartTime < first {
			first = s.StartTime
		}
	}
	return time.UnixMicro(first)
}

// Trace reads one trace; ok is false when Jaeger does not have it.
func (j *Jaeger) Trace(ctx context.Context, id string) (t JaegerTrace, ok bool, err error) {
	var body struct {
		Data []JaegerTrace `json:"data"`
	}
	status, err := j.get(ctx, "/api/traces/"+url.PathEscape(id), &body)
	if status == http.StatusNotFound {
		return t, false, nil
	}
	if err != nil || len(body.Data) == 0 {
		return t, false, err
	}
	return body.Data[0], true, nil
}

// placeOrder matches the gateway sidecar's span of a call that places an
// order, the orders app's method "orders": daprd 1.18 names it
// CallLocal/<orders app id>/orders (a read is .../orders/<id>).
var placeOrder = regexp.MustCompile(`^CallLocal/[^/]+/orders$|/method/orders$`)

// Orders returns the latest traces (newest first) in which the gateway's
// sidecar placed an order.
func (j *Jaeger) Orders(ctx context.Context, gatewayID string, limit int) ([]JaegerTrace, error) {
	q := url.Values{
		"service":  {gatewayID},
		"limit":    {strconv.Itoa(limit * 5)},
		"lookback": {"1h"},
		"start":    {strconv.FormatInt(time.Now().Add(-time.Hour).UnixMicro(), 10)},
		"end":      {strconv.FormatInt(time.Now().UnixMicro(), 10)},
	}
	var body struct {
		Data []JaegerTrace `json:"data"`
	}
	if _, err := j.get(ctx, "/api/traces?"+q.Encode(), &body); err != nil {
		return nil, err
	}
	var out []JaegerTrace
	for _, t := range body.Data {
		for _, s := range t.Spans {
			if t.Service(s) == gatewayID && isOrderPlacement(s) {
				out = append(out, t)
				break
			}
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Start().After(out[k].Start()) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func isOrderPlacement(s JaegerSpan) bool {
	method := s.Tag("http.method")
	if method == "" {
		method = s.Tag("http.request.method")
	}
	return (method == "" || method == http.MethodPost) && placeOrder.MatchString(s.OperationName)
}

func (j *Jaeger) get(ctx context.Context, path string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.Base+path, nil)
	if err != nil {
		return 0, err
	}
	res, err := j.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("jaeger: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return res.StatusCode, fmt.Errorf("jaeger: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, fmt.Errorf("jaeger %s answered %d", path, res.StatusCode)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return res.StatusCode, fmt.Errorf("jaeger %s: %w", path, err)
	}
	return res.StatusCode, nil
}
