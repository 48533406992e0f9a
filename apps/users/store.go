package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// stateDirectory keeps users in a Dapr state store: "user/<id>" holds the
// user and "email/<sha256 of the email>" the EmailClaim naming who claimed
// that email. Hashing keeps any character an address may hold (even "||",
// which Dapr refuses in keys) out of the key. Both are written insert-only
// with first-write concurrency (sidecar.Store), so a claim is exclusive.
//
// The two are not one Dapr state transaction: on Redis a transaction is
// MULTI/EXEC without rollback, and an insert-only write inside it is not
// checked at all (Dapr's Redis transaction does not mark keys first-write),
// so a transaction would store the user even when its email is taken. The
// Registry reads back and repairs instead.
type stateDirectory struct{ store *sidecar.Store }

func emailKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return "email/" + hex.EncodeToString(sum[:])
}

func (d stateDirectory) ClaimEmail(ctx context.Context, email string, claim EmailClaim) error {
	err := d.store.Insert(ctx, emailKey(email), claim, 0)
	if errors.Is(err, sidecar.ErrConflict) {
		return errors.Join(ErrEmailTaken, err)
	}
	return err
}

func (d stateDirectory) EmailClaim(ctx context.Context, email string) (EmailClaim, string, error) {
	it, found, err := d.store.Get(ctx, emailKey(email))
	if err != nil {
		return EmailClaim{}, "", err
	}
	if !found {
		return EmailClaim{}, "", ErrNotFound
	}
	var claim EmailClaim
	if err := json.Unmarshal(it.Value, &claim); err != nil {
		// Claims written before they carried a time hold the user id alone.
		var id string
		if json.Unmarshal(it.Value, &id) != nil {
			return EmailClaim{}, "", it.Decode(&claim)
		}
		claim.UserID = id
	}
	return claim, it.ETag, nil
}

func (d stateDirectory) TakeOverEmail(ctx context.Context, email string, claim EmailClaim, etag string) error {
	return conflict(d.store.Update(ctx, emailKey(email), claim, etag))
}

func (d stateDirectory) ReleaseEmail(ctx context.Context, email, etag string) error {
	return conflict(d.store.Delete(ctx, emailKey(email), etag))
}

func (d stateDirectory) Insert(ctx context.Context, u User) error {
	return conflict(d.store.Insert(ctx, "user/"+u.ID, u, 0))
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

// conflict turns the sidecar's conflict into the domain's.
func conflict(err error) error {
	if errors.Is(err, sidecar.ErrConflict) {
		return errors.Join(ErrConflict, err)
	}
	return err
}
