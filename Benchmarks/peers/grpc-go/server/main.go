// grpc-go-server: gRPC-Go (default settings) serving the raw-bytes unary echo
// /bench.Echo/Call, over plaintext HTTP/2 or TLS.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"grpcgopeer/echo"
)

const usage = `usage: grpc-go-server [--host 127.0.0.1] [--port 0] [--tls --cert FILE --key FILE]
Serves the unary raw-bytes echo /bench.Echo/Call with gRPC-Go's default server settings.
When ready it prints one line to stdout: grpc-go-server listening on HOST:PORT
Exits 0 on SIGTERM or SIGINT.
  --host ADDR   address to listen on (default 127.0.0.1)
  --port N      TCP port, 0 picks a free one (default 0)
  --tls         serve TLS (ALPN h2) with --cert and --key (PEM files)
  --cert FILE   certificate chain (PEM)
  --key FILE    private key (PEM)
`

func fail(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "grpc-go-server: "+format+"\n", args...)
	os.Exit(code)
}

func main() {
	fs := flag.NewFlagSet("grpc-go-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	host := fs.String("host", "127.0.0.1", "")
	port := fs.Int("port", 0, "")
	useTLS := fs.Bool("tls", false, "")
	cert := fs.String("cert", "", "")
	key := fs.String("key", "", "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(usage)
			os.Exit(0)
		}
		fail(2, "%v (see --help)", err)
	}
	if fs.NArg() > 0 {
		fail(2, "unexpected argument %q (see --help)", fs.Arg(0))
	}
	if *port < 0 || *port > 65535 {
		fail(2, "--port must be 0...65535, got %d", *port)
	}
	if *useTLS && (*cert == "" || *key == "") {
		fail(2, "--tls needs --cert FILE and --key FILE")
	}
	if !*useTLS && (*cert != "" || *key != "") {
		fail(2, "--cert and --key only go with --tls")
	}
	raiseNoFile()

	var opts []grpc.ServerOption
	if *useTLS {
		creds, err := credentials.NewServerTLSFromFile(*cert, *key)
		if err != nil {
			fail(1, "TLS: %v", err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	s := grpc.NewServer(opts...)
	echo.Register(s)

	lis, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fail(1, "listen: %v", err)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()

	_, p, _ := net.SplitHostPort(lis.Addr().String())
	// os.Stdout is unbuffered: the line is out when Printf returns.
	fmt.Printf("grpc-go-server listening on %s\n", net.JoinHostPort(*host, p))

	select {
	case <-signals:
		s.Stop()
		os.Exit(0)
	case err := <-served:
		fail(1, "serve: %v", err)
	}
}

func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
