package harness

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ordermesh/ordermesh/apps/internal/identity"
	"github.com/ordermesh/ordermesh/apps/internal/identity/devkey"
)

// The identity provider of the tests: one development signing key per test
// binary, kept in memory. Every system's gateway verifies with its public
// JWKS, so a token from Token works against any system of the run.
var (
	idpOnce sync.Once
	idpKey  *devkey.Key
	idpErr  error
)

func testIdP(t testing.TB) *devkey.Key {
	t.Helper()
	idpOnce.Do(func() { idpKey, idpErr = devkey.New() })
	if idpErr != nil {
		t.Fatalf("harness: development signing key: %v", idpErr)
	}
	return idpKey
}

// Token is a bearer token for c that every system's gateway accepts, valid
// for an hour.
func Token(t testing.TB, c identity.Caller) string {
	t.Helper()
	tok, err := testIdP(t).Token(c, time.Hour)
	if err != nil {
		t.Fatalf("harness: token for %s: %v", c.Role, err)
	}
	return tok
}

// JWKSPath is the file the system's gateway reads the token keys from
// (AUTH_JWKS).
func (s *System) JWKSPath() string { return filepath.Join(s.dir, "jwks.json") }

// writeJWKS writes the test identity provider's public keys for the gateway.
func (s *System) writeJWKS() error { return WriteJWKS(s.t, s.JWKSPath()) }

// WriteJWKS writes the public keys that Token's tokens verify with to path
// (readable by all: a gateway container may run as another user), for a
// gateway the harness does not start itself (compose).
func WriteJWKS(t testing.TB, path string) error {
	t.Helper()
	return os.WriteFile(path, testIdP(t).JWKS(), 0o644)
}

// SignWith signs a token for c, with the development issuer and audience,
// valid from notBefore until expiry: for tests of tokens the gateway must
// refuse.
func SignWith(t testing.TB, c identity.Caller, notBefore, expiry time.Time) (string, error) {
	t.Helper()
	return testIdP(t).Sign(devkey.Claims{
		Claims: jwt.Claims{
			Issuer: devkey.Issuer, Subject: c.Subject, Audience: jwt.Audience{devkey.Audience},
			IssuedAt: jwt.NewNumericDate(notBefore), NotBefore: jwt.NewNumericDate(notBefore), Expiry: jwt.NewNumericDate(expiry),
		},
		Roles: []string{string(c.Role)},
	})
}
