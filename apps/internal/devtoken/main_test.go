package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/identity/devkey"
)

func TestDevtoken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	var out, errOut bytes.Buffer

	require.ErrorContains(t, run([]string{"-dir", dir, "operator"}, &out, &errOut), "make run", "no key yet")

	require.NoError(t, run([]string{"-dir", dir, "-init"}, &out, &errOut))
	assert.Empty(t, out.String(), "-init prints no token")
	assert.Contains(t, errOut.String(), "created")
	info, err := os.Stat(filepath.Join(dir, devkey.PrivateFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the private key is its owner's only")
	jwks, err := os.ReadFile(filepath.Join(dir, devkey.JWKSFile))
	require.NoError(t, err)
	assert.NotContains(t, string(jwks), `"d"`, "the JWKS holds no private part")

	errOut.Reset()
	require.NoError(t, run([]string{"-dir", dir, "-init"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "using", "a second -init keeps the key")
	again, err := os.ReadFile(filepath.Join(dir, devkey.JWKSFile))
	require.NoError(t, err)
	assert.Equal(t, jwks, again)

	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(jwks, &set))
	tests := []struct {
		args      []string
		sub, role string
		wantErr   bool
	}{
		{args: []string{"customer", "u-1"}, sub: "u-1", role: "customer"},
		{args: []string{"operator"}, sub: "operator", role: "operator"},
		{args: []string{"operator", "ops@example.com"}, sub: "ops@example.com", role: "operator"},
		{args: []string{"customer"}, wantErr: true},
		{args: []string{"customer", "not/an id"}, wantErr: true},
		{args: []string{"admin", "x"}, wantErr: true},
		{args: []string{"-ttl", "0s", "operator"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out.Reset()
			err := run(append([]string{"-dir", dir}, tt.args...), &out, &errOut)
			if tt.wantErr {
				require.Error(t, err)
				assert.Empty(t, out.String())
				return
			}
			require.NoError(t, err)
			tok, err := jwt.ParseSigned(strings.TrimSpace(out.String()), []jose.SignatureAlgorithm{jose.ES256})
			require.NoError(t, err)
			var c devkey.Claims
			require.NoError(t, tok.Claims(set.Keys[0].Key, &c))
			assert.Equal(t, tt.sub, c.Subject)
			assert.Equal(t, []string{tt.role}, c.Roles)
			assert.Equal(t, devkey.Issuer, c.Issuer)
			assert.NoError(t, c.Validate(jwt.Expected{Issuer: devkey.Issuer, AnyAudience: jwt.Audience{devkey.Audience}}))
		})
	}
}
