package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// MinRefresh bounds how often a token naming an unknown key id makes the
// gateway read the JWKS again: a client sending made-up key ids must not turn
// the gateway into a load generator against the identity provider.
const MinRefresh = 10 * time.Second

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

// JWKS is the identity provider's key set, read from a file or an http(s)
// URL, kept in memory and read again every Refresh (or sooner, at most once
// per MinRefresh, when a token names a key id it does not hold: the provider
// rotated its keys). A failed read keeps the keys already held.
type JWKS struct {
	Source  string
	Client  *http.Client
	Refresh time.Duration
	Now     func() time.Time

	mu     sync.Mutex
	keys   []jose.JSONWebKey
	readAt time.Time // last read attempt
	okAt   time.Time // last successful read
}

// NewJWKS reads the key set once; a gateway whose keys cannot be read does
// not start.
func NewJWKS(ctx context.Context, source string, client *http.Client, refresh time.Duration) (*JWKS, error) {
	j := &JWKS{Source: source, Client: client, Refresh: refresh, Now: time.Now}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.reload(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

// Key returns the key with id kid; with kid "" the set's only signing key.
func (j *JWKS) Key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.Now()
	if now.Sub(j.okAt) >= j.Refresh && now.Sub(j.readAt) >= MinRefresh {
		_ = j.reload(ctx) // keep the old keys on failure
	}
	if k, ok := j.find(kid); ok {
		return k, nil
	}
	if now.Sub(j.readAt) >= MinRefresh {
		if err := j.reload(ctx); err == nil {
			if k, ok := j.find(kid); ok {
				return k, nil
			}
		}
	}
	return jose.JSONWebKey{}, fmt.Errorf("no key %q in the JWKS", kid)
}

func (j *JWKS) find(kid string) (jose.JSONWebKey, bool) {
	if kid == "" {
		if len(j.keys) == 1 {
			return j.keys[0], true
		}
		return jose.JSONWebKey{}, false
	}
	for _, k := range j.keys {
		if k.KeyID == kid {
			return k, true
		}
	}
	return jose.JSONWebKey{}, false
}

// reload reads the set; called with mu held.
func (j *JWKS) reload(ctx context.Context) error {
	j.readAt = j.Now()
	data, err := j.read(ctx)
	if err != nil {
		return fmt.Errorf("read JWKS %s: %w", j.Source, err)
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("JWKS %s: %w", j.Source, err)
	}
	j.keys, j.okAt = keys, j.readAt
	return nil
}

func (j *JWKS) read(ctx context.Context) ([]byte, error) {
	if !strings.HasPrefix(j.Source, "http://") && !strings.HasPrefix(j.Source, "https://") {
		data, err := os.ReadFile(j.Source)
		if err == nil && len(data) > maxJWKSBytes {
			return nil, errors.New("too large")
		}
		return data, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.Source, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := j.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", res.Status)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err == nil && len(data) > maxJWKSBytes {
		return nil, errors.New("too large")
	}
	return data, err
}

// parseJWKS keeps the set's public signature keys (EC and RSA); private
// halves are dropped, symmetric keys ignored. A set with no usable key is
// an error.
func parseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue // a key type this gateway does not know (a provider may list others)
		}
		k = k.Public()
		switch k.Key.(type) {
		case *ecdsa.PublicKey, *rsa.PublicKey:
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no EC or RSA public key in it")
	}
	return keys, nil
}
