package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
	"github.com/ordermesh/ordermesh/apps/internal/server"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// Gateway forwards public API calls to the services through the sidecar.
type Gateway struct {
	Sidecar string // base URL of the gateway's sidecar HTTP API
	Token   string // the sidecar's API token (DAPR_API_TOKEN); "" if none
	Client  *http.Client
	Log     *slog.Logger
}

// Forward returns a handler that sends /api/<prefix>... to app appID as the
// method <prefix>..., keeping verb, query, body and the headers the services
// read, and the caller the request acts for (identity.Header, only from the
// request's context: a client's copy is dropped). Answers made by a sidecar
// rather than by the service (the service is down, a timeout, an open
// circuit breaker) become 503 dependency_unavailable, as does no answer
// within timeout (0: no bound of the gateway's own).
func (g *Gateway) Forward(appID string, timeout time.Duration) http.Handler {
	target, err := url.Parse(g.Sidecar)
	if err != nil {
		panic("gateway: bad sidecar URL: " + err.Error())
	}
	proxy := &httputil.ReverseProxy{
		Transport: g.Client.Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			method := strings.TrimPrefix(pr.In.URL.EscapedPath(), "/api/")
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			pr.Out.URL.Path = "/v1.0/invoke/" + appID + "/method/" + strings.TrimPrefix(pr.In.URL.Path, "/api/")
			pr.Out.URL.RawPath = "/v1.0/invoke/" + appID + "/method/" + method
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Forwarded")
			// Headers that steer the sidecar are the gateway's to set, never
			// a client's: dapr-app-id (or its Basic-auth form) would pick
			// another target, even an outside URL, and dapr-api-token would
			// be a client's guess at the sidecar's token. The public API
			// has no use for Authorization.
			for name := range pr.Out.Header {
				if strings.HasPrefix(strings.ToLower(name), "dapr-") {
					pr.Out.Header.Del(name)
				}
			}
			pr.Out.Header.Del("Authorization")
			// The caller is the gateway's to say, from the verified token.
			identity.Strip(pr.Out.Header)
			if c, ok := identity.From(pr.In.Context()); ok {
				identity.Set(pr.Out.Header, c)
			}
			if g.Token != "" {
				pr.Out.Header.Set(server.AppTokenHeader, g.Token)
			}
			if id := server.RequestID(pr.In.Context()); id != "" {
				pr.Out.Header.Set(server.RequestIDHeader, id)
			}
			pr.SetXForwarded()
		},
		ModifyResponse: func(res *http.Response) error {
			// The gateway's middleware already answers with the request id.
			res.Header.Del(server.RequestIDHeader)
			// Only error answers are looked at, and only as far as a
			// sidecar's own error body can go; anything longer is the app's.
			const peek = 64 << 10
			if res.StatusCode < 400 || res.ContentLength > peek {
				return nil
			}
			head, err := io.ReadAll(io.LimitReader(res.Body, peek+1))
			if err != nil {
				res.Body.Close()
				return err
			}
			if len(head) > peek {
				res.Body = struct {
					io.Reader
					io.Closer
				}{io.MultiReader(bytes.NewReader(head), res.Body), res.Body}
				return nil
			}
			res.Body.Close()
			if why := sidecar.SidecarError(res.StatusCode, head); why != "" {
				return &sidecarFailure{app: appID, why: why}
			}
			res.Body = io.NopCloser(bytes.NewReader(head))
			res.ContentLength = int64(len(head))
			res.Header.Set("Content-Length", strconv.Itoa(len(head)))
			res.Header.Del("Transfer-Encoding")
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The method path must stay under the service's own prefix: a ".."
		// segment would walk out of /v1.0/invoke/<app>/method/ into the
		// sidecar's other APIs once the sidecar cleans the path.
		for _, seg := range strings.Split(r.URL.Path, "/") {
			if seg == ".." || seg == "." {
				api.WriteError(w, r, g.Log, api.Errorf(api.CodeInvalidRequest, "path %q has dot segments", r.URL.Path))
				return
			}
		}
		if timeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		proxy.ServeHTTP(w, r)
	})
}

type sidecarFailure struct{ app, why string }

func (s *sidecarFailure) Error() string { return s.app + ": " + s.why }
