// Package sidecar talks to an app's Dapr sidecar: the state API (through the
// Go SDK over gRPC) with ETag semantics made explicit, service invocation over
// HTTP, and the sidecar's own health.
package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordermesh/ordermesh/apps/internal/telemetry"
)

// ErrNotFound is what Read answers for a key that does not exist.
var ErrNotFound = errors.New("state not found")

// ErrConflict means a write lost an optimistic-concurrency race: the ETag no
// longer matches, or a key that must be new already exists.
var ErrConflict = errors.New("state conflict")

// Connect opens the gRPC connection to the sidecar without waiting for it: the
// sidecar may start after the app, and readiness reports when it is there.
// token is the sidecar's API token (DAPR_API_TOKEN), sent with every call;
// "" when the sidecar wants none. The SDK's own log lines go to log, as JSON
// at debug level, instead of plain text on stdout.
func Connect(address, token string, log *slog.Logger) (dapr.Client, error) {
	dapr.SetLogger(slog.NewLogLogger(log.Handler(), slog.LevelDebug))
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(telemetry.UnaryClientInterceptor)}
	if token != "" {
		opts = append(opts,
			grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
				return invoker(metadata.AppendToOutgoingContext(ctx, tokenMetadata, token), method, req, reply, cc, o...)
			}),
			grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(metadata.AppendToOutgoingContext(ctx, tokenMetadata, token), desc, cc, method, o...)
			}),
		)
	}
	conn, err := grpc.NewClient(address, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial dapr sidecar at %s: %w", address, err)
	}
	return dapr.NewClientWithConnection(conn), nil
}

// tokenMetadata is the gRPC metadata key of the sidecar's API token.
const tokenMetadata = "dapr-api-token"

// Item is a stored value with the ETag it was read with.
type Item struct {
	Key   string
	Value []byte
	ETag  string
}

// Decode unmarshals the item's JSON value into v.
func (it Item) Decode(v any) error {
	if err := json.Unmarshal(it.Value, v); err != nil {
		return fmt.Errorf("decode state %q: %w", it.Key, err)
	}
	return nil
}

// Store is one Dapr state store as the apps use it. Every write uses
// first-write concurrency: with Dapr's default (last-write) the Redis store
// ignores ETags, and an insert-only write is only honoured for keys that were
// themselves written with first-write.
type Store struct {
	client dapr.Client
	name   string
}

// NewStore returns the state store called name behind the sidecar.
func NewStore(client dapr.Client, name string) *Store {
	return &Store{client: client, name: name}
}

var firstWrite = &dapr.StateOptions{Concurrency: dapr.StateConcurrencyFirstWrite, Consistency: dapr.StateConsistencyStrong}

// Get reads key. found is false when the key does not exist.
func (s *Store) Get(ctx context.Context, key string) (it Item, found bool, err error) {
	res, err := s.client.GetStateWithConsistency(ctx, s.name, key, nil, dapr.StateConsistencyStrong)
	if err != nil {
		return Item{}, false, fmt.Errorf("get %s/%s: %w: %w", s.name, key, ErrUnavailable, err)
	}
	if len(res.Value) == 0 {
		return Item{Key: key}, false, nil
	}
	return Item{Key: key, Value: res.Value, ETag: res.Etag}, true, nil
}

// Read decodes the JSON value of key into v and returns its ETag, or
// ErrNotFound when the key does not exist.
func (s *Store) Read(ctx context.Context, key string, v any) (etag string, err error) {
	it, found, err := s.Get(ctx, key)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%s/%s: %w", s.name, key, ErrNotFound)
	}
	return it.ETag, it.Decode(v)
}

// ReadAll reads keys in one call and decodes the values that exist, in the
// order of keys; missing keys are left out.
func ReadAll[T any](ctx context.Context, s *Store, keys []string) ([]T, error) {
	items, err := s.GetBulk(ctx, keys)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]Item, len(items))
	for _, it := range items {
		byKey[it.Key] = it
	}
	out := make([]T, 0, len(items))
	for _, k := range keys {
		it, ok := byKey[k]
		if !ok {
			continue
		}
		var v T
		if err := it.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// GetBulk reads keys in one call; missing keys are left out of the result.
func (s *Store) GetBulk(ctx context.Context, keys []string) ([]Item, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	res, err := s.client.GetBulkState(ctx, s.name, keys, nil, 8)
	if err != nil {
		return nil, fmt.Errorf("bulk get %s: %w: %w", s.name, ErrUnavailable, err)
	}
	items := make([]Item, 0, len(res))
	for _, r := range res {
		if r.Error != "" {
			return nil, fmt.Errorf("bulk get %s/%s: %s", s.name, r.Key, r.Error)
		}
		if len(r.Value) > 0 {
			items = append(items, Item{Key: r.Key, Value: r.Value, ETag: r.Etag})
		}
	}
	return items, nil
}

// Insert writes key only if it does not exist yet; ErrConflict if it does.
// A ttl above zero lets the store expire the key.
//
// When the write fails or its answer is lost, Insert reads the key back:
// if it holds exactly the value written here, the write was this one's (the
// sidecar's resiliency policy may have retried a save that had committed)
// and Insert succeeds. So a value written with Insert must carry something
// only its writer has (an id it generated); two writers of identical values
// could both be told they won.
func (s *Store) Insert(ctx context.Context, key string, v any, ttl time.Duration) error {
	return s.insert(ctx, key, v, ttl, true)
}

// insert is Insert; readBackOwn says whether finding the very value written
// counts as success. Modify does not want that: two of its writers may
// compute the same value, and it re-reads after a conflict anyway.
func (s *Store) insert(ctx context.Context, key string, v any, ttl time.Duration, readBackOwn bool) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", s.name, key, err)
	}
	item := &dapr.SetStateItem{Key: key, Value: data, Options: firstWrite, Metadata: ttlMetadata(ttl)}
	err = s.client.SaveBulkState(ctx, s.name, item)
	if err == nil {
		return nil
	}
	// Stores report an insert over an existing key as a plain error, not an
	// ETag mismatch, and a lost answer says nothing: look.
	it, found, getErr := s.Get(context.WithoutCancel(ctx), key)
	switch {
	case getErr != nil:
		return fmt.Errorf("insert %s/%s: %w: %w", s.name, key, ErrUnavailable, errors.Join(err, getErr))
	case found && readBackOwn && sameJSON(it.Value, data):
		return nil
	case found:
		return fmt.Errorf("insert %s/%s: %w", s.name, key, ErrConflict)
	case isConflict(err):
		return fmt.Errorf("insert %s/%s: %w", s.name, key, ErrConflict)
	}
	return fmt.Errorf("insert %s/%s: %w: %w", s.name, key, ErrUnavailable, err)
}

// sameJSON reports whether two JSON documents hold the same value (a store
// may give back JSON re-encoded, as PostgreSQL's JSONB does).
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

// Update writes key only if it still has the given ETag; ErrConflict if not.
func (s *Store) Update(ctx context.Context, key string, v any, etag string) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", s.name, key, err)
	}
	item := &dapr.SetStateItem{Key: key, Value: data, Etag: &dapr.ETag{Value: etag}, Options: firstWrite}
	if err := s.client.SaveBulkState(ctx, s.name, item); err != nil {
		if isConflict(err) {
			return fmt.Errorf("update %s/%s: %w", s.name, key, ErrConflict)
		}
		return fmt.Errorf("update %s/%s: %w: %w", s.name, key, ErrUnavailable, err)
	}
	return nil
}

// Delete removes key if it still has the given ETag ("" deletes unconditionally).
func (s *Store) Delete(ctx context.Context, key, etag string) error {
	var tag *dapr.ETag
	if etag != "" {
		tag = &dapr.ETag{Value: etag}
	}
	if err := s.client.DeleteStateWithETag(ctx, s.name, key, tag, nil, firstWrite); err != nil {
		if isConflict(err) {
			return fmt.Errorf("delete %s/%s: %w", s.name, key, ErrConflict)
		}
		return fmt.Errorf("delete %s/%s: %w: %w", s.name, key, ErrUnavailable, err)
	}
	return nil
}

// Op is one write of a state transaction.
type Op struct {
	Key    string
	Value  any    // nil deletes the key
	ETag   string // "" means the key must be new (or, for a delete, any version)
	Meta   map[string]string
	Delete bool
}

// Transact applies ops atomically. Only transactional stores honour this (the
// PostgreSQL store does; Redis does not roll back), and a conflict inside a
// transaction comes back from Dapr as an internal error, not as ErrConflict.
func (s *Store) Transact(ctx context.Context, meta map[string]string, ops ...Op) error {
	stateOps := make([]*dapr.StateOperation, 0, len(ops))
	for _, op := range ops {
		item := &dapr.SetStateItem{Key: op.Key, Options: firstWrite, Metadata: op.Meta}
		if op.ETag != "" {
			item.Etag = &dapr.ETag{Value: op.ETag}
		}
		typ := dapr.StateOperationTypeUpsert
		if op.Delete {
			typ = dapr.StateOperationTypeDelete
		} else {
			data, err := json.Marshal(op.Value)
			if err != nil {
				return fmt.Errorf("encode %s/%s: %w", s.name, op.Key, err)
			}
			item.Value = data
		}
		stateOps = append(stateOps, &dapr.StateOperation{Type: typ, Item: item})
	}
	if err := s.client.ExecuteStateTransaction(ctx, s.name, meta, stateOps); err != nil {
		if isConflict(err) {
			return fmt.Errorf("transaction on %s: %w", s.name, ErrConflict)
		}
		return fmt.Errorf("transaction on %s: %w: %w", s.name, ErrUnavailable, err)
	}
	return nil
}

// Ping proves the store answers by reading a key that never exists.
func (s *Store) Ping(ctx context.Context) error {
	_, _, err := s.Get(ctx, "readiness-probe")
	return err
}

func ttlMetadata(ttl time.Duration) map[string]string {
	if ttl <= 0 {
		return nil
	}
	return map[string]string{"ttlInSeconds": strconv.Itoa(int(ttl / time.Second))}
}

func isConflict(err error) bool {
	return status.Code(err) == codes.Aborted
}
