package main

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

// newStateDirectory is the real adapter over a fake sidecar with Redis's
// semantics, as users runs on statestore.
func newStateDirectory(t *testing.T) (stateDirectory, *sidecartest.Sidecar) {
	t.Helper()
	fake := sidecartest.Start(t, []sidecartest.StoreConfig{{Name: "statestore", Flavor: sidecartest.FlavorRedis}})
	client, err := sidecar.Connect(fake.Address, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(client.Close)
	return stateDirectory{sidecar.NewStore(client, "statestore")}, fake
}

func TestStateDirectoryClaimIsInsertOnly(t *testing.T) {
	d, _ := newStateDirectory(t)
	require.NoError(t, d.ClaimEmail(t.Context(), "ada@example.com", EmailClaim{UserID: "u-1", ClaimedAt: testNow}))

	err := d.ClaimEmail(t.Context(), "ada@example.com", EmailClaim{UserID: "u-2", ClaimedAt: testNow})

	assert.ErrorIs(t, err, ErrEmailTaken)
	claim, _, err := d.EmailClaim(t.Context(), "ada@example.com")
	require.NoError(t, err)
	assert.Equal(t, "u-1", claim.UserID)
	assert.True(t, claim.ClaimedAt.Equal(testNow))
}

func TestStateDirectoryTakeOverAndReleaseCheckTheETag(t *testing.T) {
	d, _ := newStateDirectory(t)
	require.NoError(t, d.ClaimEmail(t.Context(), "ada@example.com", EmailClaim{UserID: "u-1", ClaimedAt: testNow}))
	_, etag, err := d.EmailClaim(t.Context(), "ada@example.com")
	require.NoError(t, err)
	require.NoError(t, d.TakeOverEmail(t.Context(), "ada@example.com", EmailClaim{UserID: "u-2", ClaimedAt: testNow}, etag))

	assert.ErrorIs(t, d.TakeOverEmail(t.Context(), "ada@example.com", EmailClaim{UserID: "u-3"}, etag), ErrConflict, "a second takeover with the old ETag loses")
	assert.ErrorIs(t, d.ReleaseEmail(t.Context(), "ada@example.com", etag), ErrConflict, "a release of the old claim leaves the new one")
	claim, etag, err := d.EmailClaim(t.Context(), "ada@example.com")
	require.NoError(t, err)
	assert.Equal(t, "u-2", claim.UserID)
	require.NoError(t, d.ReleaseEmail(t.Context(), "ada@example.com", etag))
	_, _, err = d.EmailClaim(t.Context(), "ada@example.com")
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestStateDirectoryReadsClaimsWrittenAsAnID(t *testing.T) {
	d, fake := newStateDirectory(t)
	fake.Put("statestore", emailKey("ada@example.com"), []byte(`"u-old"`))

	claim, _, err := d.EmailClaim(t.Context(), "ada@example.com")

	require.NoError(t, err)
	assert.Equal(t, "u-old", claim.UserID)
	assert.True(t, claim.ClaimedAt.IsZero())
}

func TestStateDirectoryUserIsInsertOnly(t *testing.T) {
	d, _ := newStateDirectory(t)
	u := User{ID: "u-1", Name: "Ada", Email: "ada@example.com", CreatedAt: testNow}
	require.NoError(t, d.Insert(t.Context(), u))

	assert.ErrorIs(t, d.Insert(t.Context(), User{ID: "u-1", Name: "Other"}), ErrConflict)
	got, err := d.User(t.Context(), "u-1")
	require.NoError(t, err)
	assert.Equal(t, "Ada", got.Name)
	_, err = d.User(t.Context(), "u-2")
	assert.ErrorIs(t, err, ErrNotFound)
}

// A registration over the real adapter whose writes all land but whose
// answers are all lost: it is resolved by reading back, and succeeds.
func TestRegisterOverTheSidecarWithLostAnswers(t *testing.T) {
	d, fake := newStateDirectory(t)
	fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
		if c.Method == "SaveState" {
			return sidecartest.Fault{Err: fmt.Errorf("deadline exceeded"), AfterApply: true}
		}
		return sidecartest.Fault{}
	})
	reg := &Registry{Store: d, Now: func() time.Time { return testNow }, NewID: func() string { return "u-1" }, StaleClaim: time.Minute}

	u, err := reg.Register(t.Context(), Registration{Name: "Ada", Email: "ada@example.com"})

	require.NoError(t, err)
	assert.Equal(t, "u-1", u.ID)
	claim, _, err := d.EmailClaim(t.Context(), "ada@example.com")
	require.NoError(t, err)
	assert.Equal(t, "u-1", claim.UserID)
}
