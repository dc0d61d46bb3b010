// Command grpcecho is clusterbench's gRPC baseline (issue 19): a unary
// echo over loopback TCP with gRPC and a raw-bytes codec (no protobuf),
// which is what a Go user would reach for instead of clusterclient to
// share a client living in another process.
//
// It lives in a module of its own so that gRPC never enters the module
// graph of the library. clusterbench builds it at run time (go build into
// its temporary directory) or runs a prebuilt binary given with
// --grpc-bin, and drives it as it drives its own children, with one JSON
// request per line on stdin and one reply per line on stdout:
//
//	grpcecho server [addr]   listen (default 127.0.0.1:0); setup reply {"addr": "127.0.0.1:port", "version": gRPC's}
//	grpcecho client addr     dial; then "pingpong" and "echo" requests, as clusterbench's raw client
//
// A request is {"event": name, "data": {...}}, a reply {"event": "ok",
// "data": ...} or {"event": "error", "data": "message"}; the first reply
// is the setup's. The process exits when its stdin reaches EOF.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"google.golang.org/grpc"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	usage := func() int {
		fmt.Fprintln(stderr, "usage: grpcecho server [addr] | grpcecho client addr")
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	ctx := context.Background()
	switch {
	case args[0] == "server" && len(args) <= 2:
		addr := "127.0.0.1:0"
		if len(args) == 2 {
			addr = args[1]
		}
		s, err := listen(addr)
		if err != nil {
			return serve(stdin, stdout, nil, err, nil)
		}
		defer s.close()
		return serve(stdin, stdout, map[string]string{"addr": s.addr, "version": grpc.Version}, nil, nil)
	case args[0] == "client" && len(args) == 2:
		c, err := dial(ctx, args[1])
		if err != nil {
			return serve(stdin, stdout, nil, err, nil)
		}
		defer c.close()
		return serve(stdin, stdout, struct{}{}, nil, map[string]func(json.RawMessage) (any, error){
			"pingpong": func(data json.RawMessage) (any, error) {
				var p pingPongArgs
				if err := json.Unmarshal(data, &p); err != nil {
					return nil, err
				}
				s, err := c.pingPong(ctx, p)
				return samplesReply{Samples: s}, err
			},
			"echo": func(data json.RawMessage) (any, error) {
				var p loadArgs
				if err := json.Unmarshal(data, &p); err != nil {
					return nil, err
				}
				return c.load(ctx, p), nil
			},
		})
	}
	return usage()
}

type event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data,omitempty"`
}

// serve writes the setup reply (ready, or setupErr), then answers each
// request line with its command until stdin ends. It returns the exit
// code.
func serve(stdin io.Reader, stdout io.Writer, ready any, setupErr error, cmds map[string]func(json.RawMessage) (any, error)) int {
	out := bufio.NewWriter(stdout)
	answer := func(v any, err error) {
		name := "ok"
		if err != nil {
			name, v = "error", err.Error()
		}
		data, merr := json.Marshal(v)
		if merr != nil {
			name, data = "error", []byte(fmt.Sprintf("%q", "encode reply: "+merr.Error()))
		}
		line, _ := json.Marshal(event{Name: name, Data: data})
		out.Write(append(line, '\n'))
		out.Flush()
	}
	answer(ready, setupErr)
	if setupErr != nil {
		return 1
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var req event
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			answer(nil, fmt.Errorf("bad request %q: %v", sc.Text(), err))
			continue
		}
		cmd, ok := cmds[req.Name]
		if !ok {
			answer(nil, fmt.Errorf("unknown command %q", req.Name))
			continue
		}
		answer(cmd(req.Data))
	}
	return 0
}
