// grpc-go-client: the gRPC load generator of the side-by-side benchmarks. It
// drives the unary raw-bytes echo (/bench.Echo/Call by default) of any gRPC
// server (gRPC-Go's, grpc-swift-2's) and prints one JSON line of results.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"grpcgopeer/echo"
)

const usage = `usage: grpc-go-client --port P [--host 127.0.0.1] --connections N --concurrency K --size B
                      --duration SEC [--warmup SEC] [--tls] [--server-pid PID] [--method /bench.Echo/Call]
       grpc-go-client --port P [--host 127.0.0.1] --idle N [--tls] --server-pid PID [--size B]
Load mode: N ClientConns, K unary calls in flight in total (K >= N, spread evenly over the
connections), payload of B bytes whose echo is checked, 10 s deadline per call. The warm-up is
not measured. One progress line per second on stderr; at the end one JSON line on stdout:
  {"calls":N,"seconds":S,"calls_per_s":X,"p50_us":X,"p99_us":X,"p999_us":X,"errors":N,
   "server_cpu_us_per_call":X,"client_cpu_us_per_call":X}
(server_cpu_us_per_call is null without --server-pid). Exit 1 if any call failed or an echo
mismatched (the JSON is still printed), 0 otherwise.
Idle mode: reads the server's VmRSS, opens N ClientConns with one call on each, waits 1 s,
reads VmRSS again and prints {"connections":N,"rss_before":B,"rss_after":B,"bytes_per_connection":X}.
  --host ADDR        server address (default 127.0.0.1)
  --port N           server port (required)
  --connections N    ClientConns, each its own HTTP/2 connection (default 1)
  --concurrency K    calls in flight in total (default 1)
  --size B           request payload bytes, 0...4194304 (default 16)
  --duration SEC     measured seconds, decimals allowed (default 5)
  --warmup SEC       unmeasured seconds before (default 1)
  --tls              TLS without certificate verification (ALPN h2)
  --server-pid PID   server process: its CPU (load mode) or VmRSS (idle mode) from /proc
  --method PATH      full method path (default /bench.Echo/Call)
  --idle N           idle mode with N connections (needs --server-pid)
`

const callTimeout = 10 * time.Second

func fail(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "grpc-go-client: "+format+"\n", args...)
	os.Exit(code)
}

type config struct {
	host        string
	port        int
	connections int
	concurrency int
	size        int
	duration    float64
	warmup      float64
	tls         bool
	serverPid   int
	method      string
	idle        int
}

func parseFlags() config {
	var c config
	fs := flag.NewFlagSet("grpc-go-client", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.host, "host", "127.0.0.1", "")
	fs.IntVar(&c.port, "port", 0, "")
	fs.IntVar(&c.connections, "connections", 1, "")
	fs.IntVar(&c.concurrency, "concurrency", 1, "")
	fs.IntVar(&c.size, "size", 16, "")
	fs.Float64Var(&c.duration, "duration", 5, "")
	fs.Float64Var(&c.warmup, "warmup", 1, "")
	fs.BoolVar(&c.tls, "tls", false, "")
	fs.IntVar(&c.serverPid, "server-pid", 0, "")
	fs.StringVar(&c.method, "method", echo.FullMethod, "")
	fs.IntVar(&c.idle, "idle", 0, "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(usage)
			os.Exit(0)
		}
		fail(2, "%v (see --help)", err)
	}
	switch {
	case fs.NArg() > 0:
		fail(2, "unexpected argument %q (see --help)", fs.Arg(0))
	case c.port < 1 || c.port > 65535:
		fail(2, "--port must be 1...65535 (required), got %d", c.port)
	case c.connections < 1:
		fail(2, "--connections must be >= 1, got %d", c.connections)
	case c.concurrency < c.connections:
		fail(2, "--concurrency (%d) must be >= --connections (%d)", c.concurrency, c.connections)
	case c.size < 0 || c.size > 4<<20:
		fail(2, "--size must be 0...4194304, got %d", c.size)
	case !(c.duration > 0) || c.duration > 86400:
		fail(2, "--duration must be > 0 seconds, got %v", c.duration)
	case !(c.warmup >= 0) || c.warmup > 86400:
		fail(2, "--warmup must be >= 0 seconds, got %v", c.warmup)
	case c.serverPid < 0:
		fail(2, "--server-pid must be a process id, got %d", c.serverPid)
	case !strings.HasPrefix(c.method, "/") || strings.Count(c.method, "/") != 2:
		fail(2, "--method must look like /package.Service/Method, got %q", c.method)
	case c.idle < 0:
		fail(2, "--idle must be >= 1, got %d", c.idle)
	case c.idle > 0 && c.serverPid == 0:
		fail(2, "--idle needs --server-pid")
	}
	if c.serverPid > 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", c.serverPid)); err != nil {
			fail(2, "--server-pid %d: no such process", c.serverPid)
		}
	}
	return c
}

func main() {
	c := parseFlags()
	raiseNoFile()
	// The live heap of the client is small, so with GOGC=100 the collector runs every few
	// thousand calls and took about a fifth of the client's CPU; 800 cuts that to a few
	// percent (heap target >= 32 MB). An explicit GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(800)
	}
	if c.idle > 0 {
		os.Exit(runIdle(c))
	}
	os.Exit(runLoad(c))
}

// dial opens one ClientConn and waits (at most callTimeout) until it is connected.
func dial(c config) (*grpc.ClientConn, error) {
	// Fixed 64 KiB windows turn off gRPC-Go's BDP estimation, which sends a PING (and a WINDOW_UPDATE) per
	// response: grpc-swift-2's HTTP/2 layer answers more than 200 such frames in 30 s with GOAWAY
	// (ENHANCE_YOUR_CALM), which made the client reconnect every ~200 calls. 64 KiB is HTTP/2's default window.
	opts := []grpc.DialOption{grpc.WithBlock(), grpc.FailOnNonTempDialError(true),
		grpc.WithInitialWindowSize(1 << 16), grpc.WithInitialConnWindowSize(1 << 16)}
	if c.tls {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return grpc.DialContext(ctx, net.JoinHostPort(c.host, strconv.Itoa(c.port)), opts...)
}

// payload returns size bytes that differ from worker to worker, so that a
// response delivered to the wrong call does not pass the echo check.
func payload(size, worker int) echo.Frame {
	p := make(echo.Frame, size)
	x := uint32(worker)*2654435761 + 12345
	for i := range p {
		x = x*1664525 + 1013904223
		p[i] = byte(x >> 24)
	}
	return p
}

// ---- load mode ----

type result struct {
	Calls              uint64   `json:"calls"`
	Seconds            float64  `json:"seconds"`
	CallsPerS          float64  `json:"calls_per_s"`
	P50us              *float64 `json:"p50_us"`
	P99us              *float64 `json:"p99_us"`
	P999us             *float64 `json:"p999_us"`
	Errors             uint64   `json:"errors"`
	ServerCPUusPerCall *float64 `json:"server_cpu_us_per_call"`
	ClientCPUusPerCall *float64 `json:"client_cpu_us_per_call"`
}

func runLoad(c config) int {
	conns := make([]*grpc.ClientConn, c.connections)
	for i := range conns {
		cc, err := dial(c)
		if err != nil {
			fail(1, "connection %d to %s:%d: %v", i+1, c.host, c.port, err)
		}
		conns[i] = cc
	}
	defer func() {
		for _, cc := range conns {
			cc.Close()
		}
	}()

	var (
		hist      histogram
		completed uint64 // successful calls, whole run (progress)
		failed    uint64 // failed calls and echo mismatches, whole run
		reported  uint32 // failures already described on stderr
		wg        sync.WaitGroup
	)
	warm := time.Duration(c.warmup * float64(time.Second))
	t0 := warm                                                  // measured window [t0, t1) since base,
	t1 := warm + time.Duration(c.duration*float64(time.Second)) // by completion time of a call
	report := func(format string, args ...interface{}) {
		if atomic.AddUint32(&reported, 1) <= 5 {
			fmt.Fprintf(os.Stderr, "grpc-go-client: "+format+"\n", args...)
		}
	}

	base := time.Now()
	worker := 0
	for i, cc := range conns {
		k := c.concurrency / c.connections
		if i < c.concurrency%c.connections {
			k++
		}
		for j := 0; j < k; j++ {
			wg.Add(1)
			go func(cc *grpc.ClientConn, id int) {
				defer wg.Done()
				req := payload(c.size, id)
				var resp echo.Frame
				for {
					ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
					resp = nil
					start := time.Now()
					err := cc.Invoke(ctx, c.method, &req, &resp)
					end := time.Now()
					cancel()
					at := end.Sub(base)
					switch {
					case err != nil:
						atomic.AddUint64(&failed, 1)
						report("call failed: %v", err)
						time.Sleep(10 * time.Millisecond) // no busy loop against a dead server
					case !bytes.Equal(resp, req):
						atomic.AddUint64(&failed, 1)
						report("echo mismatch: %d bytes back for %d sent", len(resp), len(req))
					default:
						atomic.AddUint64(&completed, 1)
						if at >= t0 && at < t1 {
							hist.record(uint64(end.Sub(start)))
						}
					}
					if at >= t1 {
						return
					}
				}
			}(cc, worker)
			worker++
		}
	}

	// Progress: one line per second.
	stopProgress := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last uint64
		for n := 1; ; n++ {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
			}
			now := atomic.LoadUint64(&completed)
			phase := "warmup"
			if time.Duration(n)*time.Second > t0 {
				phase = "measure"
			}
			fmt.Fprintf(os.Stderr, "%3ds %-7s %8d calls/s  errors %d\n", n, phase, now-last, atomic.LoadUint64(&failed))
			last = now
		}
	}()

	time.Sleep(time.Until(base.Add(t0)))
	srv0, srvOK0 := processTicks(c.serverPid)
	cli0 := selfCPU()
	time.Sleep(time.Until(base.Add(t1)))
	srv1, srvOK1 := processTicks(c.serverPid)
	cli1 := selfCPU()
	wg.Wait() // calls in flight at t1 end (at most callTimeout), unmeasured
	close(stopProgress)

	calls := hist.total()
	seconds := (t1 - t0).Seconds()
	r := result{Calls: calls, Seconds: round(seconds, 3), Errors: atomic.LoadUint64(&failed)}
	r.CallsPerS = round(float64(calls)/seconds, 1)
	if calls > 0 {
		r.P50us = ptr(round(hist.percentile(0.50)/1e3, 1))
		r.P99us = ptr(round(hist.percentile(0.99)/1e3, 1))
		r.P999us = ptr(round(hist.percentile(0.999)/1e3, 1))
		r.ClientCPUusPerCall = ptr(round(float64(cli1-cli0)/float64(calls), 2))
		if c.serverPid > 0 {
			if srvOK0 && srvOK1 {
				r.ServerCPUusPerCall = ptr(round(float64(srv1-srv0)*1e6/clockTicks()/float64(calls), 2))
			} else {
				fmt.Fprintf(os.Stderr, "grpc-go-client: could not read the CPU time of process %d\n", c.serverPid)
			}
		}
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if r.Errors > 0 {
		return 1
	}
	return 0
}

// ---- idle mode ----

func runIdle(c config) int {
	before, err := vmRSS(c.serverPid)
	if err != nil {
		fail(1, "VmRSS of process %d: %v", c.serverPid, err)
	}
	conns := make([]*grpc.ClientConn, c.idle)
	var failed uint64
	var wg sync.WaitGroup
	next := int64(-1)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(atomic.AddInt64(&next, 1))
				if i >= len(conns) {
					return
				}
				cc, err := dial(c)
				if err != nil {
					if atomic.AddUint64(&failed, 1) <= 5 {
						fmt.Fprintf(os.Stderr, "grpc-go-client: connection %d: %v\n", i+1, err)
					}
					continue
				}
				conns[i] = cc
				req := payload(c.size, i)
				var resp echo.Frame
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				err = cc.Invoke(ctx, c.method, &req, &resp)
				cancel()
				if err == nil && !bytes.Equal(resp, req) {
					err = fmt.Errorf("echo mismatch: %d bytes back for %d sent", len(resp), len(req))
				}
				if err != nil && atomic.AddUint64(&failed, 1) <= 5 {
					fmt.Fprintf(os.Stderr, "grpc-go-client: call on connection %d: %v\n", i+1, err)
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(time.Second)
	after, err := vmRSS(c.serverPid)
	if err != nil {
		fail(1, "VmRSS of process %d: %v", c.serverPid, err)
	}
	out, _ := json.Marshal(struct {
		Connections        int     `json:"connections"`
		RSSBefore          int64   `json:"rss_before"`
		RSSAfter           int64   `json:"rss_after"`
		BytesPerConnection float64 `json:"bytes_per_connection"`
	}{c.idle, before, after, round(float64(after-before)/float64(c.idle), 1)})
	fmt.Println(string(out))
	for _, cc := range conns {
		if cc != nil {
			cc.Close()
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "grpc-go-client: %d of %d connections failed\n", failed, c.idle)
		return 1
	}
	return 0
}

// ---- latency histogram ----

// histogram counts nanoseconds in log-linear buckets: values below 256 exactly,
// above in 128 sub-buckets per power of two (relative error below 0.4% when a
// bucket is reported by its midpoint). Lock-free: atomic adds.
const (
	subBits    = 7
	subCount   = 1 << subBits // 128
	maxExp     = 40 - subBits - 1
	numBuckets = 2*subCount + maxExp*subCount
)

type histogram struct{ counts [numBuckets]uint64 }

func bucketOf(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e in [128, 256)
	if e > maxExp {
		return numBuckets - 1
	}
	return 2*subCount + (e-1)*subCount + int(v>>uint(e)) - subCount
}

func bucketValue(i int) float64 {
	if i < 2*subCount {
		return float64(i)
	}
	e := (i-2*subCount)/subCount + 1
	m := uint64((i-2*subCount)%subCount + subCount)
	return float64(m<<uint(e)) + float64(uint64(1)<<uint(e))/2
}

func (h *histogram) record(ns uint64) { atomic.AddUint64(&h.counts[bucketOf(ns)], 1) }

func (h *histogram) total() uint64 {
	var n uint64
	for i := range h.counts {
		n += atomic.LoadUint64(&h.counts[i])
	}
	return n
}

// percentile returns the nearest-rank percentile p (0...1), in nanoseconds.
func (h *histogram) percentile(p float64) float64 {
	n := h.total()
	rank := uint64(math.Ceil(p * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += atomic.LoadUint64(&h.counts[i])
		if seen >= rank {
			return bucketValue(i)
		}
	}
	return bucketValue(numBuckets - 1)
}

// ---- /proc and rusage ----

// processTicks returns utime+stime of pid in clock ticks.
func processTicks(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return u + st, true
}

var clkTck float64

// clockTicks is sysconf(_SC_CLK_TCK), read from the auxiliary vector (AT_CLKTCK) without cgo.
func clockTicks() float64 {
	if clkTck > 0 {
		return clkTck
	}
	clkTck = 100
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		for i := 0; i+16 <= len(b); i += 16 {
			k, v := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
			if k == 17 && v > 0 { // AT_CLKTCK
				clkTck = float64(v)
				break
			}
		}
	}
	return clkTck
}

// selfCPU is this process's user+system CPU time in microseconds.
func selfCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
}

// vmRSS returns VmRSS of pid in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line[len("VmRSS:"):])
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, err
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, errors.New("no VmRSS line")
}

func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func ptr(x float64) *float64 { return &x }
