package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
)

// envWorker carries a worker's configuration (JSON workerConfig) from the
// coordinator to the process it starts; its presence selects worker mode.
const envWorker = "NATS_SHARE_WORKER"

// workerConfig is what a worker needs to know.
type workerConfig struct {
	ID   int    `json:"id"`
	NATS string `json:"nats"` // the NATS server's client URL
	Port int    `json:"port"` // the clusterclient port on 127.0.0.1
	Rate int    `json:"rate"` // request calls per second (0: as fast as possible)
	// Metrics is the address of its /metrics endpoint ("": none).
	Metrics string `json:"metrics,omitempty"`
}

// Worker → coordinator: one JSON object per line on stdout.
type workerMsg struct {
	Kind string `json:"kind"` // "state", "sent" or "metrics"

	// metrics: where its /metrics endpoint serves
	URL string `json:"url,omitempty"`

	// state
	PID        int    `json:"pid,omitempty"`
	Role       string `json:"role,omitempty"`
	Term       uint64 `json:"term,omitempty"`
	Ready      bool   `json:"ready,omitempty"`
	Calls      uint64 `json:"calls,omitempty"`      // request calls answered
	LeaderLost uint64 `json:"leaderLost,omitempty"` // calls in flight when the leader died
	Timeouts   uint64 `json:"timeouts,omitempty"`   // calls without an answer in time
	Errors     uint64 `json:"errors,omitempty"`     // any other failure
	LastError  string `json:"lastError,omitempty"`
	Ticks      []int  `json:"ticks,omitempty"` // ticks received since the last report

	// sent
	Seq int    `json:"seq,omitempty"`
	Err string `json:"err,omitempty"`
}

// Coordinator → worker: one JSON object per line on stdin. The end of
// stdin means stop.
type workerCmd struct {
	Cmd string `json:"cmd"` // "send"
	Seq int    `json:"seq"`
}

// tick is the payload of the messages on tickSubject.
type tick struct {
	Seq int `json:"seq"`
}

// workerMain runs one worker: a clusterclient Client on the shared
// channel that subscribes to the ticks, makes request calls at the
// configured rate, sends ticks when told, and reports its state.
func workerMain(spec string) int {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "worker: bad %s: %v\n", envWorker, err)
		return 2
	}
	w := &worker{cfg: cfg, out: json.NewEncoder(os.Stdout), changed: make(chan struct{}, 1)}
	return w.run(os.Stdin)
}

type worker struct {
	cfg workerConfig
	c   *cluster.Client

	outMu sync.Mutex
	out   *json.Encoder

	mu      sync.Mutex
	role    cluster.Role
	term    uint64
	ready   bool
	ticks   []int
	lastErr string
	changed chan struct{} // a role or readiness change to report now

	calls, leaderLost, timeouts, errs atomic.Uint64
}

func (w *worker) run(stdin io.Reader) int {
	sigs := stopSignals() // from the start: a worker told to stop while it starts still closes
	defer signal.Stop(sigs)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).
		With(slog.Int("worker", w.cfg.ID))
	opts := []cluster.Option{cluster.WithPort(w.cfg.Port), cluster.WithLogger(log), cluster.WithEventHandler(w.event)}
	if w.cfg.Metrics != "" {
		m, err := startMetrics(w.cfg.Metrics)
		if err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			return 1
		}
		defer m.close()
		opts = append(opts, m.Option())
		w.write(workerMsg{Kind: "metrics", URL: m.URL()})
	}
	c, err := cluster.New(channel, natsFactory(w.cfg.NATS), opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	w.c = c
	if _, err := c.Subscribe(subscription{Subject: tickSubject}, w.onTick); err != nil {
		fmt.Fprintln(os.Stderr, "worker: subscribe:", err)
		return 1
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.callLoop(ctx) }()
	go func() { defer wg.Done(); w.reportLoop(ctx) }()

	// Commands until stdin ends (the coordinator closed it, or died) or
	// SIGTERM or SIGINT arrives (shutdown.go): either way the worker stops
	// calling and closes its Client gracefully, a leader handing over.
	cmds := readCommands(stdin)
loop:
	for {
		select {
		case cmd, ok := <-cmds:
			if !ok {
				break loop
			}
			wg.Add(1)
			go func() { defer wg.Done(); w.send(ctx, cmd.Seq) }()
		case <-sigs:
			break loop
		}
	}
	stop()
	wg.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := c.Close(cctx); err != nil {
		fmt.Fprintln(os.Stderr, "worker: close:", err)
		return 1
	}
	w.report()
	return 0
}

// event follows the Client's role and readiness.
func (w *worker) event(ev cluster.Event) {
	w.mu.Lock()
	switch ev.Kind {
	case cluster.EventRole:
		w.role, w.term, w.ready = ev.Role, ev.Term, false
	case cluster.EventReady:
		if ev.Term == w.term {
			w.ready = ev.Err == nil
		}
	case cluster.EventLeaderLost:
		if ev.Term == w.term {
			w.ready = false
		}
	default:
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *worker) onTick(v cluster.Value) {
	var m message
	var t tick
	if err := v.Decode(&m); err != nil || json.Unmarshal(m.Data, &t) != nil {
		w.fail(fmt.Errorf("undecodable tick: %v", err))
		return
	}
	w.mu.Lock()
	w.ticks = append(w.ticks, t.Seq)
	w.mu.Unlock()
}

func (w *worker) fail(err error) {
	w.errs.Add(1)
	w.mu.Lock()
	w.lastErr = err.Error()
	w.mu.Unlock()
}

// callLoop makes request/reply calls through the leader until ctx ends.
func (w *worker) callLoop(ctx context.Context) {
	var pace <-chan time.Time
	if w.cfg.Rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(w.cfg.Rate))
		defer t.Stop()
		pace = t.C
	}
	for {
		if pace != nil {
			select {
			case <-pace:
			case <-ctx.Done():
				return
			}
		} else if ctx.Err() != nil {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		reply, err := cluster.Call[[]byte](cctx, w.c, "request", request{Subject: infoSubject})
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			var info struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(reply, &info) != nil || info.Type != "io.nats.jetstream.api.v1.account_info_response" {
				w.fail(fmt.Errorf("unexpected reply to %s: %.80q", infoSubject, reply))
				continue
			}
			w.calls.Add(1)
		case errors.Is(err, cluster.ErrLeaderLost):
			w.leaderLost.Add(1) // in flight on the leader that died: effect unknown
		case errors.Is(err, cluster.ErrTimeout):
			w.timeouts.Add(1)
		default:
			w.fail(err)
		}
	}
}

// send publishes tick seq through the leader and says whether it did.
func (w *worker) send(ctx context.Context, seq int) {
	data, _ := json.Marshal(tick{Seq: seq})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := w.c.Invoke(cctx, "send", message{Subject: tickSubject, Data: data})
	cancel()
	msg := workerMsg{Kind: "sent", Seq: seq}
	if err != nil {
		msg.Err = err.Error()
	}
	w.write(msg)
}

// reportLoop reports the state every 100 ms, and at once on a change.
func (w *worker) reportLoop(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.changed:
		}
		w.report()
	}
}

func (w *worker) report() {
	w.mu.Lock()
	msg := workerMsg{Kind: "state", PID: os.Getpid(), Role: w.role.String(), Term: w.term, Ready: w.ready,
		Ticks: w.ticks, LastError: w.lastErr}
	w.ticks = nil
	w.mu.Unlock()
	msg.Calls, msg.LeaderLost = w.calls.Load(), w.leaderLost.Load()
	msg.Timeouts, msg.Errors = w.timeouts.Load(), w.errs.Load()
	w.write(msg)
}

func (w *worker) write(m workerMsg) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	if err := w.out.Encode(m); err != nil {
		os.Exit(3) // the coordinator is gone
	}
}
