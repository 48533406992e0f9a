package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// OrderDirectory tells whether orders stored an order. It answers an error
// when it cannot tell; the caller then decides nothing.
type OrderDirectory interface {
	OrderStored(ctx context.Context, orderID string) (bool, error)
}

// Repairer settles holds that orders left behind: an order placed while a
// process died between reserving and storing (or confirming), or whose
// release failed. A hold older than StaleAfter is settled by asking orders:
// the order is stored, so the hold is confirmed; it is not, so the stock goes
// back. StaleAfter must exceed the longest time orders may take between
// reserving and storing (its ORDER_PLACE_DEADLINE): after that, orders never
// stores an order whose reservation it did not see answered in time.
//
// Several replicas may repair at once: a hold is settled by an ETag-checked
// write of its product, which only one of them wins; the others re-read and
// find nothing left to do.
type Repairer struct {
	Catalog    *Catalog
	Orders     OrderDirectory
	StaleAfter time.Duration
	Log        *slog.Logger
}

// Run repairs every interval until ctx ends.
func (r *Repairer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		settled, err := r.RepairOnce(ctx)
		if settled > 0 || err != nil {
			r.Log.InfoContext(ctx, "stale holds settled", "settled", settled, "err", err)
		}
	}
}

// RepairOnce walks the whole catalogue once and settles every stale hold it
// can; it answers how many it settled and what stood in the way.
func (r *Repairer) RepairOnce(ctx context.Context) (settled int, err error) {
	cutoff := r.Catalog.now().Add(-r.StaleAfter)
	var errs []error
	var pos int64
	for {
		ids, next, more, err := r.Catalog.store.CatalogEntries(ctx, pos, maxPageLimit)
		if err != nil {
			return settled, errors.Join(append(errs, err)...)
		}
		recs, err := r.Catalog.store.Products(ctx, ids)
		if err != nil {
			return settled, errors.Join(append(errs, err)...)
		}
		for _, p := range recs {
			for orderID, h := range p.Holds {
				if h.At.After(cutoff) {
					continue
				}
				if err := r.settle(ctx, p.ID, orderID); err != nil {
					errs = append(errs, err)
					continue
				}
				settled++
			}
		}
		if !more {
			return settled, errors.Join(errs...)
		}
		pos = next
	}
}

func (r *Repairer) settle(ctx context.Context, productID, orderID string) error {
	stored, err := r.Orders.OrderStored(ctx, orderID)
	if err != nil {
		return fmt.Errorf("hold of order %s on product %s: ask orders: %w", orderID, productID, err)
	}
	if stored {
		err = r.Catalog.Confirm(ctx, productID, orderID)
	} else {
		err = r.Catalog.Release(ctx, productID, orderID)
	}
	if err != nil {
		return fmt.Errorf("hold of order %s on product %s (stored: %t): %w", orderID, productID, stored, err)
	}
	r.Log.InfoContext(ctx, "stale hold settled", "product_id", productID, "order_id", orderID, "order_stored", stored)
	return nil
}
