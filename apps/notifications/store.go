package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// stateInbox keeps each notification under "notification/<id>" (written
// insert-only, so two deliveries of one event cannot both write it), each
// user's list of notification ids under "inbox/<user id>" (appended with an
// ETag check, skipping an id already there), and the dead letters in
// "dead-letters". Both steps are idempotent, so a delivery that failed
// between them is completed by its redelivery.
type stateInbox struct {
	store *sidecar.Store
	// maxDeadLetters bounds the dead-letter list; the oldest go first.
	maxDeadLetters int
}

const deadLettersKey = "dead-letters"

func (s stateInbox) Add(ctx context.Context, n Notification) (bool, error) {
	added := true
	if err := s.store.Insert(ctx, "notification/"+n.ID, n, 0); err != nil {
		if !errors.Is(err, sidecar.ErrConflict) {
			return false, err
		}
		added = false // stored by an earlier delivery; make sure it is listed
	}
	if _, err := appendOnce(ctx, s.store, "inbox/"+n.UserID, n.ID, func(id string) bool { return id == n.ID }, 0); err != nil {
		return false, err
	}
	return added, nil
}

func (s stateInbox) List(ctx context.Context, userID string) ([]Notification, error) {
	var ids []string
	if _, err := read(ctx, s.store, "inbox/"+userID, &ids); err != nil {
		return nil, err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = "notification/" + id
	}
	return sidecar.ReadAll[Notification](ctx, s.store, keys)
}

func (s stateInbox) AddDeadLetter(ctx context.Context, d DeadLetter) (bool, error) {
	return appendOnce(ctx, s.store, deadLettersKey, d, func(x DeadLetter) bool { return x.EventID == d.EventID }, s.maxDeadLetters)
}

func (s stateInbox) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var list []DeadLetter
	_, err := read(ctx, s.store, deadLettersKey, &list)
	if list == nil {
		list = []DeadLetter{}
	}
	return list, err
}

// appendOnce adds v to the list stored at key unless an element matches
// already. It re-reads and retries when another writer changed the list.
func appendOnce[T any](ctx context.Context, store *sidecar.Store, key string, v T, same func(T) bool, max int) (bool, error) {
	for attempt := 1; ; attempt++ {
		var list []T
		etag, err := read(ctx, store, key, &list)
		if err != nil {
			return false, err
		}
		for _, x := range list {
			if same(x) {
				return false, nil
			}
		}
		list = append(list, v)
		if max > 0 && len(list) > max {
			list = list[len(list)-max:]
		}
		if etag == "" {
			err = store.Insert(ctx, key, list, 0)
		} else {
			err = store.Update(ctx, key, list, etag)
		}
		if !errors.Is(err, sidecar.ErrConflict) {
			return err == nil, err
		}
		if attempt == 20 {
			return false, fmt.Errorf("append to %s: too many concurrent writers: %w", key, err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

// read is Store.Read with a missing key read as empty (etag "").
func read(ctx context.Context, store *sidecar.Store, key string, v any) (etag string, err error) {
	etag, err = store.Read(ctx, key, v)
	if errors.Is(err, sidecar.ErrNotFound) {
		return "", nil
	}
	return etag, err
}
