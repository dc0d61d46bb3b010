package clusterbench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

// A role is what a Go child process does. setup runs once with the role's
// arguments; its result is the setup reply. Then each request is handled by
// the command of that name, one at a time, in order. close runs when stdin
// reaches EOF, before the process exits.
type role func(args json.RawMessage) (ready any, cmds map[string]command, close func(), err error)

// command handles one request of a child.
type command func(data json.RawMessage) (any, error)

// roles are the child roles of clusterbench.
var roles = map[string]role{
	"echo-server": echoServerRole,
	"raw-client":  rawClientRole,
	"relay":       relayRole,
	"member":      memberRole,
	"crowd":       crowdRole,
}

// childMain runs the child role named in the environment, if any, and
// returns its exit code; ok is false in the parent (no role set).
func childMain() (code int, ok bool) {
	name := os.Getenv(envRole)
	if name == "" {
		return 0, false
	}
	r, found := roles[name]
	if !found {
		fmt.Fprintf(os.Stderr, "clusterbench: unknown child role %q\n", name)
		return 2, true
	}
	return serveChild(r, json.RawMessage(os.Getenv(envArgs))), true
}

// serveChild runs a role on stdin and stdout.
func serveChild(r role, args json.RawMessage) int {
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	write := func(name string, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			name = replyError
			data, _ = json.Marshal("encode reply data: " + err.Error())
		}
		line, _ := json.Marshal(childproc.Event{Name: name, Data: data}) // data is valid JSON
		out.Write(line)
		out.WriteByte('\n')
		out.Flush()
	}
	answer := func(v any, err error) {
		if err != nil {
			write(replyError, err.Error())
			return
		}
		write(replyOK, v)
	}

	ready, cmds, closeFn, err := r(args)
	answer(ready, err)
	if err != nil {
		return 1
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var req childproc.Event
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			answer(nil, fmt.Errorf("bad request %q: %v", sc.Text(), err))
			continue
		}
		cmd, found := cmds[req.Name]
		if !found {
			answer(nil, fmt.Errorf("unknown command %q", req.Name))
			continue
		}
		answer(cmd(req.Data))
	}
	if closeFn != nil {
		closeFn()
	}
	return 0
}

// decodeArgs decodes a role's or command's JSON data into v.
func decodeArgs(data json.RawMessage, v any) error {
	if len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("arguments %s: %w", truncate(data, 200), err)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
