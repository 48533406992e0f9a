package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// stateInbox keeps each user's notifications in one key, "inbox/<user id>",
// and the dead letters in "dead-letters". Every change is one ETag-checked
// write of one key, so a notification is either fully recorded or not at all,
// and two deliveries of one event cannot both add it.
type stateInbox struct {
	store *sidecar.Store
	// maxDeadLetters bounds the dead-letter list; the oldest go first.
	maxDeadLetters int
}

const deadLettersKey = "dead-letters"

func (s stateInbox) Add(ctx context.Context, n Notification) (bool, error) {
	key := "inbox/" + n.UserID
	return appendOnce(ctx, s.store, key, n, func(x Notification) bool { return x.ID == n.ID }, 0)
}

func (s stateInbox) List(ctx context.Context, userID string) ([]Notification, error) {
	var list []Notification
	_, err := read(ctx, s.store, "inbox/"+userID, &list)
	if list == nil {
		list = []Notification{}
	}
	return list, err
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

func read(ctx context.Context, store *sidecar.Store, key string, v any) (etag string, err error) {
	it, found, err := store.Get(ctx, key)
	if err != nil || !found {
		return "", err
	}
	return it.ETag, it.Decode(v)
}
