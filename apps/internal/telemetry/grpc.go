package telemetry

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// UnaryClientInterceptor passes the trace of ctx on to the sidecar with every
// gRPC call (state, publish), as the traceparent metadata daprd reads: the
// outbox's event, published from orders' state transaction, then carries the
// order's trace to its subscribers.
func UnaryClientInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if t, ok := TraceFrom(ctx); ok {
		ctx = metadata.AppendToOutgoingContext(ctx, TraceparentHeader, t.Traceparent())
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
