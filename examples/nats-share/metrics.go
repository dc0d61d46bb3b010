package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/go-clusterclient/clusterclient/cluster"
	clusterotel "github.com/go-clusterclient/clusterclient/otel"
)

// Metrics (-metrics host:port): every worker serves /metrics in the
// Prometheus text format, through OpenTelemetry: package clusterotel
// reports the Client's calls and events to a MeterProvider whose reader
// is OpenTelemetry's Prometheus exporter. Worker n listens on port+n-1
// (port 0: a free port each); each says where in its "metrics" message,
// and the coordinator prints it.

// metricsAddrFor returns worker id's metrics address for the -metrics
// flag's value base ("" when off).
func metricsAddrFor(base string, id int) string {
	if base == "" {
		return ""
	}
	host, port, _ := net.SplitHostPort(base) // checked by validate
	p, _ := strconv.Atoi(port)
	if p != 0 {
		p += id - 1
	}
	return net.JoinHostPort(host, strconv.Itoa(p))
}

// checkMetricsAddr accepts a loopback host:port (port 0: a free port per
// worker) that leaves room for a few hundred workers.
func checkMetricsAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-metrics %q: want host:port (%w)", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-metrics %q: the host must be a loopback address (127.0.0.1 or ::1)", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535-256 {
		return fmt.Errorf("-metrics %q: port 0..%d", addr, 65535-256)
	}
	return nil
}

// metricsServer is a worker's /metrics endpoint and the handler that
// feeds it.
type metricsServer struct {
	h   cluster.StatsHandler
	mp  *sdkmetric.MeterProvider
	srv *http.Server
	ln  net.Listener
}

// startMetrics listens on addr and serves /metrics; Option installs its
// handler on the Client.
func startMetrics(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// The three lines of the README: an exporter, a MeterProvider that
	// reads through it, and the handler (cluster.WithStatsHandler(h)).
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	h, err := clusterotel.New(clusterotel.WithMeterProvider(mp))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &metricsServer{h: h, mp: mp, ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("metrics:", err) // not JSON: the coordinator logs it
		}
	}()
	return m, nil
}

// URL is where the endpoint serves.
func (m *metricsServer) URL() string { return "http://" + m.ln.Addr().String() + "/metrics" }

// Option installs the handler on a Client.
func (m *metricsServer) Option() cluster.Option { return cluster.WithStatsHandler(m.h) }

func (m *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.srv.Shutdown(ctx)
	m.mp.Shutdown(ctx)
}
