package clusterotel_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/go-clusterclient/clusterclient/cluster"
	clusterotel "github.com/go-clusterclient/clusterclient/otel"
)

// Wire a Client to OpenTelemetry: one handler, one option. Here the
// metrics go to a reader that the example reads back; a program installs
// its exporter (Prometheus, OTLP, ...) in the MeterProvider instead, or
// sets the global providers and calls clusterotel.New() without options.
func Example() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	h, err := clusterotel.New(clusterotel.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}
	c, err := cluster.New("Greeter", func(context.Context, cluster.Emit) (*cluster.Service, error) {
		return &cluster.Service{Methods: map[string]cluster.Handler{
			"greet": cluster.Method(func(_ context.Context, name string) (string, error) { return "hello " + name, nil }),
		}}, nil
	}, cluster.WithSingleMode(true), cluster.WithStatsHandler(h))
	if err != nil {
		panic(err)
	}
	defer c.Close(context.Background())
	for range 3 {
		if _, err := cluster.Call[string](context.Background(), c, "greet", "otel"); err != nil {
			panic(err)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if hist, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "rpc.client.call.duration" {
				for _, p := range hist.DataPoints {
					method, _ := p.Attributes.Value("rpc.method")
					role, _ := p.Attributes.Value("clusterclient.role")
					fmt.Printf("%s %s method=%s role=%s count=%d\n", m.Name, m.Unit, method.Emit(), role.Emit(), p.Count)
				}
			}
		}
	}
	// Output:
	// rpc.client.call.duration s method=greet role=single count=3
}
