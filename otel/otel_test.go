package clusterotel_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/childproc"
	clusterotel "github.com/go-clusterclient/clusterclient/otel"
	"github.com/go-clusterclient/clusterclient/transport/transporttest"
)

func TestMain(m *testing.M) {
	childproc.Main(map[string]func([]string) int{"follower": followerMode})
	goleak.VerifyTestMain(m)
}

const channel = "Traced"

// errFail is the error the leader's "fail" method returns, with a code
// that crosses the wire.
type codedErr struct{}

func (codedErr) Error() string       { return "failed on purpose" }
func (codedErr) ClusterCode() string { return "E_ON_PURPOSE" }

// sdk is one process's OpenTelemetry SDK: spans kept in memory, metrics
// read on demand.
type sdk struct {
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	ended  chan struct{} // poked when a span ends
	h      *clusterotel.Handler
}

func newSDK() (*sdk, error) {
	s := &sdk{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader(), ended: make(chan struct{}, 1)}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(s.spans), sdktrace.WithSpanProcessor(poker{s.ended}))
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	h, err := clusterotel.New(clusterotel.WithTracerProvider(s.tp), clusterotel.WithMeterProvider(s.mp))
	s.h = h
	return s, err
}

func (s *sdk) shutdown() {
	s.tp.Shutdown(context.Background())
	s.mp.Shutdown(context.Background())
}

// poker signals each ended span.
type poker struct{ ch chan struct{} }

func (p poker) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p poker) OnEnd(sdktrace.ReadOnlySpan) {
	select {
	case p.ch <- struct{}{}:
	default:
	}
}
func (poker) Shutdown(context.Context) error   { return nil }
func (poker) ForceFlush(context.Context) error { return nil }

// spanRec is an ended span as the test compares it (and as the child
// sends it to the parent).
type spanRec struct {
	Name, Kind, Status  string
	Trace, Span, Parent string
	Attrs               map[string]string
	StartNano, EndNano  int64
}

func (s *sdk) spanRecs() []spanRec {
	var out []spanRec
	for _, st := range s.spans.GetSpans() {
		r := spanRec{Name: st.Name, Kind: st.SpanKind.String(), Status: st.Status.Code.String(),
			Trace: st.SpanContext.TraceID().String(), Span: st.SpanContext.SpanID().String(), Attrs: attrMap(st.Attributes),
			StartNano: st.StartTime.UnixNano(), EndNano: st.EndTime.UnixNano()}
		if st.Parent.IsValid() {
			r.Parent = st.Parent.SpanID().String()
		}
		out = append(out, r)
	}
	return out
}

// waitSpan returns the first ended span f accepts, waiting for it.
func (s *sdk) waitSpan(t *testing.T, what string, f func(spanRec) bool) spanRec {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		for _, r := range s.spanRecs() {
			if f(r) {
				return r
			}
		}
		select {
		case <-s.ended:
		case <-deadline:
			t.Fatalf("no span %s among %+v", what, s.spanRecs())
		}
	}
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// point is one data point of a metric: a histogram's count and sum, or a
// sum's value.
type point struct {
	Name  string
	Attrs map[string]string
	Count uint64
	Value float64
}

func (s *sdk) points(t testing.TB) []point {
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []point
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out = append(out, point{Name: m.Name, Attrs: attrMap(p.Attributes.ToSlice()), Count: p.Count, Value: p.Sum})
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					out = append(out, point{Name: m.Name, Attrs: attrMap(p.Attributes.ToSlice()), Count: p.Count, Value: float64(p.Sum)})
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out = append(out, point{Name: m.Name, Attrs: attrMap(p.Attributes.ToSlice()), Value: float64(p.Value)})
				}
			}
		}
	}
	return out
}

// find returns the points named name whose attributes include want.
func find(ps []point, name string, want map[string]string) []point {
	var out []point
	for _, p := range ps {
		if p.Name != name {
			continue
		}
		ok := true
		for k, v := range want {
			if p.Attrs[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// factory is the leader's real client: echo (which starts a span of its
// own in the handler's context) and fail.
func factory(tp trace.TracerProvider) cluster.Factory {
	return func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"echo": cluster.Method(func(ctx context.Context, s string) (string, error) {
				_, span := tp.Tracer("handler").Start(ctx, "echo-work")
				span.End()
				return s, nil
			}),
			"fail": func(context.Context, cluster.Args) (any, error) { return nil, codedErr{} },
			"note": cluster.Action(func(context.Context, string) error { return nil }),
		}}, nil
	}
}

// report is what the follower process sends its parent.
type report struct {
	Spans  []spanRec
	Points []point
	Echo   string
	Fail   string
	PID    int
}

// followerMode runs in the child: a follower that calls the parent's
// leader, then reports its spans and metric points and closes.
func followerMode(args []string) int {
	s, err := newSDK()
	if err != nil {
		childproc.Fatalf("otel: %v", err)
	}
	defer s.shutdown()
	readyEv := make(chan struct{}, 1)
	c, err := cluster.New(channel, factory(s.tp), cluster.WithAddr(args[0]), cluster.WithMode(cluster.ForceFollower),
		cluster.WithStatsHandler(s.h), cluster.WithEventHandler(func(ev cluster.Event) {
			if ev.Kind == cluster.EventReady {
				readyEv <- struct{}{} // the handler saw it first
			}
		}))
	if err != nil {
		childproc.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		childproc.Fatalf("ready: %v", err)
	}
	rep := report{PID: os.Getpid()}
	if rep.Echo, err = cluster.Call[string](ctx, c, "echo", "across"); err != nil {
		childproc.Fatalf("echo: %v", err)
	}
	_, err = c.Invoke(ctx, "fail")
	if err == nil {
		childproc.Fatalf("fail did not fail")
	}
	rep.Fail = cluster.ErrorCode(err)
	if err := c.InvokeOneway("note", "one-way"); err != nil {
		childproc.Fatalf("note: %v", err)
	}
	<-readyEv // Ready may return before the event (and the handler's time to ready) is raised
	rep.Spans, rep.Points = s.spanRecs(), s.points(nopTB{})
	childproc.Emit("report", rep)
	// The parent reads the leader's metrics with this follower connected,
	// then tells it to leave, so that the leader sees it go.
	if ev := childproc.Receive(); ev.Name != "leave" {
		childproc.Fatalf("unexpected %q from the parent", ev.Name)
	}
	if err := c.Close(ctx); err != nil {
		childproc.Fatalf("close: %v", err)
	}
	return 0
}

type nopTB struct{ testing.TB }

func (nopTB) Fatal(args ...any) { childproc.Fatalf("%v", fmt.Sprint(args...)) }

// Issue 18: a leader process and a follower process, each with its own
// SDK. The follower's call is one trace across both: the follower's client
// span, the leader's server span (its child), and the span the method's
// handler started (the server span's child); metric points carry the RPC
// conventions' names and attributes, with the right counts, on both sides.
// The leader's own call (caller=leader) has a client span, the handler's
// span its child.
func TestTraceAndMetricsAcrossProcesses(t *testing.T) {
	s, err := newSDK()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.shutdown)
	addr := transporttest.FreeAddr(t, "tcp", "127.0.0.1")
	left := make(chan cluster.Event, 1)
	l, err := cluster.New(channel, factory(s.tp), cluster.WithAddr(addr), cluster.WithMode(cluster.ForceLeader),
		cluster.WithStatsHandler(s.h), cluster.WithEventHandler(func(ev cluster.Event) {
			if ev.Kind == cluster.EventFollowerLeft {
				left <- ev
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Ready(ctx); err != nil {
		t.Fatal(err)
	}

	// caller=leader: its own call, one process.
	if got, err := cluster.Call[string](ctx, l, "echo", "local"); err != nil || got != "local" {
		t.Fatalf("local echo: %q %v", got, err)
	}
	local := s.waitSpan(t, "leader's client span", func(r spanRec) bool { return r.Name == channel+"/echo" && r.Kind == "client" })
	work := s.waitSpan(t, "leader's handler span", func(r spanRec) bool { return r.Name == "echo-work" && r.Trace == local.Trace })
	if work.Parent != local.Span || local.Attrs["clusterclient.role"] != "leader" || local.Attrs["rpc.system"] != "clusterclient" ||
		local.Attrs["rpc.service"] != channel || local.Attrs["rpc.method"] != "echo" || local.Status != "Unset" {
		t.Errorf("leader's own call: client %+v, handler %+v", local, work)
	}

	// caller=follower: another process.
	child := childproc.Start(t, "follower", addr)
	ev, err := child.Expect(ctx, "report")
	if err != nil {
		t.Fatalf("%v\n%s", err, child.Stderr())
	}
	var rep report
	if err := ev.Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Echo != "across" || rep.Fail != "E_ON_PURPOSE" {
		t.Fatalf("follower's calls: echo %q, fail code %q", rep.Echo, rep.Fail)
	}
	byName := func(spans []spanRec, name, kind string) spanRec {
		t.Helper()
		for _, r := range spans {
			if r.Name == name && r.Kind == kind {
				return r
			}
		}
		t.Fatalf("the follower has no %s span %q: %+v", kind, name, spans)
		return spanRec{}
	}
	fEcho := byName(rep.Spans, channel+"/echo", "client")
	fFail := byName(rep.Spans, channel+"/fail", "client")
	fNote := byName(rep.Spans, channel+"/note", "producer")
	sEcho := s.waitSpan(t, "server span of echo", func(r spanRec) bool { return r.Kind == "server" && r.Name == channel+"/echo" })
	sFail := s.waitSpan(t, "server span of fail", func(r spanRec) bool { return r.Kind == "server" && r.Name == channel+"/fail" })
	sNote := s.waitSpan(t, "server span of note", func(r spanRec) bool { return r.Kind == "server" && r.Name == channel+"/note" })
	sWork := s.waitSpan(t, "handler span of the follower's echo", func(r spanRec) bool { return r.Name == "echo-work" && r.Trace == fEcho.Trace })
	for _, pair := range []struct{ caller, server spanRec }{{fEcho, sEcho}, {fFail, sFail}, {fNote, sNote}} {
		if pair.server.Trace != pair.caller.Trace || pair.server.Parent != pair.caller.Span {
			t.Errorf("server span %+v is not the child of the follower's %+v", pair.server, pair.caller)
		}
	}
	if sWork.Parent != sEcho.Span {
		t.Errorf("handler span %+v is not the child of the server span %+v", sWork, sEcho)
	}
	t.Logf("one call across two processes (follower pid %d, leader pid %d):", rep.PID, os.Getpid())
	for _, r := range []struct {
		who string
		s   spanRec
	}{{"follower", fEcho}, {"leader", sEcho}, {"leader", sWork}} {
		t.Logf("  %-8s %-6s %-12s trace=%s span=%s parent=%s %.3fms role=%s",
			r.who, r.s.Kind, r.s.Name, r.s.Trace, r.s.Span, cmp.Or(r.s.Parent, "-"),
			float64(r.s.EndNano-r.s.StartNano)/1e6, cmp.Or(r.s.Attrs["clusterclient.role"], "-"))
	}
	if fEcho.Trace == local.Trace {
		t.Error("the follower's call shares the leader's own call's trace")
	}
	if fEcho.Attrs["clusterclient.role"] != "follower" || sEcho.Attrs["clusterclient.role"] != "leader" ||
		sEcho.Attrs["clusterclient.follower.address"] == "" || fEcho.Status != "Unset" {
		t.Errorf("echo spans: follower %+v, leader %+v", fEcho, sEcho)
	}
	for _, r := range []spanRec{fFail, sFail} {
		if r.Status != "Error" || r.Attrs["error.type"] != "E_ON_PURPOSE" {
			t.Errorf("fail span %+v: want status Error, error.type E_ON_PURPOSE", r)
		}
	}

	// The follower's metric points.
	rpc := map[string]string{"rpc.system": "clusterclient", "rpc.service": channel, "clusterclient.role": "follower"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	expectPoint(t, "follower", rep.Points, "rpc.client.call.duration", with(rpc, "rpc.method", "echo"), 1, "error.type")
	expectPoint(t, "follower", rep.Points, "rpc.client.call.duration", with(rpc, "rpc.method", "fail", "error.type", "E_ON_PURPOSE"), 1, "")
	expectPoint(t, "follower", rep.Points, "rpc.client.request.size", with(rpc, "rpc.method", "echo"), 1, "")
	expectPoint(t, "follower", rep.Points, "clusterclient.oneway.calls", with(rpc, "rpc.method", "note"), 0, "")
	expectPoint(t, "follower", rep.Points, "clusterclient.time_to_ready",
		map[string]string{"clusterclient.channel": channel, "clusterclient.role": "follower", "clusterclient.after": "start"}, 1, "")
	expectPoint(t, "follower", rep.Points, "clusterclient.terms", map[string]string{"clusterclient.role": "follower"}, 0, "")

	// The leader's, while the follower is still connected.
	ps := s.points(t)
	srv := with(rpc, "clusterclient.role", "leader")
	expectPoint(t, "leader", ps, "rpc.server.call.duration", with(srv, "rpc.method", "echo"), 1, "error.type")
	expectPoint(t, "leader", ps, "rpc.server.call.duration", with(srv, "rpc.method", "fail", "error.type", "E_ON_PURPOSE"), 1, "")
	expectPoint(t, "leader", ps, "rpc.server.request.size", with(srv, "rpc.method", "echo"), 1, "")
	expectPoint(t, "leader", ps, "rpc.client.call.duration", with(srv, "rpc.method", "echo"), 1, "")
	if got := find(ps, "clusterclient.followers", map[string]string{"clusterclient.channel": channel}); len(got) != 1 || got[0].Value != 1 {
		t.Errorf("clusterclient.followers while the follower is connected: %+v", got)
	}

	// The follower leaves.
	if err := child.Send("leave", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-left:
		if ev.PID != 0 && ev.PID != rep.PID {
			t.Errorf("EventFollowerLeft names pid %d, the follower is %d", ev.PID, rep.PID)
		}
	case <-ctx.Done():
		t.Fatal("the leader did not see the follower leave")
	}
	if err := child.Wait(ctx); err != nil {
		t.Fatalf("follower: %v\n%s", err, child.Stderr())
	}
	if got := find(s.points(t), "clusterclient.followers", map[string]string{"clusterclient.channel": channel}); len(got) != 1 || got[0].Value != 0 {
		t.Errorf("clusterclient.followers once it left: %+v", got)
	}
}

// expectPoint fails t unless exactly one point of name has the attributes
// want (and not the attribute without, if given) and, for count > 0, that
// count.
func expectPoint(t *testing.T, who string, ps []point, name string, want map[string]string, count uint64, without string) {
	t.Helper()
	got := find(ps, name, want)
	if without != "" {
		got = slices.DeleteFunc(got, func(p point) bool { _, ok := p.Attrs[without]; return ok })
	}
	if len(got) != 1 || (count > 0 && got[0].Count != count) || (count == 0 && got[0].Value == 0 && got[0].Count == 0) {
		var names []string
		for _, p := range ps {
			if p.Name == name {
				names = append(names, fmt.Sprintf("%v count=%d value=%v", p.Attrs, p.Count, p.Value))
			}
		}
		t.Errorf("%s: %s%v: got %+v; the points of %s: %s", who, name, want, got, name, strings.Join(names, "; "))
	}
}

// Without an SDK (the global no-op providers) the handler works and
// changes nothing a call returns.
func TestGlobalNoopProviders(t *testing.T) {
	h, err := clusterotel.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.New("NoSDK", factory(trace.NewNoopTracerProvider()), cluster.WithSingleMode(true), cluster.WithStatsHandler(h))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := cluster.Call[string](ctx, c, "echo", "x"); err != nil || got != "x" {
		t.Fatalf("echo: %q %v", got, err)
	}
	var ce codedErr
	if _, err := c.Invoke(ctx, "fail"); !errors.As(err, &ce) {
		t.Fatalf("fail: %v", err)
	}
}
