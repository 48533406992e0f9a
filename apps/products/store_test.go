package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A product is changed only in the version it was read in: a write that
// lost the race reads again and applies its change to the newer version, so
// no change is lost.
func TestStateCatalogChangeProductAppliesEveryChange(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.store.InsertProduct(t.Context(), productRecord{Product: Product{ID: "p-1", Stock: 5}}))
	calls := 0

	_, err := f.store.ChangeProduct(t.Context(), "p-1", func(p *productRecord) error {
		calls++
		if calls == 1 { // another replica writes between our read and write
			_, err := f.store.ChangeProduct(t.Context(), "p-1", func(p *productRecord) error { p.Stock--; return nil })
			require.NoError(t, err)
		}
		p.Stock--
		return nil
	})

	require.NoError(t, err)
	assert.Equal(t, 2, calls, "re-read after the conflict")
	assert.Equal(t, int64(3), f.record(t, "p-1").Stock)
}

func TestStateCatalogChangeProductUnknown(t *testing.T) {
	f := newFixture(t)

	_, err := f.store.ChangeProduct(t.Context(), "p-9", func(*productRecord) error { return nil })

	assert.ErrorIs(t, err, ErrNotFound)
	assert.Empty(t, f.snapshot(), "nothing created")
}

func TestStateCatalogInsertProductIsInsertOnly(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.store.InsertProduct(t.Context(), productRecord{Product: Product{ID: "p-1", Stock: 5}}))

	err := f.store.InsertProduct(t.Context(), productRecord{Product: Product{ID: "p-1", Stock: 9}})

	assert.Error(t, err)
	assert.Equal(t, int64(5), f.record(t, "p-1").Stock)
}

// Concurrent adds each get their own catalogue position.
func TestStateCatalogPositionsAreUnique(t *testing.T) {
	f := newFixture(t)
	seen := make(chan int64, 30)
	for range 30 {
		go func() {
			pos, err := f.store.ClaimCatalogPosition(t.Context())
			assert.NoError(t, err)
			seen <- pos
		}()
	}
	got := map[int64]bool{}
	for range 30 {
		got[<-seen] = true
	}
	assert.Len(t, got, 30)
}
