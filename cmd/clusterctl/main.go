package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/internal/transportflag"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// Exit codes.
const (
	exitOK    = 0 // something was reported
	exitFail  = 1 // nothing could be reported
	exitUsage = 2 // bad command line
)

// DefaultTimeout bounds one clusterctl command.
const DefaultTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: clusterctl status [--transport tcp|unix|yamux|kcp] [--over tcp|unix]
                         [--addr ADDR | --port N] [--channel NAME]
                         [--codec json|serialize-json] [--timeout D] [--json]`

// run runs one command and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(stdout, usage)
			return exitOK
		}
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
	cfg, err := parseStatusFlags(args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "clusterctl: %v\n%s\n", err, usage)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	rep := status(ctx, cfg)
	if cfg.json {
		if err := writeJSON(stdout, rep); err != nil {
			fmt.Fprintln(stderr, "clusterctl:", err)
			return exitFail
		}
	} else {
		writeText(stdout, rep)
	}
	if rep.Error != "" {
		if !cfg.json {
			fmt.Fprintln(stderr, "clusterctl:", rep.Error)
		}
		return exitFail
	}
	return exitOK
}

// statusConfig is the parsed command line of clusterctl status.
type statusConfig struct {
	transport, over string
	addr            string
	port            int
	channel         string
	codec           protocol.Codec
	timeout         time.Duration
	json            bool
	insecure        bool
}

func parseStatusFlags(args []string, stderr io.Writer) (*statusConfig, error) {
	fs := flag.NewFlagSet("clusterctl status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &statusConfig{}
	var codec string
	fs.StringVar(&cfg.transport, "transport", "tcp", "the cluster's transport: tcp, unix, yamux or kcp")
	fs.StringVar(&cfg.over, "over", "tcp", "yamux's underlying transport: tcp or unix")
	fs.StringVar(&cfg.addr, "addr", "", "the cluster's address (default: the transport's default address)")
	fs.IntVar(&cfg.port, "port", 0, "the port of the transport's default host (instead of --addr)")
	fs.StringVar(&cfg.channel, "channel", "", "report only this channel (needed when the leader authenticates)")
	fs.StringVar(&codec, "codec", "json", "the channel's codec: json, or serialize-json for clusters shared with Node")
	fs.DurationVar(&cfg.timeout, "timeout", DefaultTimeout, "bound on the whole command")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object")
	fs.BoolVar(&cfg.insecure, "insecure", false,
		"do not authenticate (for clusters run with cluster.WithInsecure or WithNodeCompat, and Node leaders)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch codec {
	case "json":
		cfg.codec = protocol.JSON
	case "serialize-json":
		cfg.codec = protocol.SerializeJSON
	default:
		return nil, fmt.Errorf("--codec %q: want json or serialize-json", codec)
	}
	if cfg.addr != "" && cfg.port != 0 {
		return nil, errors.New("--addr and --port exclude each other")
	}
	if cfg.port < 0 || cfg.port > 65535 {
		return nil, fmt.Errorf("--port %d: want 1..65535", cfg.port)
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %v: want a positive duration", cfg.timeout)
	}
	if _, err := transportflag.New(cfg.transport, cfg.over); err != nil {
		return nil, err
	}
	return cfg, nil
}

// options are the cluster options of an observer: the same ones a
// follower of the cluster would be given.
func (cfg *statusConfig) options() []cluster.Option {
	tr, _ := transportflag.New(cfg.transport, cfg.over) // validated by parseStatusFlags
	opts := []cluster.Option{
		cluster.WithTransport(tr),
		cluster.WithCodec(cfg.codec),
		cluster.WithSingleMode(false),
		// A short-lived observer's warnings (a register retry) would only
		// repeat what the report says.
		cluster.WithLogger(slog.New(slog.DiscardHandler)),
	}
	if cfg.insecure {
		opts = append(opts, cluster.WithInsecure())
	}
	switch {
	case cfg.addr != "":
		opts = append(opts, cluster.WithAddr(cfg.addr))
	case cfg.port != 0:
		opts = append(opts, cluster.WithPort(cfg.port))
	}
	return opts
}
