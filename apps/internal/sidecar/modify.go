package sidecar

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryBudget is how long a read-modify-write keeps trying after losing ETag
// races: at most Attempts writes, pausing Backoff times the attempt number
// (with jitter) before each retry. It is the one budget of every
// read-modify-write of the apps (Modify).
type RetryBudget struct {
	Attempts int
	Backoff  time.Duration
}

// DefaultRetry is the budget Modify uses: 20 attempts with pauses of
// 2 ms, 4 ms, … (about 0.4 s of pauses in all), enough for a few hundred
// writers of one key across two replicas; past it the caller answers a
// passing failure (409 conflict, or RETRY for an event), never a final one.
var DefaultRetry = RetryBudget{Attempts: 20, Backoff: 2 * time.Millisecond}

// ErrContended means a read-modify-write lost DefaultRetry.Attempts races in
// a row: the key is being changed by too many writers at once. It is a
// passing condition; the caller may try again later.
var ErrContended = errors.New("state contended: too many concurrent writers")

// ErrUnchanged, returned by a Modify change function, means the value needs
// no write (for example the change was applied by an earlier attempt whose
// answer was lost): Modify returns the value as read, with no error.
var ErrUnchanged = errors.New("unchanged")

// Modify reads key into a T, lets change alter it, and writes it back only if
// the key still has the ETag it was read with, or, when the key did not
// exist (found is false), only if it still does not. When another writer got
// there first it reads again and calls change again, within DefaultRetry.
// change must therefore decide from the value it is given each time; it
// returns ErrUnchanged when there is nothing to write, or any other error to
// stop. Modify returns the value as written (or as read, for ErrUnchanged).
func Modify[T any](ctx context.Context, s *Store, key string, change func(v *T, found bool) error) (T, error) {
	return modify(ctx, s, key, DefaultRetry, nil, change)
}

// ModifyFrom is Modify with its first read already made: v is key's value as
// the caller read it moments ago, with etag (so the key existed). The first
// attempt writes without reading again; if someone wrote key meanwhile, that
// write fails its ETag check and ModifyFrom goes on as Modify does, from a
// fresh read. It saves a round trip to the store where the caller read the
// value first to decide whether to change it at all. change must not alter
// what v shares with the caller's copy (maps, slices) in place.
func ModifyFrom[T any](ctx context.Context, s *Store, key string, v T, etag string, change func(v *T, found bool) error) (T, error) {
	return modify(ctx, s, key, DefaultRetry, &read[T]{v: v, etag: etag}, change)
}

// read is a value of a key as read, with its ETag.
type read[T any] struct {
	v    T
	etag string
}

func modify[T any](ctx context.Context, s *Store, key string, budget RetryBudget, first *read[T], change func(v *T, found bool) error) (T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		var (
			v     T
			it    Item
			found bool
			err   error
		)
		if attempt == 1 && first != nil {
			v, it, found = first.v, Item{Key: key, ETag: first.etag}, true
		} else {
			if it, found, err = s.Get(ctx, key); err != nil {
				return zero, err
			}
			if found {
				if err := it.Decode(&v); err != nil {
					return zero, err
				}
			}
		}
		if err := change(&v, found); err != nil {
			if errors.Is(err, ErrUnchanged) {
				return v, nil
			}
			return zero, err
		}
		if found {
			err = s.Update(ctx, key, v, it.ETag)
		} else {
			err = s.insert(ctx, key, v, 0, false)
		}
		if !errors.Is(err, ErrConflict) {
			if err != nil {
				return zero, err
			}
			return v, nil
		}
		if attempt >= budget.Attempts {
			return zero, fmt.Errorf("modify %s/%s: %w", s.name, key, ErrContended)
		}
		if attempt == 1 && first != nil {
			continue // the caller's read was stale: read now, no race lost yet
		}
		pause := time.Duration(attempt) * budget.Backoff
		pause += rand.N(pause/2 + 1)
		select {
		case <-ctx.Done():
			return zero, fmt.Errorf("modify %s/%s: %w", s.name, key, ctx.Err())
		case <-time.After(pause):
		}
	}
}
