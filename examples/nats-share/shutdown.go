package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// closeTimeout bounds a worker's Client.Close: a leader's hand-over
// (cluster.WithHandoverTimeout, 10 s by default) and the real client's
// close. Past it, what is left of the hand-over fails with ErrLeaderLost.
const closeTimeout = 15 * time.Second

// stopSignals returns a channel that receives SIGTERM and SIGINT: what a
// process manager (systemd, Kubernetes, a deploy script) or Ctrl-C sends
// when it wants a worker to stop. The worker then closes its Client
// gracefully instead of dying with its calls in flight. The caller stops
// the notification with signal.Stop.
func stopSignals() chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	return c
}

// readCommands reads the coordinator's commands from stdin, one JSON
// object per line, and closes the channel at EOF. A line that is not a
// command is reported on stderr and skipped.
func readCommands(stdin io.Reader) <-chan workerCmd {
	c := make(chan workerCmd)
	go func() {
		defer close(c)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			var cmd workerCmd
			if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil || cmd.Cmd != "send" {
				fmt.Fprintf(os.Stderr, "worker: bad command %q\n", sc.Text())
				continue
			}
			c <- cmd
		}
	}()
	return c
}
