package sidecar_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
	"github.com/ordermesh/ordermesh/apps/internal/sidecar/sidecartest"
)

// flavors are the two stores the apps run on; every contract test runs
// against both.
var flavors = []struct {
	name   string
	flavor sidecartest.Flavor
}{
	{"redis", sidecartest.FlavorRedis},
	{"postgresql", sidecartest.FlavorPostgreSQL},
}

// newStore starts a fake sidecar with one store and connects to it the way
// the apps do.
func newStore(t *testing.T, flavor sidecartest.Flavor, opts ...sidecartest.Option) (*sidecar.Store, *sidecartest.Sidecar) {
	t.Helper()
	fake := sidecartest.Start(t, []sidecartest.StoreConfig{{Name: "s", Flavor: flavor, Outbox: "orders"}}, opts...)
	client, err := sidecar.Connect(fake.Address, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(client.Close)
	return sidecar.NewStore(client, "s"), fake
}

type doc struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}

func TestInsertIsInsertOnly(t *testing.T) {
	for _, f := range flavors {
		t.Run(f.name, func(t *testing.T) {
			s, fake := newStore(t, f.flavor)
			require.NoError(t, s.Insert(t.Context(), "k", doc{ID: "first"}, 0))

			err := s.Insert(t.Context(), "k", doc{ID: "second"}, 0)

			assert.ErrorIs(t, err, sidecar.ErrConflict)
			got, _ := fake.Value("s", "k")
			assert.JSONEq(t, `{"id":"first","n":0}`, string(got), "the first value stays")
		})
	}
}

// A save whose answer was lost, or that the sidecar retried after it had
// committed, is read back: the value written is this writer's, so it is not
// a conflict.
func TestInsertReadsBackAnAmbiguousOutcome(t *testing.T) {
	tests := []struct {
		name    string
		fault   sidecartest.Fault
		wantErr error
		stored  bool
	}{
		{"answer lost after the write", sidecartest.Fault{Err: status.Error(codes.Unavailable, "connection reset"), AfterApply: true}, nil, true},
		{"retried save finds its own write", sidecartest.Fault{Err: status.Error(codes.Internal, "failed to set key k"), AfterApply: true}, nil, true},
		{"store down, nothing written", sidecartest.Fault{Err: status.Error(codes.Unavailable, "store down")}, sidecar.ErrUnavailable, false},
	}
	for _, f := range flavors {
		for _, tt := range tests {
			t.Run(f.name+"/"+tt.name, func(t *testing.T) {
				s, fake := newStore(t, f.flavor)
				fake.SetFault(func(c sidecartest.Call) sidecartest.Fault {
					if c.Method == "SaveState" {
						return tt.fault
					}
					return sidecartest.Fault{}
				})

				err := s.Insert(t.Context(), "k", doc{ID: "mine"}, 0)

				if tt.wantErr != nil {
					assert.ErrorIs(t, err, tt.wantErr)
				} else {
					assert.NoError(t, err)
				}
				_, found := fake.Value("s", "k")
				assert.Equal(t, tt.stored, found)
			})
		}
	}
}

func TestUpdateChecksTheETag(t *testing.T) {
	for _, f := range flavors {
		t.Run(f.name, func(t *testing.T) {
			s, fake := newStore(t, f.flavor)
			require.NoError(t, s.Insert(t.Context(), "k", doc{ID: "a", N: 1}, 0))
			it, found, err := s.Get(t.Context(), "k")
			require.NoError(t, err)
			require.True(t, found)
			require.NoError(t, s.Update(t.Context(), "k", doc{ID: "a", N: 2}, it.ETag), "the current ETag passes")

			err = s.Update(t.Context(), "k", doc{ID: "a", N: 3}, it.ETag)

			assert.ErrorIs(t, err, sidecar.ErrConflict, "a stale ETag is refused")
			got, _ := fake.Value("s", "k")
			assert.JSONEq(t, `{"id":"a","n":2}`, string(got))
		})
	}
}

// Dapr answers an ETag mismatch on a single save with gRPC Aborted; that
// code, and only that one, is a conflict.
func TestConflictIsAborted(t *testing.T) {
	tests := []struct {
		code codes.Code
		want error
	}{
		{codes.Aborted, sidecar.ErrConflict},
		{codes.Internal, sidecar.ErrUnavailable},
		{codes.Unavailable, sidecar.ErrUnavailable},
		{codes.AlreadyExists, sidecar.ErrUnavailable},
		{codes.FailedPrecondition, sidecar.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			s, fake := newStore(t, sidecartest.FlavorRedis)
			fake.SetFault(func(sidecartest.Call) sidecartest.Fault {
				return sidecartest.Fault{Err: status.Error(tt.code, "injected")}
			})

			err := s.Update(t.Context(), "k", doc{ID: "a"}, "1")

			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestDeleteChecksTheETag(t *testing.T) {
	for _, f := range flavors {
		t.Run(f.name, func(t *testing.T) {
			s, fake := newStore(t, f.flavor)
			require.NoError(t, s.Insert(t.Context(), "k", doc{ID: "a"}, 0))
			it, _, err := s.Get(t.Context(), "k")
			require.NoError(t, err)
			require.NoError(t, s.Update(t.Context(), "k", doc{ID: "b"}, it.ETag))

			err = s.Delete(t.Context(), "k", it.ETag)

			assert.ErrorIs(t, err, sidecar.ErrConflict)
			_, found := fake.Value("s", "k")
			assert.True(t, found)
		})
	}
}

func TestInsertWithTTLExpires(t *testing.T) {
	var now atomic.Pointer[time.Time]
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	now.Store(&start)
	s, fake := newStore(t, sidecartest.FlavorRedis, sidecartest.WithClock(func() time.Time { return *now.Load() }))

	require.NoError(t, s.Insert(t.Context(), "k", doc{ID: "a"}, 24*time.Hour))

	assert.Equal(t, start.Add(24*time.Hour), fake.ExpiresAt("s", "k"))
	later := start.Add(24*time.Hour + time.Second)
	now.Store(&later)
	_, found, err := s.Get(t.Context(), "k")
	require.NoError(t, err)
	assert.False(t, found, "expired")
}

func TestInsertWithoutTTLStays(t *testing.T) {
	s, fake := newStore(t, sidecartest.FlavorRedis)

	require.NoError(t, s.Insert(t.Context(), "k", doc{ID: "a"}, 0))

	assert.True(t, fake.ExpiresAt("s", "k").IsZero())
}

func TestReadAllKeepsOrderAndSkipsMissing(t *testing.T) {
	s, _ := newStore(t, sidecartest.FlavorRedis)
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, s.Insert(t.Context(), "doc/"+id, doc{ID: id}, 0))
	}

	got, err := sidecar.ReadAll[doc](t.Context(), s, []string{"doc/c", "doc/missing", "doc/a"})

	require.NoError(t, err)
	assert.Equal(t, []doc{{ID: "c"}, {ID: "a"}}, got)
}

func TestReadMissingIsNotFound(t *testing.T) {
	s, _ := newStore(t, sidecartest.FlavorRedis)
	var d doc
	_, err := s.Read(t.Context(), "nothing", &d)
	assert.ErrorIs(t, err, sidecar.ErrNotFound)
}

// On PostgreSQL a transaction is atomic and its outbox event is published
// only when it commits; an ETag mismatch inside it is an internal error.
func TestTransactOnPostgreSQL(t *testing.T) {
	s, fake := newStore(t, sidecartest.FlavorPostgreSQL)
	require.NoError(t, s.Insert(t.Context(), "order/1", doc{ID: "1"}, 0))
	it, _, err := s.Get(t.Context(), "order/1")
	require.NoError(t, err)
	projection := map[string]string{"outbox.projection": "true"}

	err = s.Transact(t.Context(), nil,
		sidecar.Op{Key: "order/2", Value: doc{ID: "2"}},
		sidecar.Op{Key: "order/1", Value: doc{ID: "1", N: 1}, ETag: "stale"},
		sidecar.Op{Key: "order/1", Value: doc{ID: "event"}, Meta: projection},
	)

	require.Error(t, err)
	assert.NotErrorIs(t, err, sidecar.ErrConflict, "Dapr answers Internal inside a transaction")
	_, found := fake.Value("s", "order/2")
	assert.False(t, found, "rolled back")
	assert.Empty(t, fake.Published(), "no event for a failed transaction")

	require.NoError(t, s.Transact(t.Context(), nil,
		sidecar.Op{Key: "order/1", Value: doc{ID: "1", N: 1}, ETag: it.ETag},
		sidecar.Op{Key: "order/1", Value: doc{ID: "event"}, Meta: projection},
	))
	got, _ := fake.Value("s", "order/1")
	assert.JSONEq(t, `{"id":"1","n":1}`, string(got), "the projection is not stored")
	require.Len(t, fake.Published(), 1)
	assert.JSONEq(t, `{"id":"event","n":0}`, string(fake.Published()[0].Data))
}

func TestModifyLosesNoUpdateUnderContention(t *testing.T) {
	for _, f := range flavors {
		t.Run(f.name, func(t *testing.T) {
			s, _ := newStore(t, f.flavor)
			const writers = 40
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for range writers {
				wg.Go(func() {
					_, err := sidecar.Modify(t.Context(), s, "counter", func(d *doc, _ bool) error {
						d.N++
						return nil
					})
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}

			var d doc
			_, err := s.Read(t.Context(), "counter", &d)
			require.NoError(t, err)
			assert.Equal(t, writers, d.N)
		})
	}
}

func TestModifyUnchangedWritesNothing(t *testing.T) {
	s, fake := newStore(t, sidecartest.FlavorRedis)
	require.NoError(t, s.Insert(t.Context(), "k", doc{ID: "a", N: 7}, 0))
	saves := fake.Calls("SaveState")

	got, err := sidecar.Modify(t.Context(), s, "k", func(*doc, bool) error { return sidecar.ErrUnchanged })

	require.NoError(t, err)
	assert.Equal(t, doc{ID: "a", N: 7}, got)
	assert.Equal(t, saves, fake.Calls("SaveState"))
}

// A key changed by someone else before every write exhausts the budget: the
// answer is ErrContended (passing), after exactly DefaultRetry.Attempts writes.
func TestModifyGivesUpAfterTheBudget(t *testing.T) {
	s, fake := newStore(t, sidecartest.FlavorRedis)
	require.NoError(t, s.Insert(t.Context(), "k", doc{ID: "a"}, 0))
	saves := fake.Calls("SaveState")
	n := 0

	_, err := sidecar.Modify(t.Context(), s, "k", func(d *doc, _ bool) error {
		n++
		other, _ := json.Marshal(doc{ID: "other", N: n})
		fake.Put("s", "k", other) // another writer gets in between
		d.N = -1
		return nil
	})

	assert.ErrorIs(t, err, sidecar.ErrContended)
	assert.NotErrorIs(t, err, sidecar.ErrConflict)
	assert.Equal(t, sidecar.DefaultRetry.Attempts, fake.Calls("SaveState")-saves)
}

func TestModifyCreatesAMissingKeyOnce(t *testing.T) {
	s, _ := newStore(t, sidecartest.FlavorRedis)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := sidecar.Modify(t.Context(), s, "k", func(d *doc, found bool) error {
				if found {
					return sidecar.ErrUnchanged
				}
				d.ID = "created"
				return nil
			})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	var d doc
	_, err := s.Read(t.Context(), "k", &d)
	require.NoError(t, err)
	assert.Equal(t, "created", d.ID)
}

// ModifyFrom writes from the caller's read: one write and no read while
// nobody changed the key since; a read made stale by another writer is not
// written over (its ETag check fails) and the change is applied to a fresh
// read, losing neither update.
func TestModifyFromWritesFromTheCallersRead(t *testing.T) {
	tests := []struct {
		name      string
		meanwhile *doc // another writer's value between the read and the write
		want      doc
		reads     int
	}{
		{"fresh read: no second read", nil, doc{ID: "a", N: 8}, 0},
		{"stale read: read again, nothing lost", &doc{ID: "a", N: 100}, doc{ID: "a", N: 101}, 1},
	}
	for _, tt := range tests {
		for _, f := range flavors {
			t.Run(tt.name+"/"+f.name, func(t *testing.T) {
				s, fake := newStore(t, f.flavor)
				require.NoError(t, s.Insert(t.Context(), "k", doc{ID: "a", N: 7}, 0))
				var have doc
				etag, err := s.Read(t.Context(), "k", &have)
				require.NoError(t, err)
				if tt.meanwhile != nil {
					_, err := sidecar.Modify(t.Context(), s, "k", func(d *doc, _ bool) error { *d = *tt.meanwhile; return nil })
					require.NoError(t, err)
				}
				reads, saves := fake.Calls("GetState"), fake.Calls("SaveState")

				got, err := sidecar.ModifyFrom(t.Context(), s, "k", have, etag, func(d *doc, found bool) error {
					require.True(t, found)
					d.N++
					return nil
				})

				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				var stored doc
				_, err = s.Read(t.Context(), "k", &stored)
				require.NoError(t, err)
				assert.Equal(t, tt.want, stored)
				assert.Equal(t, tt.reads, fake.Calls("GetState")-reads-1, "reads by ModifyFrom (the check's own read not counted)")
				assert.Equal(t, tt.reads+1, fake.Calls("SaveState")-saves, "writes by ModifyFrom")
			})
		}
	}
}

func TestConnectSendsTheAPIToken(t *testing.T) {
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"right token", "secret", true},
		{"no token", "", false},
		{"wrong token", "guess", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := sidecartest.Start(t, []sidecartest.StoreConfig{{Name: "s"}}, sidecartest.WithToken("secret"))
			client, err := sidecar.Connect(fake.Address, tt.token, slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			t.Cleanup(client.Close)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()

			err = sidecar.NewStore(client, "s").Ping(ctx)

			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Equal(t, codes.Unauthenticated, status.Code(unwrapStatus(err)))
			}
		})
	}
}

// unwrapStatus finds the gRPC status error inside err.
func unwrapStatus(err error) error {
	for e := err; e != nil; {
		if _, ok := status.FromError(e); ok {
			return e
		}
		u, ok := e.(interface{ Unwrap() []error })
		if !ok {
			return err
		}
		for _, inner := range u.Unwrap() {
			if _, ok := status.FromError(inner); ok {
				return inner
			}
		}
		return err
	}
	return err
}
