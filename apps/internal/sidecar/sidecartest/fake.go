// Package sidecartest is an in-process fake of the parts of Dapr's gRPC API
// the apps use (state, transactions, publish), served on a loopback port so
// that a real Go SDK client — the one sidecar.Connect builds — talks to it.
//
// It keeps the semantics of daprd 1.18.2 with its state stores that the code
// relies on, read from daprd's and components-contrib's sources:
//
//   - A save with first-write concurrency and an ETag that no longer matches
//     fails with gRPC Aborted (ETag mismatch); inside a transaction every
//     store error comes back as Internal.
//   - A first-write save without an ETag over a key that exists fails with a
//     plain error (Internal), not Aborted: stores cannot say "exists".
//   - With last-write concurrency Redis ignores ETags.
//   - ttlInSeconds metadata expires a key; a read after that finds nothing.
//   - FlavorRedis: an ETag-checked save of a missing key writes it (Redis's
//     script accepts it), and a transaction is not atomic: every operation
//     is tried, failed ones are reported, the others stay applied (Redis
//     MULTI/EXEC has no rollback). Insert-only is only honoured over keys
//     written with first-write outside a transaction (Redis marks those).
//   - FlavorPostgreSQL: an ETag-checked save of a missing key is a mismatch,
//     and a transaction applies all its operations or none.
//   - Outbox: on a store with Outbox set, an operation with metadata
//     outbox.projection=true is not stored; it is published to the outbox
//     topic if and only if the transaction commits.
//
// Faults let a test fail a call before it is applied (an outage) or after it
// is applied (an answer lost on the way back).
package sidecartest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	pb "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Flavor is the state store a fake store behaves like.
type Flavor int

// The flavors of state store.
const (
	FlavorRedis Flavor = iota
	FlavorPostgreSQL
)

// StoreConfig describes one state store of the fake.
type StoreConfig struct {
	Name   string
	Flavor Flavor
	// Outbox, when set, is the topic transactions' projections are
	// published to (Dapr's transactional outbox).
	Outbox string
}

// Event is a message published through the fake.
type Event struct {
	PubSub   string
	Topic    string
	Data     []byte
	Metadata map[string]string
}

// Call names one operation reaching the fake, for faults.
type Call struct {
	Method string // "GetState", "GetBulkState", "SaveState", "DeleteState", "ExecuteStateTransaction", "PublishEvent"
	Store  string
	Keys   []string
}

// Fault is what a fault hook decides for a call.
type Fault struct {
	// Err is returned to the caller; nil lets the call through untouched.
	Err error
	// AfterApply applies the call first and then answers Err: the write
	// happened but its answer was lost.
	AfterApply bool
	// Delay holds the call this long before it is applied, or until the
	// caller gives up (then nothing is applied), as a slow store does.
	Delay time.Duration
}

// Sidecar is the fake daprd. Its zero value is not usable: use Start.
type Sidecar struct {
	pb.UnimplementedDaprServer

	// Address is host:port of the fake's gRPC API.
	Address string

	mu        sync.Mutex
	now       func() time.Time
	stores    map[string]*store
	published []Event
	fault     func(Call) Fault
	token     string
	calls     map[string]int
}

type store struct {
	cfg  StoreConfig
	keys map[string]*entry
	seq  int
}

type entry struct {
	value      []byte
	version    int
	firstWrite bool
	expires    time.Time // zero: never
}

// Option configures Start.
type Option func(*Sidecar)

// WithClock makes the fake read time from now (for TTLs).
func WithClock(now func() time.Time) Option { return func(s *Sidecar) { s.now = now } }

// WithToken makes the fake refuse calls without dapr-api-token: token.
func WithToken(token string) Option { return func(s *Sidecar) { s.token = token } }

// Start serves a fake sidecar with the given stores on a loopback port until
// the test ends.
func Start(t testing.TB, stores []StoreConfig, opts ...Option) *Sidecar {
	t.Helper()
	s := &Sidecar{now: time.Now, stores: map[string]*store{}, calls: map[string]int{}}
	for _, cfg := range stores {
		s.stores[cfg.Name] = &store{cfg: cfg, keys: map[string]*entry{}}
	}
	for _, o := range opts {
		o(s)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(s.checkToken))
	pb.RegisterDaprServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	s.Address = lis.Addr().String()
	return s
}

func (s *Sidecar) checkToken(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.token != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("dapr-api-token"); len(got) != 1 || got[0] != s.token {
			return nil, status.Error(codes.Unauthenticated, "missing or wrong dapr-api-token")
		}
	}
	return handler(ctx, req)
}

// SetFault installs f, called for every call before it is applied; nil
// removes it.
func (s *Sidecar) SetFault(f func(Call) Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Published returns the events published so far, in order.
func (s *Sidecar) Published() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.published...)
}

// Calls returns how many calls of method reached the fake.
func (s *Sidecar) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Value returns the stored value of key and whether it exists (not expired).
func (s *Sidecar) Value(storeName, key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.live(s.stores[storeName], key)
	if e == nil {
		return nil, false
	}
	return append([]byte(nil), e.value...), true
}

// Keys returns the live keys of a store.
func (s *Sidecar) Keys(storeName string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stores[storeName]
	var keys []string
	for k := range st.keys {
		if s.live(st, k) != nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// ExpiresAt returns when key expires; zero when it never does.
func (s *Sidecar) ExpiresAt(storeName, key string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.live(s.stores[storeName], key); e != nil {
		return e.expires
	}
	return time.Time{}
}

// Put stores value under key as a first-write save would, for test setup.
func (s *Sidecar) Put(storeName, key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stores[storeName]
	st.seq++
	st.keys[key] = &entry{value: value, version: st.seq, firstWrite: true}
}

// begin counts a call, finds its store and asks the fault hook. It returns
// with s.mu held unless it returns an error.
func (s *Sidecar) begin(ctx context.Context, c Call) (*store, Fault, error) {
	s.mu.Lock()
	s.calls[c.Method]++
	var f Fault
	if s.fault != nil {
		f = s.fault(c)
	}
	if f.Delay > 0 {
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, f, status.FromContextError(ctx.Err()).Err()
		case <-time.After(f.Delay):
		}
		s.mu.Lock()
	}
	if f.Err != nil && !f.AfterApply {
		s.mu.Unlock()
		return nil, f, f.Err
	}
	if c.Method == "PublishEvent" {
		return nil, f, nil
	}
	st, ok := s.stores[c.Store]
	if !ok {
		s.mu.Unlock()
		return nil, f, status.Errorf(codes.InvalidArgument, "state store %s is not found", c.Store)
	}
	return st, f, nil
}

func (s *Sidecar) live(st *store, key string) *entry {
	if st == nil {
		return nil
	}
	e, ok := st.keys[key]
	if !ok {
		return nil
	}
	if !e.expires.IsZero() && !s.now().Before(e.expires) {
		delete(st.keys, key)
		return nil
	}
	return e
}

// GetState implements Dapr's GetState.
func (s *Sidecar) GetState(ctx context.Context, in *pb.GetStateRequest) (*pb.GetStateResponse, error) {
	st, f, err := s.begin(ctx, Call{Method: "GetState", Store: in.GetStoreName(), Keys: []string{in.GetKey()}})
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	e := s.live(st, in.GetKey())
	if e == nil {
		return &pb.GetStateResponse{}, nil
	}
	return &pb.GetStateResponse{Data: e.value, Etag: strconv.Itoa(e.version), Metadata: expiryMeta(e)}, nil
}

// GetBulkState implements Dapr's GetBulkState: a missing key is an item
// without data.
func (s *Sidecar) GetBulkState(ctx context.Context, in *pb.GetBulkStateRequest) (*pb.GetBulkStateResponse, error) {
	st, f, err := s.begin(ctx, Call{Method: "GetBulkState", Store: in.GetStoreName(), Keys: in.GetKeys()})
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	out := &pb.GetBulkStateResponse{}
	for _, k := range in.GetKeys() {
		item := &pb.BulkStateItem{Key: k}
		if e := s.live(st, k); e != nil {
			item.Data, item.Etag, item.Metadata = e.value, strconv.Itoa(e.version), expiryMeta(e)
		}
		out.Items = append(out.Items, item)
	}
	return out, nil
}

func expiryMeta(e *entry) map[string]string {
	if e.expires.IsZero() {
		return nil
	}
	return map[string]string{"ttlExpireTime": e.expires.UTC().Format(time.RFC3339)}
}

// SaveState implements Dapr's SaveState: each item is saved in turn; the
// first failure is answered (Aborted for an ETag mismatch, else Internal).
func (s *Sidecar) SaveState(ctx context.Context, in *pb.SaveStateRequest) (*emptypb.Empty, error) {
	keys := make([]string, 0, len(in.GetStates()))
	for _, it := range in.GetStates() {
		keys = append(keys, it.GetKey())
	}
	st, f, err := s.begin(ctx, Call{Method: "SaveState", Store: in.GetStoreName(), Keys: keys})
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	for _, it := range in.GetStates() {
		if err := s.set(st, it, false); err != nil {
			return nil, answer(err)
		}
	}
	return &emptypb.Empty{}, f.Err
}

// DeleteState implements Dapr's DeleteState.
func (s *Sidecar) DeleteState(ctx context.Context, in *pb.DeleteStateRequest) (*emptypb.Empty, error) {
	st, f, err := s.begin(ctx, Call{Method: "DeleteState", Store: in.GetStoreName(), Keys: []string{in.GetKey()}})
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if err := s.del(st, in.GetKey(), in.GetEtag(), in.GetOptions()); err != nil {
		return nil, answer(err)
	}
	return &emptypb.Empty{}, f.Err
}

// ExecuteStateTransaction implements Dapr's transactions, with the
// atomicity of the store's flavor and the outbox.
func (s *Sidecar) ExecuteStateTransaction(ctx context.Context, in *pb.ExecuteStateTransactionRequest) (*emptypb.Empty, error) {
	keys := make([]string, 0, len(in.GetOperations()))
	for _, op := range in.GetOperations() {
		keys = append(keys, op.GetRequest().GetKey())
	}
	st, f, err := s.begin(ctx, Call{Method: "ExecuteStateTransaction", Store: in.GetStoreName(), Keys: keys})
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()

	var staged []Event
	var ops []*pb.TransactionalStateOperation
	for _, op := range in.GetOperations() {
		if st.cfg.Outbox != "" && op.GetRequest().GetMetadata()["outbox.projection"] == "true" {
			staged = append(staged, Event{Topic: st.cfg.Outbox, Data: op.GetRequest().GetValue(), Metadata: op.GetRequest().GetMetadata()})
			continue
		}
		ops = append(ops, op)
	}

	var backup map[string]*entry
	if st.cfg.Flavor == FlavorPostgreSQL {
		backup = make(map[string]*entry, len(st.keys))
		for k, e := range st.keys {
			c := *e
			backup[k] = &c
		}
	}
	var firstErr error
	for _, op := range ops {
		var err error
		switch op.GetOperationType() {
		case "upsert":
			err = s.set(st, op.GetRequest(), true)
		case "delete":
			r := op.GetRequest()
			err = s.del(st, r.GetKey(), r.GetEtag(), r.GetOptions())
		default:
			err = fmt.Errorf("operation type %q not supported", op.GetOperationType())
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if err != nil && st.cfg.Flavor == FlavorPostgreSQL {
			break
		}
	}
	if firstErr != nil {
		if backup != nil {
			st.keys = backup
		}
		return nil, status.Errorf(codes.Internal, "error while executing state transaction: %v", firstErr)
	}
	s.published = append(s.published, staged...)
	return &emptypb.Empty{}, f.Err
}

// PublishEvent implements Dapr's publish.
func (s *Sidecar) PublishEvent(ctx context.Context, in *pb.PublishEventRequest) (*emptypb.Empty, error) {
	_, f, err := s.begin(ctx, Call{Method: "PublishEvent", Store: in.GetPubsubName(), Keys: []string{in.GetTopic()}})
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	s.published = append(s.published, Event{PubSub: in.GetPubsubName(), Topic: in.GetTopic(), Data: in.GetData(), Metadata: in.GetMetadata()})
	return &emptypb.Empty{}, f.Err
}

// etagMismatch is a store's ETag mismatch; everything else a store fails
// with is a plain error.
type etagMismatch struct{ key string }

func (e etagMismatch) Error() string { return "possible etag mismatch: key " + e.key }

// answer maps a store error to daprd's gRPC status for a single operation.
func answer(err error) error {
	if _, ok := err.(etagMismatch); ok {
		return status.Errorf(codes.Aborted, "failed saving state in state store: %v", err)
	}
	return status.Errorf(codes.Internal, "failed saving state in state store: %v", err)
}

func firstWriteOf(o *commonv1.StateOptions) bool {
	return o.GetConcurrency() == commonv1.StateOptions_CONCURRENCY_FIRST_WRITE
}

func (s *Sidecar) set(st *store, it *commonv1.StateItem, inTx bool) error {
	key := it.GetKey()
	if key == "" {
		return fmt.Errorf("state key cannot be empty")
	}
	var ttl time.Duration
	if v, ok := it.GetMetadata()["ttlInSeconds"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("ttlInSeconds %q: %w", v, err)
		}
		ttl = time.Duration(n) * time.Second
	}
	if it.GetMetadata()["contentType"] == "application/json" && !json.Valid(it.GetValue()) {
		return fmt.Errorf("value of %s is not JSON", key)
	}
	cur := s.live(st, key)
	fw := firstWriteOf(it.GetOptions())
	if it.GetEtag().GetValue() == "" {
		it = &commonv1.StateItem{Key: it.Key, Value: it.Value, Metadata: it.Metadata, Options: it.Options} // stores treat "" as no ETag
	}
	lastWrite := it.GetOptions().GetConcurrency() == commonv1.StateOptions_CONCURRENCY_LAST_WRITE
	switch {
	case it.GetEtag() != nil && (!lastWrite || st.cfg.Flavor == FlavorPostgreSQL):
		switch {
		case cur == nil && st.cfg.Flavor == FlavorRedis:
			// Redis's script accepts an ETag for a key that is not there.
		case cur == nil || strconv.Itoa(cur.version) != it.GetEtag().GetValue():
			return etagMismatch{key}
		}
	case it.GetEtag() == nil && cur != nil:
		// A write without an ETag over an existing key. PostgreSQL refuses
		// it under first-write; Redis refuses it, whatever the concurrency,
		// when the key was itself written with first-write (it marks those,
		// outside transactions only).
		if (st.cfg.Flavor == FlavorPostgreSQL && fw) || (st.cfg.Flavor == FlavorRedis && cur.firstWrite) {
			return fmt.Errorf("failed to set key %s", key)
		}
	}
	st.seq++
	e := &entry{value: append([]byte(nil), it.GetValue()...), version: st.seq}
	e.firstWrite = fw && !(inTx && st.cfg.Flavor == FlavorRedis)
	if cur != nil && st.cfg.Flavor == FlavorRedis && cur.firstWrite {
		e.firstWrite = true
	}
	if ttl > 0 {
		e.expires = s.now().Add(ttl)
	}
	st.keys[key] = e
	return nil
}

func (s *Sidecar) del(st *store, key string, etag *commonv1.Etag, _ *commonv1.StateOptions) error {
	cur := s.live(st, key)
	if etag.GetValue() == "" {
		etag = nil // stores treat "" as no ETag
	}
	if etag != nil && cur != nil && strconv.Itoa(cur.version) != etag.GetValue() {
		return etagMismatch{key}
	}
	if etag != nil && cur == nil && st.cfg.Flavor == FlavorPostgreSQL {
		return etagMismatch{key}
	}
	delete(st.keys, key)
	return nil
}
