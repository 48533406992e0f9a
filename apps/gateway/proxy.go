package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// Gateway forwards public API calls to the services through the sidecar.
type Gateway struct {
	Sidecar string // base URL of the gateway's sidecar HTTP API
	Client  *http.Client
	Log     *slog.Logger
}

// Forward returns a handler that sends /api/<prefix>... to app appID as the
// method <prefix>..., keeping verb, query, body and the headers the services
// read. Answers made by a sidecar rather than by the service (the service is
// down, a timeout, an open circuit breaker) become 503 dependency_unavailable.
func (g *Gateway) Forward(appID string) http.Handler {
	target, err := url.Parse(g.Sidecar)
	if err != nil {
		panic("gateway: bad sidecar URL: " + err.Error())
	}
	return &httputil.ReverseProxy{
		Transport: g.Client.Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			method := strings.TrimPrefix(pr.In.URL.EscapedPath(), "/api/")
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			pr.Out.URL.Path = "/v1.0/invoke/" + appID + "/method/" + strings.TrimPrefix(pr.In.URL.Path, "/api/")
			pr.Out.URL.RawPath = "/v1.0/invoke/" + appID + "/method/" + method
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Forwarded")
			pr.SetXForwarded()
		},
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode < 400 || res.ContentLength > 64<<10 {
				return nil
			}
			body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
			if err != nil {
				return err
			}
			if why := sidecar.SidecarError(res.StatusCode, body); why != "" {
				return &sidecarFailure{app: appID, why: why}
			}
			res.Body = io.NopCloser(bytes.NewReader(body))
			res.ContentLength = int64(len(body))
			res.Header.Set("Content-Length", strconv.Itoa(len(body)))
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var sf *sidecarFailure
			if !errors.As(err, &sf) {
				err = errors.Join(api.ErrUnavailable, err)
			} else {
				err = errors.Join(api.ErrUnavailable, sf)
			}
			api.WriteError(w, r, g.Log, err)
		},
	}
}

type sidecarFailure struct{ app, why string }

func (s *sidecarFailure) Error() string { return s.app + ": " + s.why }
