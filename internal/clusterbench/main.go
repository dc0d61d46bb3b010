package clusterbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// Main runs clusterbench with the flags of os.Args and returns the exit
// status for os.Exit: 0, 1 if a measurement failed (the outputs are still
// written), 2 for bad flags. When the process was started by clusterbench
// as one of its children (a member, an echo server, ...), Main runs that
// role instead, until its stdin reaches EOF. A program that measures more
// codecs calls RegisterCodec before Main, in every process: the children
// are the same program started again.
func Main() int {
	if code, ok := childMain(); ok {
		return code
	}
	return Run(os.Args[1:], os.Stdout, os.Stderr)
}

// ChildMain runs the child role named in the environment, if this process
// was started by clusterbench as one of its children, and returns its exit
// code; ok is false otherwise. Main calls it first; a test binary that
// calls Run calls it from TestMain, since the children are the test binary
// started again.
func ChildMain() (code int, ok bool) { return childMain() }

// Run runs the command with the flags args (without the program name):
// it measures, writes results.json,
// results.md and bench.svg into the output directory, and prints the
// markdown on stdout. Progress goes to stderr. It returns the exit code:
// 0, 1 if something failed (the outputs are still written), 2 for bad
// flags.
func Run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if cfg.Render != "" {
		return render(cfg, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, runErr := run(ctx, cfg, stderr)
	if res == nil {
		fmt.Fprintln(stderr, "clusterbench:", runErr)
		return 1
	}
	md, err := writeOutputs(cfg.Out, res)
	if err != nil {
		fmt.Fprintln(stderr, "clusterbench:", err)
		return 1
	}
	stdout.Write(md)
	if runErr != nil || len(res.Errors) > 0 {
		fmt.Fprintf(stderr, "clusterbench: %d measurement(s) failed; see %s\n", len(res.Errors), filepath.Join(cfg.Out, "results.md"))
		return 1
	}
	return 0
}

// writeOutputs writes results.json, bench.svg and results.md into dir and
// returns the markdown.
func writeOutputs(dir string, res *Results) ([]byte, error) {
	data, err := res.marshalJSON()
	if err != nil {
		return nil, err
	}
	if _, err := writeFile(dir, "results.json", data); err != nil {
		return nil, err
	}
	var svg bytes.Buffer
	if err := writeSVG(&svg, res); err != nil {
		return nil, err
	}
	if _, err := writeFile(dir, "bench.svg", svg.Bytes()); err != nil {
		return nil, err
	}
	var md bytes.Buffer
	if err := writeMarkdown(&md, res, "bench.svg"); err != nil {
		return nil, err
	}
	if _, err := writeFile(dir, "results.md", md.Bytes()); err != nil {
		return nil, err
	}
	return md.Bytes(), nil
}

// render writes the outputs of an earlier run's results.json again.
func render(cfg Config, stdout, stderr io.Writer) int {
	data, err := os.ReadFile(cfg.Render)
	if err != nil {
		fmt.Fprintln(stderr, "clusterbench:", err)
		return 1
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		fmt.Fprintf(stderr, "clusterbench: %s: %v\n", cfg.Render, err)
		return 1
	}
	md, err := writeOutputs(cfg.Out, &res)
	if err != nil {
		fmt.Fprintln(stderr, "clusterbench:", err)
		return 1
	}
	stdout.Write(md)
	return 0
}
