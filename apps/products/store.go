package main

import (
	"context"
	"errors"
	"strconv"

	"github.com/ordermesh/ordermesh/apps/internal/sidecar"
)

// stateCatalog keeps the catalogue in a Dapr state store:
//
//	product/<id>      a product with its stock and holds (productRecord)
//	catalog           the catalogue's head: how many positions are taken
//	catalog/<n>       page n of the catalogue: the product ids at positions
//	                  n*catalogPageSize and on ("" where a claimed position
//	                  was never written)
//
// Every key is bounded: a page holds catalogPageSize ids, a product at most
// maxHolds holds.
type stateCatalog struct{ store *sidecar.Store }

const (
	catalogHeadKey  = "catalog"
	catalogPageSize = 100
)

type catalogHead struct {
	Count int64 `json:"count"`
}

func pageKey(n int64) string { return "catalog/" + strconv.FormatInt(n, 10) }

func (s stateCatalog) Product(ctx context.Context, id string) (productRecord, error) {
	var p productRecord
	_, err := s.store.Read(ctx, "product/"+id, &p)
	if errors.Is(err, sidecar.ErrNotFound) {
		return productRecord{}, ErrNotFound
	}
	return p, err
}

func (s stateCatalog) InsertProduct(ctx context.Context, p productRecord) error {
	return s.store.Insert(ctx, "product/"+p.ID, p, 0)
}

func (s stateCatalog) ChangeProduct(ctx context.Context, id string, change func(p *productRecord) error) (productRecord, error) {
	p, err := sidecar.Modify(ctx, s.store, "product/"+id, func(p *productRecord, found bool) error {
		if !found {
			return ErrNotFound
		}
		err := change(p)
		if errors.Is(err, ErrUnchanged) {
			return sidecar.ErrUnchanged
		}
		return err
	})
	return p, contendedErr(err)
}

func (s stateCatalog) Products(ctx context.Context, ids []string) ([]productRecord, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = "product/" + id
	}
	return sidecar.ReadAll[productRecord](ctx, s.store, keys)
}

func (s stateCatalog) ClaimCatalogPosition(ctx context.Context) (int64, error) {
	var pos int64
	_, err := sidecar.Modify(ctx, s.store, catalogHeadKey, func(h *catalogHead, _ bool) error {
		pos = h.Count
		h.Count++
		return nil
	})
	return pos, contendedErr(err)
}

func (s stateCatalog) SetCatalogEntry(ctx context.Context, pos int64, id string) error {
	_, err := sidecar.Modify(ctx, s.store, pageKey(pos/catalogPageSize), func(page *[]string, _ bool) error {
		if len(*page) < catalogPageSize {
			*page = append(*page, make([]string, catalogPageSize-len(*page))...)
		}
		if (*page)[pos%catalogPageSize] == id {
			return sidecar.ErrUnchanged
		}
		(*page)[pos%catalogPageSize] = id
		return nil
	})
	return contendedErr(err)
}

func (s stateCatalog) CatalogEntries(ctx context.Context, pos int64, limit int) ([]string, int64, bool, error) {
	var head catalogHead
	if _, err := s.store.Read(ctx, catalogHeadKey, &head); err != nil && !errors.Is(err, sidecar.ErrNotFound) {
		return nil, 0, false, err
	}
	end := min(pos+int64(limit), head.Count)
	if pos >= end {
		return nil, pos, false, nil
	}
	var keys []string
	for n := pos / catalogPageSize; n <= (end-1)/catalogPageSize; n++ {
		keys = append(keys, pageKey(n))
	}
	items, err := s.store.GetBulk(ctx, keys)
	if err != nil {
		return nil, 0, false, err
	}
	pages := map[string][]string{}
	for _, it := range items {
		var page []string
		if err := it.Decode(&page); err != nil {
			return nil, 0, false, err
		}
		pages[it.Key] = page
	}
	var ids []string
	for p := pos; p < end; p++ {
		page := pages[pageKey(p/catalogPageSize)]
		if i := p % catalogPageSize; int(i) < len(page) && page[i] != "" {
			ids = append(ids, page[i])
		}
	}
	return ids, end, end < head.Count, nil
}

func contendedErr(err error) error {
	if errors.Is(err, sidecar.ErrContended) {
		return errors.Join(ErrContended, err)
	}
	return err
}
