// Command fanout_client opens many unfiltered StreamQuotes subscriptions to the
// pricing service and reports what arrived: quotes and messages per second
// over a steady window, lag percentiles and contract violations, as JSON on
// stdout. bench/fanout.py builds and runs it.
//
// Why Go and raw bytes: the benchmark must measure the server, and the client
// shares its two cores. Decoding every Quote into a message object (Python, or
// even Go's protobuf runtime) would cost more CPU than the server spends
// sending it. A custom codec hands the client the raw frame, and a hand-written
// skimmer reads only what the measurement needs: the sequence, the flags, and
// per quote its sequence and time (to check the contract and compute lag).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

const method = "/marketmesh.v1.PricingService/StreamQuotes"

// frame is what the codec extracts from one StreamQuotesResponse.
type frame struct {
	sequence    uint64
	snapshot    bool
	heartbeat   bool
	quotes      int
	newestNs    int64 // newest quote time; 0 when there are no quotes
	minQuoteSeq uint64
	maxQuoteSeq uint64
	bytes       int
	bad         error
	parse       bool // read every quote (sequence, time), not just count them
}

var codecPool = &dirtyPool{}

// rawCodec skims frames instead of decoding them. Requests are sent as given.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f := v.(*frame)
	if len(data) == 1 {
		skim(data[0].ReadOnlyData(), f)
		return nil
	}
	buf := data.MaterializeToBuffer(codecPool)
	skim(buf.ReadOnlyData(), f)
	buf.Free()
	return nil
}

var errTruncated = errors.New("truncated protobuf")

func uvarint(b []byte, i int) (uint64, int, error) {
	v, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return 0, i, errTruncated
	}
	return v, i + n, nil
}

// skipField moves past a field of the given wire type.
func skipField(b []byte, i int, wire uint64) (int, error) {
	switch wire {
	case 0:
		_, j, err := uvarint(b, i)
		return j, err
	case 1:
		i += 8
	case 2:
		n, j, err := uvarint(b, i)
		if err != nil {
			return j, err
		}
		i = j + int(n)
	case 5:
		i += 4
	default:
		return i, fmt.Errorf("wire type %d", wire)
	}
	if i > len(b) {
		return i, errTruncated
	}
	return i, nil
}

func skim(b []byte, f *frame) {
	*f = frame{bytes: len(b), minQuoteSeq: math.MaxUint64, parse: f.parse}
	i := 0
	for i < len(b) {
		tag, j, err := uvarint(b, i)
		if err != nil {
			f.bad = err
			return
		}
		i = j
		field, wire := tag>>3, tag&7
		switch {
		case field == 1 && wire == 0:
			f.sequence, i, err = uvarint(b, i)
		case field == 2 && wire == 0:
			var v uint64
			v, i, err = uvarint(b, i)
			f.snapshot = v != 0
		case field == 3 && wire == 0:
			var v uint64
			v, i, err = uvarint(b, i)
			f.heartbeat = v != 0
		case field == 4 && wire == 2:
			var n uint64
			n, i, err = uvarint(b, i)
			if err == nil {
				end := i + int(n)
				if end > len(b) {
					err = errTruncated
				} else if f.parse {
					err = skimQuote(b[i:end], f)
					i = end
				} else {
					f.quotes++
					i = end
				}
			}
		default:
			i, err = skipField(b, i, wire)
		}
		if err != nil {
			f.bad = err
			return
		}
	}
}

func skimQuote(b []byte, f *frame) error {
	f.quotes++
	i := 0
	for i < len(b) {
		tag, j, err := uvarint(b, i)
		if err != nil {
			return err
		}
		i = j
		field, wire := tag>>3, tag&7
		switch {
		case field == 10 && wire == 0:
			var seq uint64
			seq, i, err = uvarint(b, i)
			f.minQuoteSeq = min(f.minQuoteSeq, seq)
			f.maxQuoteSeq = max(f.maxQuoteSeq, seq)
		case field == 11 && wire == 2:
			var n uint64
			n, i, err = uvarint(b, i)
			if err != nil {
				return err
			}
			end := i + int(n)
			if end > len(b) {
				return errTruncated
			}
			ns, err := timestampNs(b[i:end])
			if err != nil {
				return err
			}
			f.newestNs = max(f.newestNs, ns)
			i = end
		default:
			i, err = skipField(b, i, wire)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func timestampNs(b []byte) (int64, error) {
	var secs, nanos uint64
	i := 0
	for i < len(b) {
		tag, j, err := uvarint(b, i)
		if err != nil {
			return 0, err
		}
		i = j
		switch tag {
		case 0x08:
			secs, i, err = uvarint(b, i)
		case 0x10:
			nanos, i, err = uvarint(b, i)
		default:
			i, err = skipField(b, i, tag&7)
		}
		if err != nil {
			return 0, err
		}
	}
	return int64(secs)*1e9 + int64(nanos), nil
}

// sample is one message received inside the steady window.
type sample struct {
	recvNs   int64
	sequence uint64
	quotes   int
	newestNs int64 // newest quote time, for subscribers that parse quotes
}

type subscriber struct {
	parse        bool
	samples      []sample
	snapshotAt   int64
	snapshotSize int
	messages     int   // in window
	quotes       int64 // in window
	bytes        int64 // in window
	heartbeats   int   // in window
	jumps        int   // in window: sequence rose by more than one
	violations   []string
	err          string
}

type clock struct {
	start, end atomic.Int64 // window bounds, unix ns; 0 until known
}

func (s *subscriber) violate(format string, args ...any) {
	if len(s.violations) < 5 {
		s.violations = append(s.violations, fmt.Sprintf(format, args...))
	}
}

func (s *subscriber) run(ctx context.Context, conn *grpc.ClientConn, w *clock, ready *sync.WaitGroup) {
	readyDone := false
	markReady := func() {
		if !readyDone {
			readyDone = true
			ready.Done()
		}
	}
	defer markReady()
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method,
		grpc.ForceCodecV2(rawCodec{}))
	if err == nil {
		err = stream.SendMsg([]byte{}) // StreamQuotesRequest{}: every asset, start fresh
	}
	if err == nil {
		err = stream.CloseSend()
	}
	if err != nil {
		s.err = err.Error()
		return
	}
	f := frame{parse: s.parse}
	var prevSeq uint64
	first := true
	for {
		if err := stream.RecvMsg(&f); err != nil {
			if !errors.Is(err, io.EOF) && status.Code(err) != codes.Canceled && ctx.Err() == nil {
				s.err = err.Error()
			}
			return
		}
		now := time.Now().UnixNano()
		if f.bad != nil {
			s.violate("undecodable message: %v", f.bad)
			continue
		}
		if first {
			first = false
			if !f.snapshot {
				s.violate("first message is not a snapshot (seq %d)", f.sequence)
			}
			s.snapshotAt = now
			s.snapshotSize = f.quotes
			prevSeq = f.sequence
			markReady()
			continue
		}
		if f.snapshot {
			s.violate("snapshot flag after the first message (seq %d)", f.sequence)
		}
		if f.sequence <= prevSeq {
			s.violate("sequence went from %d to %d", prevSeq, f.sequence)
		}
		if f.parse && f.quotes > 0 && (f.maxQuoteSeq > f.sequence || f.minQuoteSeq <= prevSeq) {
			s.violate("quote sequences [%d, %d] outside (%d, %d]", f.minQuoteSeq, f.maxQuoteSeq,
				prevSeq, f.sequence)
		}
		if f.heartbeat != (f.quotes == 0) {
			s.violate("heartbeat=%v with %d quotes (seq %d)", f.heartbeat, f.quotes, f.sequence)
		}
		start, end := w.start.Load(), w.end.Load()
		if start != 0 && now >= start && now < end {
			s.samples = append(s.samples, sample{now, f.sequence, f.quotes, f.newestNs})
			s.messages++
			s.quotes += int64(f.quotes)
			s.bytes += int64(f.bytes)
			if f.heartbeat {
				s.heartbeats++
			}
			if f.sequence > prevSeq+1 {
				s.jumps++
			}
		}
		prevSeq = f.sequence
		if end != 0 && now >= end {
			return
		}
	}
}

type dist struct {
	Min float64 `json:"min"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   int     `json:"n"`
}

func distOf(values []float64) dist {
	if len(values) == 0 {
		return dist{}
	}
	slices.Sort(values)
	at := func(q float64) float64 {
		return values[min(len(values)-1, int(q*float64(len(values))))]
	}
	return dist{Min: values[0], P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: values[len(values)-1], N: len(values)}
}

type result struct {
	Subscribers        int      `json:"subscribers"`
	Connections        int      `json:"connections"`
	Failed             int      `json:"failed"`
	Errors             []string `json:"errors,omitempty"`
	SnapshotsSeconds   float64  `json:"snapshots_seconds"`
	SnapshotQuotes     int      `json:"snapshot_quotes"`
	WindowStartNs      int64    `json:"window_start_unix_ns"`
	WindowEndNs        int64    `json:"window_end_unix_ns"`
	WindowSeconds      float64  `json:"window_seconds"`
	QuotesPerSecond    float64  `json:"quotes_per_second"`
	MessagesPerSecond  float64  `json:"messages_per_second"`
	MegabytesPerSecond float64  `json:"megabytes_per_second"`
	FeedBatchesPerSec  float64  `json:"feed_batches_per_second"`
	QuotesPerMessage   float64  `json:"quotes_per_message"`
	HeartbeatMessages  int      `json:"heartbeat_messages"`
	ConflatedMessages  int      `json:"conflated_messages"`
	// Receive time minus the newest quote time in the message, in ms.
	LagMs dist `json:"lag_ms"`
	// Receive time minus the first receipt of the same sequence by any
	// subscriber: the spread of one batch's fan-out, in ms.
	FanoutSpreadMs dist `json:"fanout_spread_ms"`
	// Between the first receipts of consecutive sequences: the feed's cadence
	// as the subscribers see it.
	BatchIntervalMs dist `json:"batch_interval_ms"`
	// Per subscriber: its worst lag, and its messages and quotes per second.
	SubscriberMaxLagMs dist `json:"subscriber_max_lag_ms"`
	SubscriberMsgsPerS dist `json:"subscriber_messages_per_second"`
	SubscriberQuotesPS dist `json:"subscriber_quotes_per_second"`
	// Messages whose sequence no quote-reading subscriber saw (no lag known).
	LagUnknown         int      `json:"lag_unknown"`
	ParsingSubscribers int      `json:"parsing_subscribers"`
	Violations         []string `json:"violations,omitempty"`
	ViolationCount     int      `json:"violation_count"`
	ClientCPUSeconds   float64  `json:"client_cpu_seconds"`
	ClientCPUCores     float64  `json:"client_cpu_cores"`
	ClientGOMAXPROCS   int      `json:"client_gomaxprocs"`
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func main() {
	target := flag.String("target", "127.0.0.1:50051", "pricing address")
	subs := flag.Int("subscribers", 1000, "StreamQuotes calls")
	conns := flag.Int("connections", 8, "HTTP/2 connections the calls are spread over")
	warmup := flag.Duration("warmup", 3*time.Second, "wait after the last snapshot before measuring")
	duration := flag.Duration("duration", 20*time.Second, "steady window")
	connectTimeout := flag.Duration("connect-timeout", 60*time.Second, "time allowed for every snapshot")
	parseEvery := flag.Int("parse-every", 10,
		"every Nth subscriber reads each quote (contract checks, newest quote time); the rest count them")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the steady window here")
	flag.Parse()

	pool := &dirtyPool{}
	conn := make([]*grpc.ClientConn, *conns)
	for i := range conn {
		c, err := grpc.NewClient(*target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// Large static windows: flow control must not be what limits a
			// subscriber that keeps up (a message is ~60 KB).
			grpc.WithStaticStreamWindowSize(4<<20),
			grpc.WithStaticConnWindowSize(256<<20),
			grpc.WithReadBufferSize(256<<10),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
			experimental.WithBufferPool(pool),
		)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(2)
		}
		conn[i] = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	var w clock
	var ready, done sync.WaitGroup
	ss := make([]*subscriber, *subs)
	var res0 result
	begin := time.Now()
	for i := range ss {
		ss[i] = &subscriber{
			parse:   *parseEvery <= 1 || i%*parseEvery == 0,
			samples: make([]sample, 0, int(duration.Seconds()*12)+16),
		}
		if ss[i].parse {
			res0.ParsingSubscribers++
		}
		ready.Add(1)
		done.Add(1)
		go func(s *subscriber, c *grpc.ClientConn) {
			defer done.Done()
			s.run(ctx, c, &w, &ready)
		}(ss[i], conn[i%len(conn)])
	}
	readyCh := make(chan struct{})
	go func() { ready.Wait(); close(readyCh) }()
	select {
	case <-readyCh:
	case <-time.After(*connectTimeout):
		fmt.Fprintln(os.Stderr, "not every subscriber got its snapshot in time")
	}
	snapshots := time.Since(begin)
	start := time.Now().Add(*warmup)
	w.end.Store(start.Add(*duration).UnixNano())
	w.start.Store(start.UnixNano())
	time.Sleep(time.Until(start))
	cpu0 := cpuSeconds()
	if *cpuProfile != "" {
		if f, err := os.Create(*cpuProfile); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer f.Close()
			}
		}
	}
	time.Sleep(*duration)
	cpu1 := cpuSeconds()
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	// Subscribers stop at their first message after the window; give the
	// stragglers a moment, then cancel the rest.
	time.Sleep(500 * time.Millisecond)
	cancel()
	done.Wait()
	for _, c := range conn {
		c.Close()
	}

	res := result{
		ParsingSubscribers: res0.ParsingSubscribers,
		Subscribers:        *subs, Connections: *conns,
		SnapshotsSeconds: snapshots.Seconds(),
		WindowStartNs:    w.start.Load(), WindowEndNs: w.end.Load(),
		WindowSeconds:    duration.Seconds(),
		ClientCPUSeconds: cpu1 - cpu0, ClientCPUCores: (cpu1 - cpu0) / duration.Seconds(),
		ClientGOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	// The newest quote time of each sequence, from the subscribers that read
	// every quote: a message up to sequence S carries the quotes of batch S,
	// whose ticks are the newest, whatever earlier batches it merges.
	newest := map[uint64]int64{}
	firstRecv := map[uint64]int64{}
	for _, s := range ss {
		for _, x := range s.samples {
			if t, ok := firstRecv[x.sequence]; !ok || x.recvNs < t {
				firstRecv[x.sequence] = x.recvNs
			}
			if s.parse && x.quotes > 0 && x.newestNs > newest[x.sequence] {
				newest[x.sequence] = x.newestNs
			}
		}
	}
	var lags, subMax, subMsgs, subQuotes []float64
	var quotes, bytes int64
	var messages int
	for _, s := range ss {
		if s.err != "" {
			res.Failed++
			if len(res.Errors) < 5 {
				res.Errors = append(res.Errors, s.err)
			}
		}
		if s.snapshotSize > res.SnapshotQuotes {
			res.SnapshotQuotes = s.snapshotSize
		}
		res.ViolationCount += len(s.violations)
		for _, v := range s.violations {
			if len(res.Violations) < 10 {
				res.Violations = append(res.Violations, v)
			}
		}
		worst := 0.0
		for _, x := range s.samples {
			if x.quotes == 0 {
				continue
			}
			t, ok := newest[x.sequence]
			if !ok {
				res.LagUnknown++
				continue
			}
			ms := float64(x.recvNs-t) / 1e6
			lags = append(lags, ms)
			worst = max(worst, ms)
		}
		subMax = append(subMax, worst)
		subMsgs = append(subMsgs, float64(s.messages)/duration.Seconds())
		subQuotes = append(subQuotes, float64(s.quotes)/duration.Seconds())
		quotes += s.quotes
		bytes += s.bytes
		messages += s.messages
		res.HeartbeatMessages += s.heartbeats
		res.ConflatedMessages += s.jumps
	}
	var spread []float64
	for _, s := range ss {
		for _, x := range s.samples {
			spread = append(spread, float64(x.recvNs-firstRecv[x.sequence])/1e6)
		}
	}
	seqs := make([]uint64, 0, len(firstRecv))
	for seq := range firstRecv {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	var intervals []float64
	for i := 1; i < len(seqs); i++ {
		if seqs[i] == seqs[i-1]+1 {
			intervals = append(intervals, float64(firstRecv[seqs[i]]-firstRecv[seqs[i-1]])/1e6)
		}
	}
	res.BatchIntervalMs = distOf(intervals)
	secs := duration.Seconds()
	res.QuotesPerSecond = float64(quotes) / secs
	res.MessagesPerSecond = float64(messages) / secs
	res.MegabytesPerSecond = float64(bytes) / secs / 1e6
	res.FeedBatchesPerSec = float64(len(firstRecv)) / secs
	if messages > 0 {
		res.QuotesPerMessage = float64(quotes) / float64(messages)
	}
	res.LagMs = distOf(lags)
	res.FanoutSpreadMs = distOf(spread)
	res.SubscriberMaxLagMs = distOf(subMax)
	res.SubscriberMsgsPerS = distOf(subMsgs)
	res.SubscriberQuotesPS = distOf(subQuotes)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
