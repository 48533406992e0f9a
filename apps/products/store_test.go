package main

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

// newStateCatalog is the real adapter over a fake sidecar with Redis's
// semantics, as products runs on statestore.
func newStateCatalog(t *testing.T) (stateCatalog, *sidecartest.Sidecar) {
	t.Helper()
	fake := sidecartest.Start(t, []sidecartest.StoreConfig{{Name: "statestore", Flavor: sidecartest.FlavorRedis}})
	client, err := sidecar.Connect(fake.Address, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(client.Close)
	return stateCatalog{sidecar.NewStore(client, "statestore")}, fake
}

func TestStateCatalogProductUpdateChecksTheETag(t *testing.T) {
	s, _ := newStateCatalog(t)
	require.NoError(t, s.InsertProduct(t.Context(), Product{ID: "p-1", Stock: 5}))
	_, etag, err := s.Product(t.Context(), "p-1")
	require.NoError(t, err)
	require.NoError(t, s.UpdateProduct(t.Context(), Product{ID: "p-1", Stock: 4}, etag))

	err = s.UpdateProduct(t.Context(), Product{ID: "p-1", Stock: 3}, etag)

	assert.ErrorIs(t, err, ErrConflict)
	p, _, err := s.Product(t.Context(), "p-1")
	require.NoError(t, err)
	assert.Equal(t, int64(4), p.Stock)
}

func TestStateCatalogInsertsAreInsertOnly(t *testing.T) {
	s, _ := newStateCatalog(t)
	require.NoError(t, s.InsertProduct(t.Context(), Product{ID: "p-1", Stock: 5}))
	require.NoError(t, s.InsertReservation(t.Context(), Reservation{OrderID: "o-1", ProductID: "p-1", Quantity: 1}))

	assert.ErrorIs(t, s.InsertProduct(t.Context(), Product{ID: "p-1", Stock: 9}), ErrConflict)
	assert.ErrorIs(t, s.InsertReservation(t.Context(), Reservation{OrderID: "o-1", ProductID: "p-1", Quantity: 2}), ErrConflict)
}
