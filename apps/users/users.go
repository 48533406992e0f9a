package main

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// User is a registered customer of the shop.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// Registration is what a client sends to register.
type Registration struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Limits on what a registration may hold.
const (
	maxNameLen  = 200
	maxEmailLen = 254
)

// normalize trims the fields and lower-cases the email, so that one mailbox is
// one account whatever its spelling, and rejects what is not a user.
func (r Registration) normalize() (Registration, error) {
	r.Name = strings.TrimSpace(r.Name)
	r.Email = strings.ToLower(strings.TrimSpace(r.Email))
	switch {
	case r.Name == "":
		return r, api.Errorf(api.CodeInvalidRequest, "name is required")
	case utf8.RuneCountInString(r.Name) > maxNameLen:
		return r, api.Errorf(api.CodeInvalidRequest, "name is longer than %d characters", maxNameLen)
	case r.Email == "":
		return r, api.Errorf(api.CodeInvalidRequest, "email is required")
	case len(r.Email) > maxEmailLen:
		return r, api.Errorf(api.CodeInvalidRequest, "email is longer than %d characters", maxEmailLen)
	}
	addr, err := mail.ParseAddress(r.Email)
	if err != nil || addr.Address != r.Email || !strings.Contains(r.Email[strings.LastIndex(r.Email, "@"):], ".") {
		return r, api.Errorf(api.CodeInvalidRequest, "email %q is not an email address", r.Email)
	}
	return r, nil
}

// ErrEmailTaken is returned by a Directory when another user holds the email.
var ErrEmailTaken = errors.New("email taken")

// ErrNotFound is returned by a Directory for an unknown user id.
var ErrNotFound = errors.New("user not found")

// Directory stores users. ClaimEmail must be atomic: of two concurrent claims
// of one email, exactly one succeeds.
type Directory interface {
	ClaimEmail(ctx context.Context, email, userID string) error
	ReleaseEmail(ctx context.Context, email string) error
	Insert(ctx context.Context, u User) error
	User(ctx context.Context, id string) (User, error)
}

// Registry registers users and looks them up.
type Registry struct {
	Store Directory
	Now   func() time.Time
	NewID func() string
}

// Register creates a user whose email no other user has. The email is claimed
// first, so two concurrent registrations with one email cannot both win; if
// saving the user then fails, the claim is given back.
func (reg *Registry) Register(ctx context.Context, in Registration) (User, error) {
	in, err := in.normalize()
	if err != nil {
		return User{}, err
	}
	u := User{ID: reg.NewID(), Name: in.Name, Email: in.Email, CreatedAt: reg.Now()}
	if err := reg.Store.ClaimEmail(ctx, u.Email, u.ID); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return User{}, api.Errorf(api.CodeEmailTaken, "email %s is already registered", u.Email)
		}
		return User{}, err
	}
	if err := reg.Store.Insert(ctx, u); err != nil {
		if relErr := reg.Store.ReleaseEmail(context.WithoutCancel(ctx), u.Email); relErr != nil {
			return User{}, errors.Join(err, relErr)
		}
		return User{}, err
	}
	return u, nil
}

// User returns the user with the given id.
func (reg *Registry) User(ctx context.Context, id string) (User, error) {
	if !api.ValidID(id) {
		return User{}, api.Errorf(api.CodeNotFound, "user %q not found", id)
	}
	u, err := reg.Store.User(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return User{}, api.Errorf(api.CodeNotFound, "user %q not found", id)
	}
	return u, err
}
