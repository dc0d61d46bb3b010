// Package clusterotel reports what a cluster.Client does to OpenTelemetry:
// metrics of its calls, followers, subscriptions, pushes and terms, and a
// span per call on each side, linked across processes.
//
// # Model
//
// New returns a cluster.StatsHandler; install it on every Client with
// cluster.WithStatsHandler:
//
//	h, err := clusterotel.New() // the global MeterProvider, TracerProvider and propagator
//	...
//	c, err := cluster.New("DataClient", factory, cluster.WithStatsHandler(h))
//
// It is a module of its own, so that the core module's importers download
// nothing of OpenTelemetry. It uses the OpenTelemetry API only: the
// program chooses the SDK and exporters (Prometheus, OTLP, stdout, ...).
//
// # Spans
//
// On the caller's side (leader, follower or single mode alike) each call
// gets a client span named "<channel>/<method>"; the trace context is
// injected into the call's metadata (cluster.WithMetadata: "traceparent"
// and "tracestate" with the W3C propagator), which crosses to the leader.
// There the follower's call runs in a server span, child of the caller's,
// and the method's handler gets its context: a span the handler starts is
// its child, so one trace shows both processes. A leader's own call has a
// client span only (its handler runs in the caller's context). A failed
// call's span has status Error and the attribute error.type.
//
// # Metrics
//
// The RPC semantic conventions of OpenTelemetry, in their newer form
// (durations in seconds): rpc.client.call.duration and
// rpc.server.call.duration (histograms of two-way calls), with
// rpc.system = "clusterclient", rpc.service = the channel, rpc.method,
// clusterclient.role (the role of the observing Client), and error.type on
// failures (cluster.ErrorKind: "timeout", "leader_lost", a method's error
// code, ...); rpc.client.request.size, rpc.client.response.size,
// rpc.server.request.size and rpc.server.response.size (bytes, for calls
// that crossed a connection). The library's own, all with
// clusterclient.channel:
//
//   - clusterclient.calls.in_flight: calls started and not ended (side:
//     caller or server)
//   - clusterclient.oneway.calls: one-way calls sent (or queued), with
//     error.type on failures
//   - clusterclient.followers: followers admitted on this process's leader
//   - clusterclient.subscriptions: subscription keys of this process's
//     Clients
//   - clusterclient.publications: Publish and Unpublish calls
//     (clusterclient.unpublish)
//   - clusterclient.pushes and clusterclient.push.fanout: values the real
//     client pushed on this process's leader, and to how many subscribers
//     each went
//   - clusterclient.terms: terms started, by role (elections won or
//     joined)
//   - clusterclient.leader_changes: ready terms that ended (a lost leader)
//   - clusterclient.time_to_ready: from New (clusterclient.after = "start")
//     or from a lost leader ("leader_lost") to a ready term, in seconds
//
// # What it does not do
//
// It does not configure an SDK or an exporter, and it does not sample:
// the TracerProvider decides. It does not trace a Node peer's calls (a
// Node follower sends no metadata; a Node leader ignores it).
package clusterotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/go-clusterclient/clusterclient/otel"

// Attribute keys.
const (
	KeyRPCSystem  = attribute.Key("rpc.system")
	KeyRPCService = attribute.Key("rpc.service")
	KeyRPCMethod  = attribute.Key("rpc.method")
	KeyErrorType  = attribute.Key("error.type")
	KeyRole       = attribute.Key("clusterclient.role")
	KeyChannel    = attribute.Key("clusterclient.channel")
	KeySide       = attribute.Key("clusterclient.side")
	KeyAfter      = attribute.Key("clusterclient.after")
	KeyUnpublish  = attribute.Key("clusterclient.unpublish")
	KeyRemote     = attribute.Key("clusterclient.follower.address")
	KeyOneway     = attribute.Key("clusterclient.oneway")
)

// RPCSystem is the value of rpc.system.
const RPCSystem = "clusterclient"

// Option configures New.
type Option func(*config)

type config struct {
	mp   metric.MeterProvider
	tp   trace.TracerProvider
	prop propagation.TextMapPropagator
}

// WithMeterProvider sets the MeterProvider (default: otel.GetMeterProvider()
// when New runs).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithTracerProvider sets the TracerProvider (default:
// otel.GetTracerProvider() when New runs).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithPropagators sets how the trace context travels in a call's metadata
// (default: otel.GetTextMapPropagator() when New runs, or W3C trace
// context, propagation.TraceContext{}, when none was installed there).
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// Handler is the cluster.StatsHandler that reports to OpenTelemetry. One
// Handler may serve any number of Clients. It is safe for concurrent use
// (its instruments are); it keeps no state of its own.
type Handler struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator

	clientDur, serverDur                         metric.Float64Histogram
	clientReq, clientResp, serverReq, serverResp metric.Int64Histogram
	inFlight                                     metric.Int64UpDownCounter
	oneway                                       metric.Int64Counter
	followers, subs                              metric.Int64UpDownCounter
	pubs, pushes, terms, leaderChanges           metric.Int64Counter
	fanout                                       metric.Int64Histogram
	ready                                        metric.Float64Histogram
}

var _ cluster.StatsHandler = (*Handler)(nil)

// New returns a Handler. It fails only if an instrument cannot be
// created (the MeterProvider refused it).
func New(opts ...Option) (*Handler, error) {
	cfg := config{}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.prop == nil {
		cfg.prop = otel.GetTextMapPropagator()
		if len(cfg.prop.Fields()) == 0 {
			// None was installed: OpenTelemetry's default propagates
			// nothing, and a trace would stop at the leader.
			cfg.prop = propagation.TraceContext{}
		}
	}
	m := cfg.mp.Meter(ScopeName)
	h := &Handler{tracer: cfg.tp.Tracer(ScopeName), prop: cfg.prop}
	// Bucket bounds of call durations in seconds: 100 µs to 30 s.
	durBuckets := metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
		0.25, 0.5, 1, 2.5, 5, 10, 30)
	sizeBuckets := metric.WithExplicitBucketBoundaries(0, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
	var errs []error
	f64h := func(name, desc, unit string, o ...metric.Float64HistogramOption) metric.Float64Histogram {
		i, err := m.Float64Histogram(name, append(o, metric.WithDescription(desc), metric.WithUnit(unit))...)
		errs = append(errs, err)
		return i
	}
	i64h := func(name, desc, unit string, o ...metric.Int64HistogramOption) metric.Int64Histogram {
		i, err := m.Int64Histogram(name, append(o, metric.WithDescription(desc), metric.WithUnit(unit))...)
		errs = append(errs, err)
		return i
	}
	i64c := func(name, desc, unit string) metric.Int64Counter {
		i, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return i
	}
	i64u := func(name, desc, unit string) metric.Int64UpDownCounter {
		i, err := m.Int64UpDownCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return i
	}
	h.clientDur = f64h("rpc.client.call.duration", "Duration of two-way calls on the caller's side.", "s", durBuckets)
	h.serverDur = f64h("rpc.server.call.duration", "Duration of followers' two-way calls on the leader.", "s", durBuckets)
	h.clientReq = i64h("rpc.client.request.size", "Encoded arguments a follower sent.", "By", sizeBuckets)
	h.clientResp = i64h("rpc.client.response.size", "Encoded replies a follower received.", "By", sizeBuckets)
	h.serverReq = i64h("rpc.server.request.size", "Encoded arguments the leader received.", "By", sizeBuckets)
	h.serverResp = i64h("rpc.server.response.size", "Encoded replies the leader sent.", "By", sizeBuckets)
	h.inFlight = i64u("clusterclient.calls.in_flight", "Calls started and not ended.", "{call}")
	h.oneway = i64c("clusterclient.oneway.calls", "One-way calls sent or queued.", "{call}")
	h.followers = i64u("clusterclient.followers", "Followers admitted on this process's leader.", "{follower}")
	h.subs = i64u("clusterclient.subscriptions", "Subscription keys of this process's Clients.", "{subscription}")
	h.pubs = i64c("clusterclient.publications", "Publish and Unpublish calls.", "{publication}")
	h.pushes = i64c("clusterclient.pushes", "Values the real client pushed on this process's leader.", "{value}")
	h.fanout = i64h("clusterclient.push.fanout", "Subscribers each pushed value went to.", "{subscriber}",
		metric.WithExplicitBucketBoundaries(0, 1, 2, 4, 8, 16, 32, 64, 128, 256))
	h.terms = i64c("clusterclient.terms", "Terms started (elections won or joined), by role.", "{term}")
	h.leaderChanges = i64c("clusterclient.leader_changes", "Ready terms that ended: a lost leader.", "{change}")
	h.ready = f64h("clusterclient.time_to_ready", "Time from New or from a lost leader to a ready term.", "s", durBuckets)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return h, nil
}

// TagCall starts the call's span: a client span whose trace context it
// injects into the call's metadata, or on the leader a server span, child
// of the trace context the follower's metadata carries.
func (h *Handler) TagCall(ctx context.Context, ci *cluster.CallInfo) context.Context {
	attrs := []attribute.KeyValue{
		KeyRPCSystem.String(RPCSystem), KeyRPCService.String(ci.Channel), KeyRPCMethod.String(ci.Method),
	}
	name := ci.Channel + "/" + ci.Method
	side := "caller"
	if ci.Side == cluster.SideServer {
		side = "server"
		ctx = h.prop.Extract(ctx, propagation.MapCarrier(cluster.Metadata(ctx)))
		attrs = append(attrs, KeyRole.String(ci.Role.String()), KeyRemote.String(ci.Remote))
		if ci.Oneway {
			attrs = append(attrs, KeyOneway.Bool(true))
		}
		ctx, _ = h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(ci.Start),
			trace.WithAttributes(attrs...))
	} else {
		kind := trace.SpanKindClient
		if ci.Oneway {
			kind = trace.SpanKindProducer
			attrs = append(attrs, KeyOneway.Bool(true))
		}
		ctx, _ = h.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(ci.Start), trace.WithAttributes(attrs...))
		carrier := propagation.MapCarrier{}
		h.prop.Inject(ctx, carrier)
		if len(carrier) > 0 {
			kv := make([]string, 0, 2*len(carrier))
			for k, v := range carrier {
				kv = append(kv, k, v)
			}
			ctx = cluster.WithMetadata(ctx, kv...)
		}
	}
	h.inFlight.Add(ctx, 1, metric.WithAttributes(KeyChannel.String(ci.Channel), KeySide.String(side)))
	return ctx
}

// HandleCall ends the call's span and records its metrics.
func (h *Handler) HandleCall(ctx context.Context, ci *cluster.CallInfo) {
	side := "caller"
	if ci.Side == cluster.SideServer {
		side = "server"
	}
	h.inFlight.Add(ctx, -1, metric.WithAttributes(KeyChannel.String(ci.Channel), KeySide.String(side)))
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, KeyRPCSystem.String(RPCSystem), KeyRPCService.String(ci.Channel), KeyRPCMethod.String(ci.Method),
		KeyRole.String(ci.Role.String()))
	if ci.Err != nil {
		attrs = append(attrs, KeyErrorType.String(ci.Code))
	}
	h.record(ctx, ci, metric.WithAttributes(attrs...))
	// The span ends last: whoever sees it ended sees the call's metrics.
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(KeyRole.String(ci.Role.String()))
		if ci.Err != nil {
			span.SetAttributes(KeyErrorType.String(ci.Code))
			span.SetStatus(codes.Error, ci.Err.Error())
		}
		span.End(trace.WithTimestamp(ci.End))
	}
}

// record records the metrics of an ended call.
func (h *Handler) record(ctx context.Context, ci *cluster.CallInfo, set metric.MeasurementOption) {
	if ci.Oneway {
		if ci.Side == cluster.SideCaller {
			h.oneway.Add(ctx, 1, set)
		}
		return
	}
	d := ci.Duration().Seconds()
	if ci.Side == cluster.SideServer {
		h.serverDur.Record(ctx, d, set)
		h.serverReq.Record(ctx, int64(ci.BytesIn), set)
		h.serverResp.Record(ctx, int64(ci.BytesOut), set)
		return
	}
	h.clientDur.Record(ctx, d, set)
	if ci.BytesOut > 0 || ci.BytesIn > 0 {
		h.clientReq.Record(ctx, int64(ci.BytesOut), set)
		h.clientResp.Record(ctx, int64(ci.BytesIn), set)
	}
}

// HandleEvent records the Client's other events.
func (h *Handler) HandleEvent(ev *cluster.StatsEvent) {
	ctx := context.Background()
	ch := KeyChannel.String(ev.Channel)
	switch ev.Kind {
	case cluster.StatsRole:
		h.terms.Add(ctx, 1, metric.WithAttributes(ch, KeyRole.String(ev.Role.String())))
	case cluster.StatsLeaderLost:
		h.leaderChanges.Add(ctx, 1, metric.WithAttributes(ch, KeyRole.String(ev.Role.String())))
	case cluster.StatsReady:
		if ev.Err == nil {
			after := "start"
			if ev.LeaderLost {
				after = "leader_lost"
			}
			h.ready.Record(ctx, ev.Elapsed.Seconds(), metric.WithAttributes(ch, KeyRole.String(ev.Role.String()), KeyAfter.String(after)))
		}
	case cluster.StatsFollowerJoined:
		h.followers.Add(ctx, 1, metric.WithAttributes(ch))
	case cluster.StatsFollowerLeft:
		h.followers.Add(ctx, -1, metric.WithAttributes(ch))
	case cluster.StatsSubscribe:
		h.subs.Add(ctx, 1, metric.WithAttributes(ch))
	case cluster.StatsUnsubscribe:
		h.subs.Add(ctx, -1, metric.WithAttributes(ch))
	case cluster.StatsPublish:
		h.pubs.Add(ctx, 1, metric.WithAttributes(ch, KeyUnpublish.Bool(ev.Unpublish)))
	case cluster.StatsPush:
		h.pushes.Add(ctx, 1, metric.WithAttributes(ch))
		h.fanout.Record(ctx, int64(ev.Count), metric.WithAttributes(ch))
	}
}
