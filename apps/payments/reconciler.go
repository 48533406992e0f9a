package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/api"
)

// Reconcile finishes the payments whose attempt died half-way, so that no
// order stays claimed by a payment that is never stored. Every key listed
// pending for longer than staleAfter is looked at: a key gone (given back,
// expired) or completed is taken off the list; a key still pending and
// untouched for staleAfter is taken over with its ETag (so of several
// replicas reconciling at once exactly one resumes it, and never while a
// request works on it) and resumed like a client's retry would: the same
// payment is stored and announced, or the key is given back if the order
// refuses it. It returns how many keys it resumed.
func (c *Cashier) Reconcile(ctx context.Context) (int, error) {
	pending, err := c.store.Pending(ctx)
	if err != nil {
		return 0, fmt.Errorf("list pending payments: %w", err)
	}
	resumed := 0
	var errs []error
	for _, pk := range pending {
		if c.now().Sub(pk.Since) < c.staleAfter {
			continue
		}
		ok, err := c.reconcileKey(ctx, pk.KeyHash)
		if ok {
			resumed++
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("key %.12s…: %w", pk.KeyHash, err))
		}
	}
	return resumed, errors.Join(errs...)
}

func (c *Cashier) reconcileKey(ctx context.Context, keyHash string) (bool, error) {
	rec, etag, err := c.store.Key(ctx, keyHash)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, c.store.RemovePending(ctx, keyHash)
	case err != nil:
		return false, err
	case rec.Status == keyCompleted:
		return false, c.store.RemovePending(ctx, keyHash)
	case c.now().Sub(rec.TouchedAt) < c.staleAfter:
		return false, nil // an attempt is on it
	}
	attempt, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	_, err = c.takeOver(attempt, keyHash, rec, etag)
	switch {
	case errors.Is(err, ErrConflict):
		return false, nil // another replica or a request took it
	case isRefusal(err):
		return true, nil // the key was given back: nothing to pay
	}
	return true, err
}

// RunReconciler calls Reconcile every interval until ctx ends, logging what
// it did. Each replica runs one; the ETag takeover keeps them from resuming
// one key twice.
func (c *Cashier) RunReconciler(ctx context.Context, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := c.Reconcile(ctx)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "reconciling pending payments", "resumed", n, "err", err)
		} else if n > 0 {
			log.InfoContext(ctx, "resumed pending payments", "resumed", n)
		}
	}
}

// isRefusal reports whether err is an answer to the client (the order
// refused the payment), not a failure.
func isRefusal(err error) bool {
	var e *api.Error
	return errors.As(err, &e)
}
