package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestEcho runs the baseline tiny, so it cannot rot: sequential calls of
// both sizes and a short load with calls in flight.
func TestEcho(t *testing.T) {
	s, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := dial(ctx, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, size := range []int{64, 4096} {
		samples, err := c.pingPong(ctx, pingPongArgs{Size: size, Calls: 50})
		if err != nil || len(samples) != 50 {
			t.Fatalf("%d B: %d samples, %v", size, len(samples), err)
		}
	}
	rep := c.load(ctx, loadArgs{Size: 4096, InFlight: 8, Start: monoNow(), Duration: int64(20 * time.Millisecond)})
	if rep.Ops == 0 || rep.Failed != 0 || rep.Elapsed <= 0 {
		t.Fatalf("load: %+v", rep)
	}
	// The echo checks what comes back.
	if err := c.echo(ctx, []byte("abc"), new([]byte)); err != nil {
		t.Fatal(err)
	}
}

// TestLines drives a server and a client process's main as clusterbench
// does: setup replies, then one reply per request line.
func TestLines(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	code := make(chan int, 1)
	go func() { code <- realMain([]string{"server"}, inR, outW, io.Discard); outW.Close() }()
	sc := bufio.NewScanner(outR)
	if !sc.Scan() {
		t.Fatal("no setup reply")
	}
	var setup struct {
		Name string `json:"event"`
		Data struct {
			Addr string `json:"addr"`
		} `json:"data"`
	}
	if err := json.Unmarshal(sc.Bytes(), &setup); err != nil || setup.Name != "ok" || setup.Data.Addr == "" {
		t.Fatalf("setup %s: %v", sc.Bytes(), err)
	}
	go io.Copy(io.Discard, outR)
	defer func() {
		inW.Close()
		if c := <-code; c != 0 {
			t.Errorf("server exit %d", c)
		}
	}()

	reqs := fmt.Sprintf(`{"event":"pingpong","data":{"size":64,"calls":50}}
{"event":"echo","data":{"size":64,"inflight":4,"start_ns":%d,"duration_ns":1000000000}}
{"event":"nope"}
`, monoNow())
	var out bytes.Buffer
	if c := realMain([]string{"client", setup.Data.Addr}, strings.NewReader(reqs), &out, io.Discard); c != 0 {
		t.Fatalf("client exit %d: %s", c, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d replies: %s", len(lines), out.String())
	}
	var pp struct {
		Name string       `json:"event"`
		Data samplesReply `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &pp); err != nil || pp.Name != "ok" || len(pp.Data.Samples) != 50 {
		t.Fatalf("pingpong reply %s: %v", lines[1], err)
	}
	var ld struct {
		Name string    `json:"event"`
		Data loadReply `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &ld); err != nil || ld.Name != "ok" || ld.Data.Ops == 0 {
		t.Fatalf("echo reply %s: %v", lines[2], err)
	}
	if !strings.Contains(lines[3], `"error"`) || !strings.Contains(lines[3], "unknown command") {
		t.Fatalf("unknown command reply %s", lines[3])
	}
	if c := realMain([]string{"client", "127.0.0.1:1"}, strings.NewReader(""), io.Discard, io.Discard); c != 1 {
		t.Fatalf("client of nothing: exit %d", c)
	}
	if c := realMain(nil, strings.NewReader(""), io.Discard, io.Discard); c != 2 {
		t.Fatalf("no arguments: exit %d", c)
	}
}
