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

// ErrEmailTaken is returned by a Directory when a claim on the email exists.
var ErrEmailTaken = errors.New("email taken")

// ErrNotFound is returned by a Directory for an unknown user id or email.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a Directory when an ETag-checked write lost to
// another writer, or an insert found its key taken.
var ErrConflict = errors.New("conflict")

// EmailClaim records which user an email belongs to, and since when.
type EmailClaim struct {
	UserID    string    `json:"user_id"`
	ClaimedAt time.Time `json:"claimed_at"`
}

// Directory stores users and the claims on their emails. ClaimEmail is
// insert-only: of two concurrent claims of one email, exactly one succeeds,
// the other gets ErrEmailTaken. TakeOverEmail and ReleaseEmail change a claim
// only if it still has etag (else ErrConflict). Insert is insert-only
// (ErrConflict if the id exists). Reads answer ErrNotFound for nothing.
type Directory interface {
	ClaimEmail(ctx context.Context, email string, claim EmailClaim) error
	EmailClaim(ctx context.Context, email string) (EmailClaim, string, error)
	TakeOverEmail(ctx context.Context, email string, claim EmailClaim, etag string) error
	ReleaseEmail(ctx context.Context, email, etag string) error
	Insert(ctx context.Context, u User) error
	User(ctx context.Context, id string) (User, error)
}

// Registry registers users and looks them up.
type Registry struct {
	Store Directory
	Now   func() time.Time
	NewID func() string
	// StaleClaim is how old a claim on an email must be, with no user stored
	// under it, before another registration may take the email: its
	// registration died between claiming and storing the user. It must be
	// longer than a registration can take (WorstCase, plus one store write
	// still in flight), or a slow one would lose its email.
	StaleClaim time.Duration
	// Timeout bounds one registration.
	Timeout time.Duration
	// Step is called after each step of a registration with its name; the
	// end-to-end tests make it exit the process there (faults.ExitAt).
	Step func(name string)
}

// Steps of a registration, as Step names them.
const (
	StepEmailClaimed = "users.email-claimed"
	StepUserStored   = "users.user-stored"
)

// maxClaimAttempts bounds how often one registration tries for its email
// while other registrations release and take over the claim.
const maxClaimAttempts = 3

// Register creates a user whose email no other user has. The email is claimed
// first, so two concurrent registrations with one email cannot both win; then
// the user is stored. An answer lost on the way is resolved by reading back,
// never by guessing: a claim that turns out to name this registration is
// its own (a retried write landed twice), a user that turns out stored is
// registered. If the user is surely not stored the claim is given back; if
// the process dies first, the claim names a user that never appears and the
// next registration of the email takes it over once it is StaleClaim old.
func (reg *Registry) Register(ctx context.Context, in Registration) (User, error) {
	in, err := in.normalize()
	if err != nil {
		return User{}, err
	}
	if reg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, reg.Timeout)
		defer cancel()
	}
	u := User{ID: reg.NewID(), Name: in.Name, Email: in.Email, CreatedAt: reg.Now()}
	if err := reg.claim(ctx, u); err != nil {
		return User{}, err
	}
	reg.step(StepEmailClaimed)
	if err := reg.Store.Insert(ctx, u); err != nil {
		// Resolving the outcome is not cut short by the registration's
		// deadline (that may be what failed the write), but bounded too.
		ctx, cancel := reg.resolveContext(ctx)
		defer cancel()
		stored, readErr := reg.Store.User(ctx, u.ID)
		switch {
		case readErr == nil && stored.ID == u.ID:
			return stored, nil // the write landed; only its answer was lost
		case errors.Is(readErr, ErrNotFound):
			return User{}, reg.release(ctx, u, err)
		}
		// Unknown: leave the claim; it is taken over once stale if the
		// user never appears.
		return User{}, errors.Join(err, readErr)
	}
	reg.step(StepUserStored)
	return u, nil
}

// resolveContext bounds reading back a write that failed and giving its
// claim back to Timeout/2, on top of the registration's own deadline: a
// registration ends within WorstCase.
func (reg *Registry) resolveContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = context.WithoutCancel(ctx)
	if reg.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, reg.Timeout/2)
}

// WorstCase is the longest a registration can take.
func (reg *Registry) WorstCase() time.Duration { return reg.Timeout + reg.Timeout/2 }

func (reg *Registry) step(name string) {
	if reg.Step != nil {
		reg.Step(name)
	}
}

// claim makes the email u's.
func (reg *Registry) claim(ctx context.Context, u User) error {
	taken := api.Errorf(api.CodeEmailTaken, "email %s is already registered", u.Email)
	for range maxClaimAttempts {
		err := reg.Store.ClaimEmail(ctx, u.Email, EmailClaim{UserID: u.ID, ClaimedAt: u.CreatedAt})
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrEmailTaken) {
			return err
		}
		held, etag, err := reg.Store.EmailClaim(ctx, u.Email)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // given back meanwhile: claim again
		case err != nil:
			return err
		case held.UserID == u.ID:
			return nil // this registration's own claim, written twice
		}
		_, err = reg.Store.User(ctx, held.UserID)
		switch {
		case err == nil:
			return taken
		case !errors.Is(err, ErrNotFound):
			return err
		case reg.Now().Sub(held.ClaimedAt) < reg.StaleClaim:
			return taken // its registration may still store the user
		}
		err = reg.Store.TakeOverEmail(ctx, u.Email, EmailClaim{UserID: u.ID, ClaimedAt: u.CreatedAt}, etag)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return taken
}

// release gives back u's claim on its email after the user could surely not
// be stored (cause), unless the claim moved on meanwhile.
func (reg *Registry) release(ctx context.Context, u User, cause error) error {
	held, etag, err := reg.Store.EmailClaim(ctx, u.Email)
	switch {
	case errors.Is(err, ErrNotFound):
		return cause
	case err != nil:
		return errors.Join(cause, err)
	case held.UserID != u.ID:
		return cause
	}
	if err := reg.Store.ReleaseEmail(ctx, u.Email, etag); err != nil && !errors.Is(err, ErrConflict) {
		return errors.Join(cause, err)
	}
	return cause
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
