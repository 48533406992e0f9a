// Package devkey is the identity provider of development and tests: an
// ES256 signing key kept in a git-ignored folder, the JWKS the gateway
// verifies with, and the bearer tokens it signs. Production points the
// gateway at a real provider's JWKS instead; nothing here runs there.
package devkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// The development issuer and audience; the gateway's defaults
// (AUTH_ISSUER, AUTH_AUDIENCE) are the same.
const (
	Issuer   = "ordermesh-dev"
	Audience = "ordermesh"
)

// Files in a key folder: the private key (mode 0600) and the public JWKS.
const (
	PrivateFile = "signing-key.jwk"
	JWKSFile    = "jwks.json"
)

// Claims are the claims the gateway reads: the registered ones and the
// caller's roles. An identity provider is configured to put the roles in a
// top-level "roles" array (with Keycloak: a "User Realm Role" mapper with
// the claim name "roles").
type Claims struct {
	jwt.Claims
	Roles []string `json:"roles,omitempty"`
}

// Key signs development tokens.
type Key struct {
	private jose.JSONWebKey
}

// New makes a fresh ES256 key with a random key id.
func New() (*Key, error) {
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var kid [8]byte
	if _, err := rand.Read(kid[:]); err != nil {
		return nil, err
	}
	return &Key{private: jose.JSONWebKey{Key: pk, KeyID: "dev-" + hex.EncodeToString(kid[:]), Algorithm: string(jose.ES256), Use: "sig"}}, nil
}

// LoadOrCreate reads the key in dir, or makes one and writes it there with
// its JWKS. created says which.
func LoadOrCreate(dir string) (k *Key, created bool, err error) {
	k, err = Load(dir)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if k, err = New(); err != nil {
		return nil, false, err
	}
	return k, true, k.Save(dir)
}

// Load reads the key in dir.
func Load(dir string) (*Key, error) {
	data, err := os.ReadFile(filepath.Join(dir, PrivateFile))
	if err != nil {
		return nil, err
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, PrivateFile), err)
	}
	if jwk.IsPublic() || !jwk.Valid() {
		return nil, fmt.Errorf("%s: not a private signing key", filepath.Join(dir, PrivateFile))
	}
	return &Key{private: jwk}, nil
}

// Save writes the private key (readable by its owner only) and the JWKS
// into dir.
func (k *Key) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	priv, err := k.private.MarshalJSON()
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, PrivateFile), priv, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, JWKSFile), k.JWKS(), 0o644)
}

// writeFile replaces path atomically, so a gateway reloading the JWKS never
// reads half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// KeyID is the key's "kid".
func (k *Key) KeyID() string { return k.private.KeyID }

// JWKS is the public key set, as a provider serves it.
func (k *Key) JWKS() []byte {
	data, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.private.Public()}})
	return data
}

// Sign signs claims as a compact JWT.
func (k *Key) Sign(c Claims) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.private}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}

// Token signs a development token for caller, valid for ttl from now, with
// the development issuer and audience.
func (k *Key) Token(caller identity.Caller, ttl time.Duration) (string, error) {
	if !caller.Valid() {
		return "", fmt.Errorf("devkey: %q is not a caller a token can name", caller.String())
	}
	now := time.Now()
	return k.Sign(Claims{
		Claims: jwt.Claims{
			Issuer:    Issuer,
			Subject:   caller.Subject,
			Audience:  jwt.Audience{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(ttl)),
		},
		Roles: []string{string(caller.Role)},
	})
}
