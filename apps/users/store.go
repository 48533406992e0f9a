package main

import (
	"context"
	"errors"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// stateDirectory keeps users in a Dapr state store: "user/<id>" holds the
// user and "email/<email>" the id of the user who claimed that email.
type stateDirectory struct{ store *sidecar.Store }

func (d stateDirectory) ClaimEmail(ctx context.Context, email, userID string) error {
	err := d.store.Insert(ctx, "email/"+email, userID, 0)
	if errors.Is(err, sidecar.ErrConflict) {
		return ErrEmailTaken
	}
	return err
}

func (d stateDirectory) ReleaseEmail(ctx context.Context, email string) error {
	return d.store.Delete(ctx, "email/"+email, "")
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
