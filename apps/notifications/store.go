package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// stateInbox keeps notifications and dead letters in a Dapr state store, one
// record per entry and never a key that grows with their number:
//
//   - "notification/<id>": a notification with its sequence number in its
//     user's log, written insert-only, so two deliveries of one event cannot
//     both write it.
//   - "inbox/<user id>/…": the user's log (see seqLog): a head holding the
//     next sequence number, and pages of at most pageSize entries.
//   - "deadletter/<sha256 of the event id>": a dead letter, insert-only (so
//     each event is kept once), listed by the log "deadletters/…", which keeps
//     only the newest maxDeadLetters: older pages and their records are
//     deleted as new ones arrive.
//
// Every step is idempotent, so a delivery that failed half-way is completed by
// its redelivery.
type stateInbox struct {
	store *sidecar.Store
	// maxDeadLetters bounds the dead letters kept (rounded up to whole pages).
	maxDeadLetters int64
}

// pageSize is how many entries one page key of a log holds, and the largest
// page a client may ask for.
const pageSize = 100

// record is what the inbox stores under each notification or dead letter key:
// the entry and its place in its log.
type record[T any] struct {
	Seq   int64 `json:"seq"`
	Entry T     `json:"entry"`
}

func (s stateInbox) inbox(userID string) seqLog {
	return seqLog{store: s.store, prefix: "inbox/" + userID}
}

func (s stateInbox) deadLetters() seqLog {
	return seqLog{store: s.store, prefix: "deadletters", keep: s.maxDeadLetters}
}

func (s stateInbox) Add(ctx context.Context, n Notification) (bool, error) {
	return addOnce(ctx, s.store, s.inbox(n.UserID), "notification/"+n.ID, n)
}

func (s stateInbox) List(ctx context.Context, userID string, from int64, limit int) (Page[Notification], error) {
	return readPage[Notification](ctx, s.store, s.inbox(userID), from, limit)
}

func (s stateInbox) AddDeadLetter(ctx context.Context, d DeadLetter) (bool, error) {
	sum := sha256.Sum256([]byte(d.EventID))
	return addOnce(ctx, s.store, s.deadLetters(), "deadletter/"+hex.EncodeToString(sum[:]), d)
}

func (s stateInbox) DeadLetters(ctx context.Context, from int64, limit int) (Page[DeadLetter], error) {
	return readPage[DeadLetter](ctx, s.store, s.deadLetters(), from, limit)
}

// addOnce stores v under key, once, and lists it in log. A record already
// there (an earlier delivery, or a concurrent one) keeps its place: it is
// only made sure to be listed, and added is false.
func addOnce[T any](ctx context.Context, store *sidecar.Store, log seqLog, key string, v T) (added bool, err error) {
	// The record and the log's head in one round trip: the head is what a
	// new record changes next.
	items, err := store.GetBulk(ctx, []string{key, log.headKey()})
	if err != nil {
		return false, err
	}
	var have record[T]
	head, headFound := sidecar.Item{}, false
	for _, it := range items {
		switch it.Key {
		case key:
			if err := it.Decode(&have); err != nil {
				return false, err
			}
			return false, log.index(ctx, have.Seq, key)
		case log.headKey():
			head, headFound = it, true
		}
	}
	seq, err := log.next(ctx, head, headFound)
	if err != nil {
		return false, err
	}
	added = true
	if err := store.Insert(ctx, key, record[T]{Seq: seq, Entry: v}, 0); err != nil {
		if !errors.Is(err, sidecar.ErrConflict) {
			return false, err
		}
		// Another delivery stored it first (or this one did and its answer
		// was lost): the record that is there decides the place.
		if _, err := store.Read(ctx, key, &have); err != nil {
			return false, err
		}
		seq, added = have.Seq, false
	}
	if err := log.index(ctx, seq, key); err != nil {
		return false, err
	}
	return added, log.trim(ctx)
}

// Page is one page of a list, and where the next one starts (More is false on
// the last page).
type Page[T any] struct {
	Items []T
	Next  int64
	More  bool
}

// readPage reads up to limit entries of log from sequence number from on.
// It reads the head, at most two page keys and the entries themselves, so
// its cost does not depend on how long the log is. A page may hold fewer than
// limit entries (numbers taken by a delivery that failed leave gaps) while
// More is true.
func readPage[T any](ctx context.Context, store *sidecar.Store, log seqLog, from int64, limit int) (Page[T], error) {
	out := Page[T]{Items: []T{}}
	head, _, err := log.head(ctx)
	if err != nil {
		return out, err
	}
	from = max(from, head.First*pageSize)
	var keys []string
	var seqs []int64
	next := from
	for page := from / pageSize; page < from/pageSize+2 && len(keys) < limit && page*pageSize < head.Next; page++ {
		var entries []logEntry
		if _, err := readOrEmpty(ctx, store, log.pageKey(page), &entries); err != nil {
			return out, err
		}
		for _, e := range entries {
			if e.Seq >= from && len(keys) < limit {
				keys = append(keys, e.Key)
				seqs = append(seqs, e.Seq)
			}
		}
		next = (page + 1) * pageSize
	}
	if len(keys) == limit {
		next = seqs[len(seqs)-1] + 1
	}
	recs, err := sidecar.ReadAll[record[T]](ctx, store, keys)
	if err != nil {
		return out, err
	}
	for _, r := range recs {
		out.Items = append(out.Items, r.Entry)
	}
	out.Next, out.More = next, next < head.Next
	return out, nil
}

// seqLog is an append-only list of keys split into pages of pageSize, so no
// key grows with the list:
//
//   - "<prefix>/head": the next sequence number to hand out, and the first
//     page still kept.
//   - "<prefix>/page/<n>": the entries numbered n×pageSize to
//     (n+1)×pageSize−1 that were indexed, in order.
//
// An entry gets its number first (next) and is indexed on the page its
// number names (index), idempotently: a redelivery finds it there. With keep
// above zero, trim deletes whole pages (and the records they list) once
// they are more than keep entries behind the head.
type seqLog struct {
	store  *sidecar.Store
	prefix string
	keep   int64
}

type logHead struct {
	Next  int64 `json:"next"`
	First int64 `json:"first_page"`
}

type logEntry struct {
	Seq int64  `json:"seq"`
	Key string `json:"key"`
}

func (l seqLog) headKey() string { return l.prefix + "/head" }

func (l seqLog) pageKey(n int64) string { return l.prefix + "/page/" + strconv.FormatInt(n, 10) }

func (l seqLog) head(ctx context.Context) (logHead, string, error) {
	var h logHead
	etag, err := readOrEmpty(ctx, l.store, l.headKey(), &h)
	return h, etag, err
}

// next hands out the next sequence number, starting from the head as the
// caller read it (found false: there was none yet).
func (l seqLog) next(ctx context.Context, head sidecar.Item, found bool) (int64, error) {
	take := func(h *logHead, _ bool) error {
		h.Next++
		return nil
	}
	var h logHead
	var err error
	if found {
		if err := head.Decode(&h); err != nil {
			return 0, err
		}
		h, err = sidecar.ModifyFrom(ctx, l.store, l.headKey(), h, head.ETag, take)
	} else {
		h, err = sidecar.Modify(ctx, l.store, l.headKey(), take)
	}
	return h.Next - 1, err
}

// index lists key with number seq on its page, unless it is there already.
func (l seqLog) index(ctx context.Context, seq int64, key string) error {
	_, err := sidecar.Modify(ctx, l.store, l.pageKey(seq/pageSize), func(entries *[]logEntry, _ bool) error {
		i, found := slices.BinarySearchFunc(*entries, seq, func(e logEntry, s int64) int { return cmpInt(e.Seq, s) })
		if found {
			return sidecar.ErrUnchanged
		}
		*entries = slices.Insert(*entries, i, logEntry{Seq: seq, Key: key})
		return nil
	})
	return err
}

// trim deletes the pages (and the records they list) that fell more than
// keep entries behind the head, oldest first, moving the head's first page
// on after each; a trim cut short is finished by the next one.
func (l seqLog) trim(ctx context.Context) error {
	if l.keep <= 0 {
		return nil
	}
	for {
		h, _, err := l.head(ctx)
		if err != nil {
			return err
		}
		if (h.First+1)*pageSize > h.Next-l.keep {
			return nil
		}
		var entries []logEntry
		if _, err := readOrEmpty(ctx, l.store, l.pageKey(h.First), &entries); err != nil {
			return err
		}
		for _, e := range entries {
			if err := l.store.Delete(ctx, e.Key, ""); err != nil {
				return err
			}
		}
		if err := l.store.Delete(ctx, l.pageKey(h.First), ""); err != nil {
			return err
		}
		first := h.First + 1
		if _, err := sidecar.Modify(ctx, l.store, l.headKey(), func(h *logHead, _ bool) error {
			if h.First >= first {
				return sidecar.ErrUnchanged
			}
			h.First = first
			return nil
		}); err != nil {
			return err
		}
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readOrEmpty is Store.Read with a missing key read as empty (etag "").
func readOrEmpty(ctx context.Context, store *sidecar.Store, key string, v any) (etag string, err error) {
	etag, err = store.Read(ctx, key, v)
	if errors.Is(err, sidecar.ErrNotFound) {
		return "", nil
	}
	return etag, err
}
