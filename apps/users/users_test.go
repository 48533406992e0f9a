package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/api"
	"github.com/ordermesh/ordermesh/apps/internal/api/apitest"
)

// fakeDirectory is an in-memory Directory whose claims are atomic and
// versioned like the state store's, with switches to make a call fail, or
// make a write land and still answer an error (an answer lost on the way).
type fakeDirectory struct {
	mu       sync.Mutex
	emails   map[string]fakeClaim
	users    map[string]User
	versions int

	claimErr   error // returned by ClaimEmail instead of claiming
	claimLost  bool  // ClaimEmail claims, then answers as the sidecar does when the first answer was lost: taken
	insertErr  error // returned by Insert instead of storing
	insertLost bool  // Insert stores, then answers insertErr
	releaseErr error // returned by ReleaseEmail instead of releasing
	userErr    error // returned by User instead of looking up

	claims   int
	inserts  int
	releases []string
}

type fakeClaim struct {
	claim EmailClaim
	etag  string
}

func newFakeDirectory() *fakeDirectory {
	return &fakeDirectory{emails: map[string]fakeClaim{}, users: map[string]User{}}
}

func (d *fakeDirectory) nextETag() string {
	d.versions++
	return fmt.Sprint(d.versions)
}

func (d *fakeDirectory) ClaimEmail(_ context.Context, email string, claim EmailClaim) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.claims++
	if d.claimErr != nil {
		return d.claimErr
	}
	if _, taken := d.emails[email]; taken {
		return fmt.Errorf("insert email/%s: %w", email, ErrEmailTaken)
	}
	d.emails[email] = fakeClaim{claim: claim, etag: d.nextETag()}
	if d.claimLost {
		return fmt.Errorf("insert email/%s: %w", email, ErrEmailTaken)
	}
	return nil
}

func (d *fakeDirectory) EmailClaim(_ context.Context, email string) (EmailClaim, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.emails[email]
	if !ok {
		return EmailClaim{}, "", ErrNotFound
	}
	return c.claim, c.etag, nil
}

func (d *fakeDirectory) TakeOverEmail(_ context.Context, email string, claim EmailClaim, etag string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.emails[email]; !ok || c.etag != etag {
		return ErrConflict
	}
	d.emails[email] = fakeClaim{claim: claim, etag: d.nextETag()}
	return nil
}

func (d *fakeDirectory) ReleaseEmail(_ context.Context, email, etag string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.releases = append(d.releases, email)
	if d.releaseErr != nil {
		return d.releaseErr
	}
	if c, ok := d.emails[email]; ok && c.etag != etag {
		return ErrConflict
	}
	delete(d.emails, email)
	return nil
}

func (d *fakeDirectory) Insert(_ context.Context, u User) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inserts++
	if d.insertErr != nil && !d.insertLost {
		return d.insertErr
	}
	if _, ok := d.users[u.ID]; ok {
		return ErrConflict
	}
	d.users[u.ID] = u
	return d.insertErr
}

func (d *fakeDirectory) User(_ context.Context, id string) (User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.userErr != nil {
		return User{}, d.userErr
	}
	u, ok := d.users[id]
	if !ok {
		return User{}, ErrNotFound
	}
	return u, nil
}

func (d *fakeDirectory) claimed(email string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.emails[email]
	return ok
}

func (d *fakeDirectory) holder(email string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.emails[email].claim.UserID
}

var testNow = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

// newTestRegistry returns a Registry over a fresh fake with a fixed clock and
// ids user-1, user-2, ...
func newTestRegistry(t *testing.T) (*Registry, *fakeDirectory) {
	t.Helper()
	dir := newFakeDirectory()
	var n atomic.Int64
	return &Registry{
		Store:      dir,
		Now:        func() time.Time { return testNow },
		NewID:      func() string { return fmt.Sprintf("user-%d", n.Add(1)) },
		StaleClaim: 30 * time.Second,
	}, dir
}

func TestRegisterValidation(t *testing.T) {
	tests := []struct {
		name        string
		in          Registration
		wantMessage string
	}{
		{"missing name", Registration{Email: "ada@example.com"}, "name is required"},
		{"blank name", Registration{Name: " \t\n", Email: "ada@example.com"}, "name is required"},
		{"name too long", Registration{Name: strings.Repeat("é", maxNameLen+1), Email: "ada@example.com"}, "name is longer"},
		{"missing email", Registration{Name: "Ada"}, "email is required"},
		{"blank email", Registration{Name: "Ada", Email: "   "}, "email is required"},
		{"email too long", Registration{Name: "Ada", Email: strings.Repeat("a", maxEmailLen-len("@example.com")+1) + "@example.com"}, "email is longer"},
		{"email without at", Registration{Name: "Ada", Email: "ada.example.com"}, "not an email address"},
		{"email without domain dot", Registration{Name: "Ada", Email: "ada@localhost"}, "not an email address"},
		{"email with two ats", Registration{Name: "Ada", Email: "ada@@example.com"}, "not an email address"},
		{"email with display name", Registration{Name: "Ada", Email: "Ada <ada@example.com>"}, "not an email address"},
		{"email with inner space", Registration{Name: "Ada", Email: "ada lovelace@example.com"}, "not an email address"},
		{"two emails", Registration{Name: "Ada", Email: "ada@example.com, bob@example.com"}, "not an email address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, dir := newTestRegistry(t)

			_, err := reg.Register(t.Context(), tt.in)

			e := apitest.RequireCode(t, err, api.CodeInvalidRequest)
			assert.Contains(t, e.Message, tt.wantMessage)
			assert.Zero(t, dir.claims, "nothing is claimed for an invalid registration")
			assert.Zero(t, dir.inserts)
		})
	}
}

func TestRegister(t *testing.T) {
	longName := strings.Repeat("é", maxNameLen) // 200 runes, 400 bytes
	longEmail := strings.Repeat("a", maxEmailLen-len("@example.com")) + "@example.com"

	tests := []struct {
		name string
		in   Registration
		want User
	}{
		{"plain", Registration{Name: "Ada Lovelace", Email: "ada@example.com"},
			User{Name: "Ada Lovelace", Email: "ada@example.com"}},
		{"email case and spaces are normalised", Registration{Name: "  Ada  ", Email: "  Ada.Lovelace@Example.COM \n"},
			User{Name: "Ada", Email: "ada.lovelace@example.com"}},
		{"name at the rune limit", Registration{Name: longName, Email: "ada@example.com"},
			User{Name: longName, Email: "ada@example.com"}},
		{"email at the length limit", Registration{Name: "Ada", Email: longEmail},
			User{Name: "Ada", Email: longEmail}},
		{"plus addressing", Registration{Name: "Ada", Email: "ada+shop@mail.example.co.uk"},
			User{Name: "Ada", Email: "ada+shop@mail.example.co.uk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, dir := newTestRegistry(t)

			u, err := reg.Register(t.Context(), tt.in)

			require.NoError(t, err)
			tt.want.ID = "user-1"
			tt.want.CreatedAt = testNow
			assert.Equal(t, tt.want, u)
			stored, err := dir.User(t.Context(), "user-1")
			require.NoError(t, err)
			assert.Equal(t, u, stored)
			assert.True(t, dir.claimed(tt.want.Email), "the normalised email is claimed")
		})
	}
}

func TestRegisterEmailTaken(t *testing.T) {
	tests := []struct {
		name   string
		first  string
		second string
	}{
		{"same spelling", "ada@example.com", "ada@example.com"},
		{"different case", "ada@example.com", "ADA@Example.com"},
		{"surrounding spaces", "Ada@example.com", "  ada@example.com  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, dir := newTestRegistry(t)
			_, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: tt.first})
			require.NoError(t, err)

			_, err = reg.Register(t.Context(), Registration{Name: "Impostor", Email: tt.second})

			e := apitest.RequireCode(t, err, api.CodeEmailTaken)
			assert.Equal(t, 409, e.Code.Status())
			assert.Equal(t, 1, dir.inserts, "the second user is not stored")
			assert.Empty(t, dir.releases, "a lost claim releases nothing: the email is the winner's")
			assert.True(t, dir.claimed("ada@example.com"))
		})
	}
}

func TestRegisterStoreFailures(t *testing.T) {
	unavailable := fmt.Errorf("save user/user-1: %w", api.ErrUnavailable)
	releaseFailed := errors.New("delete email/ada@example.com: timeout")

	tests := []struct {
		name         string
		claimErr     error
		insertErr    error
		releaseErr   error
		wantIs       []error
		wantReleased bool // ReleaseEmail was called
		wantClaimed  bool // the email is still claimed afterwards
	}{
		{
			name:        "claim fails",
			claimErr:    fmt.Errorf("insert email: %w", api.ErrUnavailable),
			wantIs:      []error{api.ErrUnavailable},
			wantClaimed: false,
		},
		{
			name:         "insert fails and the claim is released",
			insertErr:    unavailable,
			wantIs:       []error{api.ErrUnavailable},
			wantReleased: true,
			wantClaimed:  false,
		},
		{
			name:         "insert and release fail: both errors are reported",
			insertErr:    unavailable,
			releaseErr:   releaseFailed,
			wantIs:       []error{api.ErrUnavailable, releaseFailed},
			wantReleased: true,
			wantClaimed:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, dir := newTestRegistry(t)
			dir.claimErr, dir.insertErr, dir.releaseErr = tt.claimErr, tt.insertErr, tt.releaseErr

			_, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "Ada@Example.com"})

			require.Error(t, err)
			var apiErr *api.Error
			assert.False(t, errors.As(err, &apiErr), "a store failure is not a client error: %v", err)
			for _, want := range tt.wantIs {
				assert.ErrorIs(t, err, want)
			}
			if tt.wantReleased {
				assert.Equal(t, []string{"ada@example.com"}, dir.releases)
			} else {
				assert.Empty(t, dir.releases)
			}
			assert.Equal(t, tt.wantClaimed, dir.claimed("ada@example.com"))
			assert.Empty(t, dir.users)
		})
	}
}

func TestRegisterAfterFailedInsertCanRetry(t *testing.T) {
	reg, dir := newTestRegistry(t)
	dir.insertErr = api.ErrUnavailable
	_, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "ada@example.com"})
	require.ErrorIs(t, err, api.ErrUnavailable)

	dir.insertErr = nil
	u, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "ada@example.com"})

	require.NoError(t, err, "the failed attempt must not keep the email")
	assert.Equal(t, "ada@example.com", u.Email)
}

func TestRegisterReleasesWithLiveContext(t *testing.T) {
	dir := newFakeDirectory()
	ctx, cancel := context.WithCancel(t.Context())
	released := &ctxRecordingDirectory{fakeDirectory: dir, onInsert: cancel}
	reg := &Registry{Store: released, Now: func() time.Time { return testNow }, NewID: func() string { return "user-1" }}

	_, err := reg.Register(ctx, Registration{Name: "Ada", Email: "ada@example.com"})

	require.ErrorIs(t, err, context.Canceled)
	require.True(t, released.releaseCalled)
	assert.NoError(t, released.releaseCtxErr, "the claim is released even when the request was cancelled")
	assert.False(t, dir.claimed("ada@example.com"))
}

// ctxRecordingDirectory cancels the request during Insert and records the
// context ReleaseEmail then gets.
type ctxRecordingDirectory struct {
	*fakeDirectory
	onInsert      func()
	releaseCalled bool
	releaseCtxErr error
}

func (d *ctxRecordingDirectory) Insert(ctx context.Context, _ User) error {
	d.onInsert()
	return ctx.Err()
}

func (d *ctxRecordingDirectory) ReleaseEmail(ctx context.Context, email, etag string) error {
	d.releaseCalled = true
	d.releaseCtxErr = ctx.Err()
	return d.fakeDirectory.ReleaseEmail(ctx, email, etag)
}

func TestUser(t *testing.T) {
	reg, dir := newTestRegistry(t)
	ada, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "ada@example.com"})
	require.NoError(t, err)

	tests := []struct {
		name     string
		id       string
		userErr  error
		want     User
		wantCode api.Code
		wantIs   error
	}{
		{name: "known id", id: ada.ID, want: ada},
		{name: "unknown id", id: "user-999", wantCode: api.CodeNotFound},
		{name: "id that cannot exist", id: "../etc", wantCode: api.CodeNotFound},
		{name: "empty id", id: "", wantCode: api.CodeNotFound},
		{name: "store unavailable", id: ada.ID, userErr: fmt.Errorf("get: %w", api.ErrUnavailable), wantIs: api.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir.userErr = tt.userErr
			t.Cleanup(func() { dir.userErr = nil })

			got, err := reg.User(t.Context(), tt.id)

			switch {
			case tt.wantCode != "":
				apitest.RequireCode(t, err, tt.wantCode)
			case tt.wantIs != nil:
				assert.ErrorIs(t, err, tt.wantIs)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestRegisterConcurrentSameEmail(t *testing.T) {
	const n = 20
	reg, dir := newTestRegistry(t)
	spellings := []string{"ada@example.com", "ADA@example.com", " ada@Example.com ", "Ada@EXAMPLE.COM"}

	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = reg.Register(context.Background(), Registration{Name: fmt.Sprintf("Ada %d", i), Email: spellings[i%len(spellings)]})
		})
	}
	close(start)
	wg.Wait()

	var won, taken int
	for _, err := range errs {
		var e *api.Error
		switch {
		case err == nil:
			won++
		case errors.As(err, &e) && e.Code == api.CodeEmailTaken:
			taken++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	assert.Equal(t, 1, won, "exactly one registration wins the email")
	assert.Equal(t, n-1, taken)
	assert.Len(t, dir.users, 1)
	assert.Equal(t, n, dir.claims)
}

func TestRegisterResolvesLostAnswersByReadingBack(t *testing.T) {
	tests := []struct {
		name       string
		claimLost  bool
		insertLost bool
	}{
		{name: "the claim landed but its answer was lost", claimLost: true},
		{name: "the user landed but its answer was lost", insertLost: true},
		{name: "both", claimLost: true, insertLost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, dir := newTestRegistry(t)
			dir.claimLost, dir.insertLost = tt.claimLost, tt.insertLost
			if tt.insertLost {
				dir.insertErr = fmt.Errorf("save user: %w", api.ErrUnavailable)
			}

			u, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "ada@example.com"})

			require.NoError(t, err, "a write of one's own is not email_taken nor a failure")
			assert.Equal(t, "user-1", u.ID)
			assert.Equal(t, "user-1", dir.holder("ada@example.com"), "the email stays with the stored user")
			assert.Contains(t, dir.users, "user-1")
			assert.Empty(t, dir.releases)
		})
	}
}

func TestRegisterKeepsTheClaimWhenTheOutcomeIsUnknown(t *testing.T) {
	reg, dir := newTestRegistry(t)
	dir.insertErr = fmt.Errorf("save user: %w", api.ErrUnavailable)
	dir.userErr = fmt.Errorf("get user: %w", api.ErrUnavailable)

	_, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "ada@example.com"})

	require.ErrorIs(t, err, api.ErrUnavailable)
	assert.Empty(t, dir.releases, "nothing is undone on a guess")
	assert.Equal(t, "user-1", dir.holder("ada@example.com"))
}

func TestRegisterTakesOverAStaleClaim(t *testing.T) {
	tests := []struct {
		name       string
		claimAge   time.Duration
		userStored bool
		wantCode   api.Code // "" when the new registration wins
	}{
		{name: "stale, no user: its registration died", claimAge: 31 * time.Second},
		{name: "young, no user: its registration may still finish", claimAge: 29 * time.Second, wantCode: api.CodeEmailTaken},
		{name: "old, with its user", claimAge: time.Hour, userStored: true, wantCode: api.CodeEmailTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, dir := newTestRegistry(t)
			require.NoError(t, dir.ClaimEmail(t.Context(), "ada@example.com", EmailClaim{UserID: "dead-1", ClaimedAt: testNow.Add(-tt.claimAge)}))
			if tt.userStored {
				require.NoError(t, dir.Insert(t.Context(), User{ID: "dead-1", Email: "ada@example.com"}))
			}

			u, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "ada@example.com"})

			if tt.wantCode != "" {
				apitest.RequireCode(t, err, tt.wantCode)
				assert.Equal(t, "dead-1", dir.holder("ada@example.com"))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, u.ID, dir.holder("ada@example.com"), "the email now belongs to a stored user")
			assert.Contains(t, dir.users, u.ID)
		})
	}
}

func TestRegisterStepsInOrder(t *testing.T) {
	reg, _ := newTestRegistry(t)
	var steps []string
	reg.Step = func(name string) { steps = append(steps, name) }

	_, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "ada@example.com"})

	require.NoError(t, err)
	assert.Equal(t, []string{StepEmailClaimed, StepUserStored}, steps)
}

// hangingReads is a directory whose user reads wait for their context.
type hangingReads struct{ *fakeDirectory }

func (d hangingReads) User(ctx context.Context, _ string) (User, error) {
	<-ctx.Done()
	return User{}, ctx.Err()
}

func TestRegisterReadBackIsBounded(t *testing.T) {
	dir := newFakeDirectory()
	dir.insertErr = context.DeadlineExceeded
	reg := &Registry{Store: hangingReads{dir}, Now: func() time.Time { return testNow }, NewID: func() string { return "user-1" }, StaleClaim: time.Minute, Timeout: 20 * time.Millisecond}

	_, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "ada@example.com"})

	require.ErrorIs(t, err, context.DeadlineExceeded, "the read-back gave up at its own deadline instead of hanging")
	assert.Equal(t, "user-1", dir.holder("ada@example.com"), "an unresolved outcome keeps the claim for the stale takeover")
	assert.Equal(t, 30*time.Millisecond, reg.WorstCase())
}
