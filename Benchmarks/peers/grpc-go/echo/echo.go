// Package echo holds what the gRPC-Go server and load client share: a codec
// that moves raw bytes verbatim, and the hand-written service description of
// bench.Echo/Call (a unary echo: the response is the request's bytes).
//
// The codec is registered under the name "proto", which replaces gRPC-Go's
// protobuf codec in this process. The wire content-type therefore stays plain
// "application/grpc", so any gRPC server or client that echoes raw bytes
// (grpc-swift-2 with an identity serializer, say) interoperates without protoc.
package echo

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// Service and Method name the benchmark RPC; FullMethod is its path on the wire.
const (
	Service    = "bench.Echo"
	Method     = "Call"
	FullMethod = "/" + Service + "/" + Method
)

// Frame is one message: its bytes are the gRPC message payload, unchanged.
type Frame []byte

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case *Frame:
		return *m, nil
	case Frame:
		return m, nil
	case *[]byte:
		return *m, nil
	case []byte:
		return m, nil
	default:
		return nil, fmt.Errorf("echo codec: cannot marshal %T", v)
	}
}

// Unmarshal keeps data without copying: gRPC-Go 1.33 allocates a fresh buffer
// for every received message (rpc_util.go recvMsg) and never reuses it.
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	switch m := v.(type) {
	case *Frame:
		*m = data
	case *[]byte:
		*m = data
	default:
		return fmt.Errorf("echo codec: cannot unmarshal into %T", v)
	}
	return nil
}

func init() { encoding.RegisterCodec(rawCodec{}) }

// Server is the (empty) handler type of the service.
type Server interface{}

type echoServer struct{}

func callHandler(srv interface{}, ctx context.Context, dec func(interface{}) error, interceptor grpc.UnaryServerInterceptor) (interface{}, error) {
	in := new(Frame)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return in, nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: FullMethod}
	return interceptor(ctx, in, info, func(_ context.Context, req interface{}) (interface{}, error) { return req, nil })
}

// ServiceDesc describes bench.Echo with its one unary method Call.
var ServiceDesc = grpc.ServiceDesc{
	ServiceName: Service,
	HandlerType: (*Server)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: Method, Handler: callHandler}},
	Streams:     []grpc.StreamDesc{},
	Metadata:    "bench.proto",
}

// Register adds the echo service to s.
func Register(s *grpc.Server) { s.RegisterService(&ServiceDesc, echoServer{}) }
