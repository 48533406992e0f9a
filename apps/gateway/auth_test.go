package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
	"github.com/ordermesh/ordermesh/apps/internal/identity/devkey"
)

// testIdP is an identity provider for the tests: a development key and the
// keys the gateway verifies with.
type testIdP struct {
	key  *devkey.Key
	keys staticKeys
}

func newTestIdP(t testing.TB) *testIdP {
	t.Helper()
	k, err := devkey.New()
	require.NoError(t, err)
	keys, err := parseJWKS(k.JWKS())
	require.NoError(t, err)
	return &testIdP{key: k, keys: keys}
}

// token signs a valid token for c.
func (p *testIdP) token(t testing.TB, c identity.Caller) string {
	t.Helper()
	tok, err := p.key.Token(c, time.Hour)
	require.NoError(t, err)
	return tok
}

// bearer is the Authorization header carrying a token for c.
func (p *testIdP) bearer(t testing.TB, c identity.Caller) http.Header {
	t.Helper()
	return http.Header{"Authorization": {"Bearer " + p.token(t, c)}}
}

func (p *testIdP) verifier() *Verifier {
	return &Verifier{Keys: p.keys, Issuer: devkey.Issuer, Audience: devkey.Audience, Skew: 30 * time.Second}
}

func (p *testIdP) authenticator() *Authenticator {
	return &Authenticator{Verifier: p.verifier(), Log: slog.New(slog.DiscardHandler)}
}

// staticKeys is a fixed key set.
type staticKeys []jose.JSONWebKey

func (s staticKeys) Key(_ context.Context, kid string) (jose.JSONWebKey, error) {
	for _, k := range s {
		if k.KeyID == kid {
			return k, nil
		}
	}
	return jose.JSONWebKey{}, assert.AnError
}

var (
	ada      = identity.Caller{Role: identity.Customer, Subject: "u-ada"}
	grace    = identity.Caller{Role: identity.Customer, Subject: "u-grace"}
	operator = identity.Caller{Role: identity.Operator, Subject: "ops@example.com"}
)

// claims are valid development claims for c at now.
func claims(c identity.Caller, now time.Time) devkey.Claims {
	return devkey.Claims{
		Claims: jwt.Claims{
			Issuer: devkey.Issuer, Subject: c.Subject, Audience: jwt.Audience{devkey.Audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Roles: []string{string(c.Role)},
	}
}

// unsigned builds a token with the given header and claims and signature
// part, by hand: what an attacker sends.
func unsigned(t *testing.T, header map[string]any, c any, sig string) string {
	t.Helper()
	h, err := json.Marshal(header)
	require.NoError(t, err)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(b) + "." + sig
}

func TestVerifier(t *testing.T) {
	idp := newTestIdP(t)
	other := newTestIdP(t)
	now := time.Now()

	// An RSA provider: RS256 is accepted too.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaJWK := jose.JSONWebKey{Key: rsaKey, KeyID: "rsa-1", Algorithm: string(jose.RS256), Use: "sig"}
	signRSA := func(c devkey.Claims) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaJWK}, (&jose.SignerOptions{}).WithType("JWT"))
		require.NoError(t, err)
		tok, err := jwt.Signed(s).Claims(c).Serialize()
		require.NoError(t, err)
		return tok
	}
	keys := append(staticKeys{}, idp.keys...)
	keys = append(keys, rsaJWK.Public())

	sign := func(k *devkey.Key, c devkey.Claims) string {
		tok, err := k.Sign(c)
		require.NoError(t, err)
		return tok
	}
	with := func(edit func(*devkey.Claims)) string {
		c := claims(ada, now)
		edit(&c)
		return sign(idp.key, c)
	}
	// HS256 signed with the provider's public key as the shared secret: the
	// classic attack on verifiers that take the algorithm from the token.
	pub, err := x509.MarshalPKIXPublicKey(idp.keys[0].Key)
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	hsSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubPEM}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", idp.key.KeyID()))
	require.NoError(t, err)
	hsToken, err := jwt.Signed(hsSigner).Claims(claims(operator, now)).Serialize()
	require.NoError(t, err)

	valid := sign(idp.key, claims(ada, now))
	parts := strings.Split(valid, ".")

	tests := []struct {
		name       string
		token      string
		want       identity.Caller
		notAllowed bool // a good token granting no role
		wantErr    bool
	}{
		{name: "a customer", token: valid, want: ada},
		{name: "an operator", token: sign(idp.key, claims(operator, now)), want: operator},
		{name: "RS256", token: signRSA(claims(grace, now)), want: grace},
		{name: "expired", token: with(func(c *devkey.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) }), wantErr: true},
		{name: "expired within the clock skew", token: with(func(c *devkey.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-10 * time.Second)) }), want: ada},
		{name: "not yet valid", token: with(func(c *devkey.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(5 * time.Minute)) }), wantErr: true},
		{name: "issued in the future", token: with(func(c *devkey.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(5 * time.Minute)) }), wantErr: true},
		{name: "no expiry", token: with(func(c *devkey.Claims) { c.Expiry = nil }), wantErr: true},
		{name: "no subject", token: with(func(c *devkey.Claims) { c.Subject = "" }), wantErr: true},
		{name: "wrong issuer", token: with(func(c *devkey.Claims) { c.Issuer = "https://evil.example" }), wantErr: true},
		{name: "wrong audience", token: with(func(c *devkey.Claims) { c.Audience = jwt.Audience{"another-api"} }), wantErr: true},
		{name: "no audience", token: with(func(c *devkey.Claims) { c.Audience = nil }), wantErr: true},
		{name: "one of several audiences", token: with(func(c *devkey.Claims) { c.Audience = jwt.Audience{"x", devkey.Audience} }), want: ada},
		{name: "wrong key", token: sign(other.key, claims(operator, now)), wantErr: true},
		{name: "wrong key under the right key id", token: func() string {
			c := claims(operator, now)
			h := map[string]any{"alg": "ES256", "kid": idp.key.KeyID(), "typ": "JWT"}
			otherTok := strings.Split(sign(other.key, c), ".")
			return unsigned(t, h, c, otherTok[2])
		}(), wantErr: true},
		{name: "alg none", token: unsigned(t, map[string]any{"alg": "none", "typ": "JWT"}, claims(operator, now), ""), wantErr: true},
		{name: "alg none with the key id", token: unsigned(t, map[string]any{"alg": "none", "kid": idp.key.KeyID()}, claims(operator, now), ""), wantErr: true},
		{name: "HS256 with the public key as secret", token: hsToken, wantErr: true},
		{name: "ES256 header over an RSA key", token: func() string {
			h := map[string]any{"alg": "ES256", "kid": "rsa-1"}
			return unsigned(t, h, claims(operator, now), parts[2])
		}(), wantErr: true},
		{name: "payload swapped for an operator's", token: parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, claims(operator, now))) + "." + parts[2], wantErr: true},
		{name: "signature cut", token: parts[0] + "." + parts[1] + ".", wantErr: true},
		{name: "not a JWT", token: "hello", wantErr: true},
		{name: "too long", token: valid + strings.Repeat("A", MaxTokenBytes), wantErr: true},
		{name: "no role", token: with(func(c *devkey.Claims) { c.Roles = nil }), notAllowed: true},
		{name: "an unknown role", token: with(func(c *devkey.Claims) { c.Roles = []string{"admin"} }), notAllowed: true},
		{name: "a customer whose subject is no user id", token: with(func(c *devkey.Claims) { c.Subject = "not/an id" }), notAllowed: true},
		{name: "operator wins over customer", token: with(func(c *devkey.Claims) { c.Roles = []string{"customer", "operator"} }), want: identity.Caller{Role: identity.Operator, Subject: ada.Subject}},
	}
	v := idp.verifier()
	v.Keys = keys
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			switch {
			case tt.notAllowed:
				require.ErrorIs(t, err, errNotAllowed)
				assert.Zero(t, got)
			case tt.wantErr:
				require.Error(t, err)
				assert.NotErrorIs(t, err, errNotAllowed)
				assert.Zero(t, got)
				assert.NotContains(t, err.Error(), tt.token, "errors never quote the token")
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestGuard(t *testing.T) {
	idp := newTestIdP(t)
	auth := idp.authenticator()
	noRole := claims(ada, time.Now())
	noRole.Roles = nil
	noRoleToken, err := idp.key.Sign(noRole)
	require.NoError(t, err)

	var seen atomic.Value
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := identity.From(r.Context())
		seen.Store(c)
		w.WriteHeader(http.StatusNoContent)
	})
	tests := []struct {
		name       string
		who        access
		owner      string // the user the request is about; "" for none
		header     http.Header
		wantStatus int
		wantCode   api.Code
		wantCaller identity.Caller
	}{
		{name: "anyone's route without a token", who: anyone, wantStatus: http.StatusNoContent},
		{name: "no token", who: customers, wantStatus: http.StatusUnauthorized, wantCode: api.CodeUnauthorized},
		{name: "not a bearer token", who: customers, header: http.Header{"Authorization": {"Basic YTpi"}}, wantStatus: http.StatusUnauthorized, wantCode: api.CodeUnauthorized},
		{name: "bearer without a token", who: customers, header: http.Header{"Authorization": {"Bearer "}}, wantStatus: http.StatusUnauthorized, wantCode: api.CodeUnauthorized},
		{name: "two tokens", who: customers, header: http.Header{"Authorization": {"Bearer " + idp.token(t, ada), "Bearer " + idp.token(t, operator)}}, wantStatus: http.StatusUnauthorized, wantCode: api.CodeUnauthorized},
		{name: "a bad token", who: customers, header: http.Header{"Authorization": {"Bearer abc.def.ghi"}}, wantStatus: http.StatusUnauthorized, wantCode: api.CodeUnauthorized},
		{name: "a customer", who: customers, header: idp.bearer(t, ada), wantStatus: http.StatusNoContent, wantCaller: ada},
		{name: "lower-case scheme", who: customers, header: http.Header{"Authorization": {"bearer " + idp.token(t, ada)}}, wantStatus: http.StatusNoContent, wantCaller: ada},
		{name: "a customer on an operator's route", who: operators, header: idp.bearer(t, ada), wantStatus: http.StatusForbidden, wantCode: api.CodeForbidden},
		{name: "an operator on a customer's route", who: customers, header: idp.bearer(t, operator), wantStatus: http.StatusForbidden, wantCode: api.CodeForbidden},
		{name: "a token granting no role", who: customers | operators, header: http.Header{"Authorization": {"Bearer " + noRoleToken}}, wantStatus: http.StatusForbidden, wantCode: api.CodeForbidden},
		{name: "a customer asking about itself", who: customers, owner: ada.Subject, header: idp.bearer(t, ada), wantStatus: http.StatusNoContent, wantCaller: ada},
		{name: "a token for another user", who: customers, owner: grace.Subject, header: idp.bearer(t, ada), wantStatus: http.StatusNotFound, wantCode: api.CodeNotFound},
		{name: "an operator asking about a user", who: customers | operators, owner: grace.Subject, header: idp.bearer(t, operator), wantStatus: http.StatusNoContent, wantCaller: operator},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen.Store(identity.Caller{})
			var owner func(*http.Request) string
			if tt.owner != "" {
				owner = func(*http.Request) string { return tt.owner }
			}
			w := serve(t, auth.Guard(tt.who, owner, next), http.MethodGet, "/api/x", "", tt.header)

			assert.Equal(t, tt.wantStatus, w.Code, w.Body.String())
			if tt.wantCode != "" {
				assert.Equal(t, tt.wantCode, requireErrorBody(t, w).Code)
				assert.Equal(t, identity.Caller{}, seen.Load(), "the route was not called")
			} else {
				assert.Equal(t, tt.wantCaller, seen.Load())
			}
			if tt.wantStatus == http.StatusUnauthorized {
				assert.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer")
			}
			if tok := strings.TrimPrefix(tt.header.Get("Authorization"), "Bearer "); len(tok) > 10 {
				assert.NotContains(t, w.Body.String(), tok, "the answer never returns the token")
			}
		})
	}
}

func TestJWKSFromAFileFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	first, err := devkey.New()
	require.NoError(t, err)
	require.NoError(t, first.Save(dir))
	keys, err := NewJWKS(t.Context(), filepath.Join(dir, devkey.JWKSFile), nil, time.Hour)
	require.NoError(t, err)
	clock := time.Now()
	keys.Now = func() time.Time { return clock }

	_, err = keys.Key(t.Context(), first.KeyID())
	require.NoError(t, err)

	// The provider rotates: a token under the new key id makes the gateway
	// read the set again, but not more often than MinRefresh.
	second, err := devkey.New()
	require.NoError(t, err)
	require.NoError(t, second.Save(dir))
	clock = clock.Add(MinRefresh / 2)
	_, err = keys.Key(t.Context(), second.KeyID())
	assert.Error(t, err, "read again too soon")
	clock = clock.Add(MinRefresh)
	_, err = keys.Key(t.Context(), second.KeyID())
	require.NoError(t, err, "read again for an unknown key id")
	_, err = keys.Key(t.Context(), first.KeyID())
	assert.Error(t, err, "the rotated-out key is gone")

	// A broken file keeps the keys already held.
	require.NoError(t, os.WriteFile(filepath.Join(dir, devkey.JWKSFile), []byte("{"), 0o644))
	clock = clock.Add(2 * time.Hour)
	_, err = keys.Key(t.Context(), second.KeyID())
	assert.NoError(t, err)
}

func TestJWKSFromAURL(t *testing.T) {
	k, err := devkey.New()
	require.NoError(t, err)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(k.JWKS())
	}))
	t.Cleanup(srv.Close)
	keys, err := NewJWKS(t.Context(), srv.URL, srv.Client(), time.Minute)
	require.NoError(t, err)
	clock := time.Now()
	keys.Now = func() time.Time { return clock }

	for range 5 {
		_, err = keys.Key(t.Context(), k.KeyID())
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, calls.Load(), "kept in memory")
	clock = clock.Add(time.Minute)
	_, err = keys.Key(t.Context(), k.KeyID())
	require.NoError(t, err)
	assert.EqualValues(t, 2, calls.Load(), "refreshed after AUTH_JWKS_REFRESH")
	for range 5 {
		_, err = keys.Key(t.Context(), "made-up")
		assert.Error(t, err)
	}
	assert.EqualValues(t, 2, calls.Load(), "unknown key ids do not hammer the provider")

	_, err = NewJWKS(t.Context(), srv.URL+"/x", &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusNotFound, Body: http.NoBody}, nil
	})}, time.Minute)
	assert.Error(t, err, "a gateway without keys does not start")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestParseJWKSKeepsOnlyPublicSignatureKeys(t *testing.T) {
	k, err := devkey.New()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, k.Save(dir))
	private, err := os.ReadFile(filepath.Join(dir, devkey.PrivateFile))
	require.NoError(t, err)
	set := `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hmac"},` + string(private) + `,{"kty":"weird"}]}`

	keys, err := parseJWKS([]byte(set))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.True(t, keys[0].IsPublic(), "a private half in the set is dropped")
	assert.Equal(t, k.KeyID(), keys[0].KeyID)

	_, err = parseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	assert.Error(t, err, "a set of symmetric keys only")
}

func TestLoadAuthConfig(t *testing.T) {
	_, err := LoadAuthConfig(func(string) string { return "" })
	assert.ErrorContains(t, err, "AUTH_JWKS", "no keys, no gateway")
	c, err := LoadAuthConfig(func(k string) string { return map[string]string{"AUTH_JWKS": "x.json", "AUTH_CLOCK_SKEW": "10s"}[k] })
	require.NoError(t, err)
	assert.Equal(t, AuthConfig{JWKS: "x.json", Issuer: devkey.Issuer, Audience: devkey.Audience, Skew: 10 * time.Second, Refresh: 5 * time.Minute}, c)
}

// FuzzVerify feeds the verifier any string as a bearer token. It must never
// panic, and whatever it accepts speaks for the caller the provider signed
// (a mutation that still verifies can only be an equivalent encoding).
func FuzzVerify(f *testing.F) {
	idp := newTestIdP(f)
	v := idp.verifier()
	signed := map[string]identity.Caller{}
	for _, c := range []identity.Caller{ada, operator} {
		tok := idp.token(f, c)
		signed[tok] = c
		f.Add(tok)
		parts := strings.Split(tok, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".." + parts[2])
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.AAAA")
	f.Add(strings.Repeat(".", 100))
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := v.Verify(context.Background(), raw)
		if err != nil {
			assert.Zero(t, got)
			return
		}
		assert.Contains(t, []identity.Caller{ada, operator}, got, "accepted %q", raw)
		if want, ok := signed[raw]; ok {
			assert.Equal(t, want, got)
		}
	})
}
