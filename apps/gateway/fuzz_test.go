package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/config"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// fuzzServices are the public prefixes and the app ids the fuzz gateway
// forwards them to; the ids differ from the prefixes so that a path naming
// another service cannot pass for the right app id.
var fuzzServices = []struct{ prefix, app string }{
	{"users", "users-app"},
	{"products", "products-app"},
	{"orders", "orders-app"},
	{"payments", "payments-app"},
	{"notifications", "notifications-app"},
}

// recordingSidecar records the URL of every request it answers.
type recordingSidecar struct {
	mu   sync.Mutex
	seen []*url.URL
}

func (s *recordingSidecar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.seen = append(s.seen, r.URL)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// take returns and forgets the URLs seen so far.
func (s *recordingSidecar) take() []*url.URL {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.seen
	s.seen = nil
	return seen
}

// FuzzForwardPath sends GET /api/<service><rest> through the gateway's
// routes, with a customer's token and with an operator's, to a recording
// sidecar; rest is any path and query a request line can carry. Whatever it
// holds, a request that reaches the sidecar is a GET route of the public
// table that the caller may use, sent as the invocation of that route's app
// id, read the way daprd reads it (app id from the decoded path, route from
// the cleaned escaped path), with the client's path below /method/ unchanged
// and free of dot segments, and its query kept. A request that does not
// reach the sidecar is a JSON 403/404/405, or the router's redirect of an
// unclean path.
func FuzzForwardPath(f *testing.F) {
	sidecarSrv := &recordingSidecar{}
	sc := httptest.NewServer(sidecarSrv)
	f.Cleanup(sc.Close)
	peers := config.Peers{Users: "users-app", Products: "products-app", Orders: "orders-app", Payments: "payments-app", Notifications: "notifications-app"}
	gw := &Gateway{Sidecar: sc.URL, Client: sc.Client(), Log: slog.New(slog.DiscardHandler)}
	idp := newTestIdP(f)
	h := testRoutes(gw, idp, peers)
	callers := []http.Header{idp.bearer(f, identity.Caller{Role: identity.Customer, Subject: "42"}), idp.bearer(f, operator)}

	for _, s := range []struct {
		service uint8
		rest    string
	}{
		{0, "/42"},
		{0, "/42?x=1&y=%20z"},
		{1, ""},
		{1, "/p-1/reservations/o-1"},
		{2, "/o-1/ship"},
		{3, "/pay-1"},
		{4, "?user_id=u-1"},
		{0, "x"},
		{0, "/"},
		{0, "//"},
		{0, "/a//b"},
		{0, "/."},
		{0, "/.."},
		{0, "/../products/p-1"},
		{0, "/../../../v1.0/state/statestore/k"},
		{0, "/a/../../payments/pay-1"},
		{0, "/%2e%2e/%2e%2e/v1.0/invoke/payments-app/method/payments"},
		{0, "/%2E%2E%2F%2E%2E%2Fv1.0%2Fstate%2Fstatestore"},
		{0, "/..%2f..%2fpayments"},
		{0, "/..%5c..%5cpayments"},
		{0, "/..;/payments"},
		{0, "/a%2Fb"},
		{0, "/a%252e%252e"},
		{0, "/method/x"},
		{0, "/x/method/payments-app/method/y"},
		{0, "/v1.0/invoke/payments-app/method/payments"},
		{0, "/%3Fx=1"},
		{0, "/a#frag"},
		{0, "/a?b=../../x"},
		{0, "/a?x=1;y=2"},
		{0, "/a?x=%zz"},
		{0, "/é/%C3%A9"},
		{0, "/%00"},
		{0, "/%ff%fe"},
		{0, "/\xff"},
		{0, "/a b"},
		{0, "/a\r\nHost: evil"},
		{5, "/x"},
		{255, "/x"},
	} {
		f.Add(s.service, s.rest)
	}
	f.Fuzz(func(t *testing.T, service uint8, rest string) {
		svc := fuzzServices[int(service)%len(fuzzServices)]
		target := "/api/" + svc.prefix + rest
		if strings.ContainsAny(target, " \t") {
			return // a request line cannot carry it
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // net/http answers 400 before any handler runs
		}
		for _, header := range callers {
			sidecarSrv.take()
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
			r.URL, r.RequestURI = u, target
			r.Header = header.Clone()
			w := httptest.NewRecorder()

			h.ServeHTTP(w, r)

			seen := sidecarSrv.take()
			if len(seen) == 0 {
				requireNotForwarded(t, w, u)
				continue
			}
			require.Len(t, seen, 1, "one request, one invocation")
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.JSONEq(t, `{"ok":true}`, w.Body.String())
			rt, ok := publicGET(u.Path)
			require.True(t, ok, "%q is no GET route of the public table, yet it was forwarded", u.Path)
			app := fuzzServices[slices.IndexFunc(fuzzServices, func(s struct{ prefix, app string }) bool { return s.prefix == rt.Service })].app
			out := seen[0]
			prefix := "/v1.0/invoke/" + app + "/method/"

			// What the app receives below /method/ is the client's path, as is.
			require.True(t, strings.HasPrefix(out.Path, prefix), "%q forwarded as %q", target, out.Path)
			assert.Equal(t, prefix+strings.TrimPrefix(u.Path, "/api/"), out.Path)
			for _, seg := range strings.Split(strings.TrimPrefix(out.Path, prefix), "/") {
				require.NotContains(t, []string{".", ".."}, seg, "%q forwarded as %q", target, out.Path)
			}
			// daprd routes on the cleaned escaped path and takes the app id
			// from the decoded one, up to the first /method/.
			route := path.Clean(out.EscapedPath())
			assert.True(t, route == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(route, prefix), "daprd routes %q as %q", target, route)
			appID := strings.TrimPrefix(out.Path, "/v1.0/invoke/")
			appID = appID[:strings.Index(appID, "/method/")]
			if unescaped, err := url.QueryUnescape(appID); err == nil && unescaped != "" {
				appID = unescaped
			}
			assert.Equal(t, app, appID, "%q invokes another app", target)
			if _, err := url.ParseQuery(u.RawQuery); err == nil && strings.Count(u.RawQuery, "&") < 10000 {
				assert.Equal(t, u.RawQuery, out.RawQuery, "the query passes unchanged")
			}
		}
	})
}

// publicGET finds the GET route of the public table a path matches, the way
// the router matches templates: a {var} is one segment.
func publicGET(p string) (PublicRoute, bool) {
	segs := strings.Split(p, "/")
	for _, rt := range PublicAPI {
		tmpl := strings.Split(rt.Path, "/")
		if rt.Method != http.MethodGet || len(tmpl) != len(segs) {
			continue
		}
		match := true
		for i, s := range tmpl {
			if strings.HasPrefix(s, "{") {
				match = match && segs[i] != ""
			} else {
				match = match && segs[i] == s
			}
		}
		if match {
			return rt, true
		}
	}
	return PublicRoute{}, false
}

// requireNotForwarded checks the answer to a request the gateway kept: a
// JSON 404 or 405, or the router's redirect of an unclean path to its clean
// form.
func requireNotForwarded(t *testing.T, w *httptest.ResponseRecorder, u *url.URL) {
	t.Helper()
	if w.Code == http.StatusMovedPermanently {
		clean := routerCleanPath(u.Path)
		require.NotEqual(t, u.Path, clean, "only an unclean path is redirected")
		loc, err := url.Parse(w.Header().Get("Location"))
		require.NoError(t, err)
		assert.Equal(t, clean, loc.Path)
		return
	}
	require.Contains(t, []int{http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed}, w.Code, w.Body.String())
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body api.ErrorBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	assert.True(t, slices.Contains([]api.Code{api.CodeForbidden, api.CodeNotFound, api.CodeMethodNotAllowed}, body.Error.Code), body.Error.Code)
	if rt, ok := publicGET(u.Path); ok && w.Code == http.StatusNotFound {
		assert.NotNil(t, rt.Owner, "%q is a public route without an owner check, yet it answered 404", u.Path)
	}
}

// routerCleanPath is how gorilla/mux cleans a path before routing: path.Clean,
// keeping a trailing slash.
func routerCleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
