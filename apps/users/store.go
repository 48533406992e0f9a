package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// stateDirectory keeps users in a Dapr state store: "user/<id>" holds the
// user and "email/<sha256 of the email>" the id of the user who claimed that
// email. Hashing keeps any character an address may hold (even "||", which
// Dapr refuses in keys) out of the key.
type stateDirectory struct{ store *sidecar.Store }

func emailKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return "email/" + hex.EncodeToString(sum[:])
}

func (d stateDirectory) ClaimEmail(ctx context.Context, email, userID string) error {
	err := d.store.Insert(ctx, emailKey(email), userID, 0)
	if errors.Is(err, sidecar.ErrConflict) {
		return ErrEmailTaken
	}
	return err
}

func (d stateDirectory) ReleaseEmail(ctx context.Context, email string) error {
	return d.store.Delete(ctx, emailKey(email), "")
}

func (d stateDirectory) Insert(ctx context.Context, u User) error {
	return d.store.Insert(ctx, "user/"+u.ID, u, 0)
}

func (d stateDirectory) User(ctx context.Context, id string) (User, error) {
	it, found, err := d.store.Get(ctx, "user/"+id)
	if err != nil {
		return User{}, err
	}
	if !found {
		return User{}, ErrNotFound
	}
	var u User
	return u, it.Decode(&u)
}
