package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// -metrics: each worker serves /metrics through OpenTelemetry's Prometheus
// exporter; a leader and a follower that made calls show the RPC
// conventions' duration histograms on their side and the leader counts
// its follower.
func TestMetricsEndpoint(t *testing.T) {
	cfg := Config{N: 2, Duration: time.Second, Rate: 100, Worker: os.Args[0], Metrics: "127.0.0.1:0"}
	d, err := newDemo(cfg, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d.start = time.Now()
	for range 2 {
		if _, err := d.startWorker(); err != nil {
			t.Fatal(err)
		}
	}
	var leader, follower *proc
	err = d.waitUntil(ctx, 30*time.Second, "a leader and a follower that served calls, with their metrics URLs", func() bool {
		leader, follower = nil, nil
		for _, p := range d.procs {
			switch {
			case p.metrics == "" || !p.st.Ready || p.st.Calls < 5:
			case p.st.Role == "leader":
				leader = p
			case p.st.Role == "follower":
				follower = p
			}
		}
		return leader != nil && follower != nil
	})
	if err != nil {
		t.Fatal(err)
	}
	scrape := func(url string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
		}
		return string(body)
	}
	for _, c := range []struct {
		who, url string
		want     []string
	}{
		{"follower", follower.metrics, []string{
			`rpc_client_call_duration_seconds_count\{[^}]*clusterclient_role="follower"[^}]*rpc_method="request"[^}]*rpc_service="nats-share"[^}]*rpc_system="clusterclient"[^}]*\} [1-9]`,
			`rpc_client_request_size_bytes_count\{[^}]*rpc_method="request"[^}]*\} [1-9]`,
			`clusterclient_subscriptions\{[^}]*clusterclient_channel="nats-share"[^}]*\} 1`,
			`clusterclient_time_to_ready_seconds_count\{[^}]*clusterclient_after="start"[^}]*clusterclient_role="follower"[^}]*\} 1`,
		}},
		{"leader", leader.metrics, []string{
			`rpc_server_call_duration_seconds_count\{[^}]*clusterclient_role="leader"[^}]*rpc_method="request"[^}]*\} [1-9]`,
			`rpc_client_call_duration_seconds_count\{[^}]*clusterclient_role="leader"[^}]*rpc_method="request"[^}]*\} [1-9]`,
			`clusterclient_followers\{[^}]*clusterclient_channel="nats-share"[^}]*\} 1`,
			`clusterclient_terms_total\{[^}]*clusterclient_role="leader"[^}]*\} 1`,
		}},
	} {
		body := scrape(c.url)
		for _, re := range c.want {
			if !regexp.MustCompile(re).MatchString(body) {
				t.Errorf("%s's /metrics lacks %s", c.who, re)
			}
		}
		if t.Failed() {
			t.Logf("%s's /metrics:\n%s", c.who, grepLines(body, "clusterclient|rpc_"))
		}
	}
}

func grepLines(s, pattern string) string {
	re := regexp.MustCompile(pattern)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestMetricsFlagChecked(t *testing.T) {
	for _, bad := range []string{"9464", "0.0.0.0:9464", "example.com:9464", "127.0.0.1:65500", "127.0.0.1:x"} {
		if err := (Config{N: 2, Duration: time.Second, Metrics: bad}).validate(); err == nil {
			t.Errorf("-metrics %q accepted", bad)
		}
	}
	if got := metricsAddrFor("127.0.0.1:9464", 3); got != "127.0.0.1:9466" {
		t.Errorf("worker 3's address: %q", got)
	}
	if got := metricsAddrFor("[::1]:0", 3); got != "[::1]:0" {
		t.Errorf("worker 3's address with port 0: %q", got)
	}
}
