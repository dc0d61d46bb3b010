package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// Leader kinds in a report.
const (
	leaderGo      = "go"      // a Go clusterclient leader: status available
	leaderNode    = "node"    // a Node cluster-client leader: no status
	leaderUnknown = "unknown" // nothing answered, or it could not be told
)

// report is what clusterctl status prints (--json prints it as is).
type report struct {
	// Addr is "<transport> <address>" as the leader or the error named it.
	Addr string `json:"addr,omitempty"`
	// Leader is "go", "node" or "unknown".
	Leader string `json:"leader"`
	// Listing is the leader process's answer to the channel listing (only
	// without --channel).
	Listing  *cluster.Listing `json:"listing,omitempty"`
	Channels []channelReport  `json:"channels"`
	// Error says why nothing could be reported (the exit status is then 1).
	Error string `json:"error,omitempty"`
}

// channelReport is one channel: its status, or why there is none.
type channelReport struct {
	Channel string          `json:"channel"`
	Status  *cluster.Status `json:"status,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// status gathers the report for cfg.
func status(ctx context.Context, cfg *statusConfig) *report {
	rep := &report{Leader: leaderUnknown, Channels: []channelReport{}}
	opts := cfg.options()
	channels := []string{cfg.channel}
	if cfg.channel == "" {
		ls, err := cluster.ListChannels(ctx, opts...)
		if err != nil {
			rep.fail(err)
			switch {
			case errors.Is(err, cluster.ErrHandshake):
				rep.Leader = leaderGo
				rep.Error += " (name the channel with --channel NAME)"
			case errors.Is(err, cluster.ErrNoStatus):
				rep.Error += " (--channel NAME registers on a channel, which also works with a Node leader)"
			}
			return rep
		}
		rep.Leader, rep.Listing, rep.Addr = leaderGo, ls, ls.Addr
		channels = ls.Channels
		if len(channels) == 0 {
			rep.Error = "the leader process leads no channel on " + ls.Addr + " right now"
			return rep
		}
	}
	reported := 0
	for _, name := range channels {
		cr := channelReport{Channel: name}
		st, err := cluster.QueryStatus(ctx, name, opts...)
		switch {
		case err == nil:
			cr.Status, rep.Leader, rep.Addr = st, leaderGo, st.Transport+" "+st.Addr
			reported++
		case errors.Is(err, cluster.ErrNoStatus):
			// A Node leader: what registration showed is the report.
			rep.Leader, cr.Error = leaderNode, err.Error()
			if errors.Is(err, cluster.ErrProtocol) && cfg.codec != protocol.SerializeJSON {
				cr.Error += " (Node speaks serialize-json: add --codec serialize-json to register)"
			}
			rep.addrOf(err)
			reported++
		default:
			cr.Error = err.Error()
			rep.addrOf(err)
		}
		rep.Channels = append(rep.Channels, cr)
	}
	if reported == 0 {
		if len(rep.Channels) == 1 {
			rep.Error, rep.Channels = rep.Channels[0].Error, []channelReport{}
		} else {
			rep.Error = "no channel could be reported"
		}
	}
	return rep
}

func (rep *report) fail(err error) {
	rep.Error = err.Error()
	rep.addrOf(err)
}

func (rep *report) addrOf(err error) {
	var ce *cluster.Error
	if rep.Addr == "" && errors.As(err, &ce) {
		rep.Addr = ce.Addr
	}
}

func writeJSON(w io.Writer, rep *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeText prints the report for people.
func writeText(w io.Writer, rep *report) {
	if rep.Addr != "" {
		fmt.Fprintf(w, "address  %s\n", rep.Addr)
	}
	switch {
	case rep.Listing != nil:
		fmt.Fprintf(w, "leader   pid %d (%s), Go clusterclient, %d channel(s): %s\n",
			rep.Listing.PID, rep.Listing.Program, len(rep.Listing.Channels), strings.Join(rep.Listing.Channels, ", "))
	case rep.Leader == leaderNode:
		fmt.Fprintln(w, "leader   Node cluster-client (Node-compatible wire, no status requests)")
	default:
		for _, c := range rep.Channels {
			if c.Status != nil {
				fmt.Fprintf(w, "leader   pid %d (%s), Go clusterclient\n", c.Status.PID, c.Status.Program)
				break
			}
		}
	}
	for _, c := range rep.Channels {
		fmt.Fprintln(w)
		if c.Status == nil {
			fmt.Fprintf(w, "channel %q: %s\n", c.Channel, c.Error)
			continue
		}
		writeChannel(w, c.Status)
	}
}

func writeChannel(w io.Writer, st *cluster.Status) {
	state := "ready"
	if !st.Ready {
		state = "starting"
		if st.ReadyError != "" {
			state = "failed: " + st.ReadyError
		}
	}
	broadcast := "broadcast"
	if !st.Broadcast {
		broadcast = "one subscriber per value"
	}
	fmt.Fprintf(w, "channel %q: term %d, %s, codec %s, %s, %d call(s) in flight\n",
		st.Channel, st.Term, state, st.Codec, broadcast, st.InFlight)

	fmt.Fprintf(w, "  followers (%d):\n", len(st.Followers))
	if len(st.Followers) > 0 {
		rows := [][]string{{"REMOTE", "IDLE", "SUBSCRIPTIONS", "UNACKED PUSHES", ""}}
		for _, f := range st.Followers {
			note := ""
			if f.Observer {
				note = "(this clusterctl)"
			}
			rows = append(rows, []string{f.Remote, age(f.Idle), strconv.Itoa(f.Subscriptions), strconv.Itoa(f.PendingAcks), note})
		}
		table(w, rows)
	}

	fmt.Fprintf(w, "  subscriptions (%d):\n", len(st.Subscriptions))
	if len(st.Subscriptions) > 0 {
		rows := [][]string{{"KEY", "SUBSCRIBERS", "LEADER", "CACHED VALUE"}}
		for _, s := range st.Subscriptions {
			cached := "none"
			if s.Cached {
				cached = age(s.CacheAge) + " old"
			}
			leader := "no"
			if s.Leader {
				leader = "yes"
			}
			rows = append(rows, []string{s.Key, strconv.Itoa(s.Subscribers), leader, cached})
		}
		table(w, rows)
	}

	c := st.Counters
	fmt.Fprintf(w, "  counters: served %d, pushes %d, leader's own calls %d (%d failed), deliveries %d, terms %d, events dropped %d\n",
		c.Served, c.Pushes, c.Invokes, c.InvokeErrors, c.Deliveries, c.Elections, c.EventsDropped)
	methodTable(w, "methods served for followers", c.ServedMethods)
	methodTable(w, "the leader's own calls", c.Methods)
	if len(st.OtherChannels) > 0 {
		fmt.Fprintf(w, "  the same process also leads: %s\n", strings.Join(st.OtherChannels, ", "))
	}
}

// methodTable prints the per-method figures of one side, sorted by name.
func methodTable(w io.Writer, title string, ms map[string]cluster.MethodStats) {
	if len(ms) == 0 {
		return
	}
	fmt.Fprintf(w, "  %s (%d):\n", title, len(ms))
	rows := [][]string{{"METHOD", "CALLS", "ERRORS", "ONE-WAY", "MEAN", "P50", "P90", "P99", "MAX"}}
	for _, name := range slices.Sorted(maps.Keys(ms)) {
		m := ms[name]
		d := func(v time.Duration) string {
			if m.Calls == m.Oneway {
				return "-"
			}
			return v.Round(time.Microsecond).String()
		}
		rows = append(rows, []string{strconv.Quote(name), strconv.FormatUint(m.Calls, 10), strconv.FormatUint(m.Errors, 10),
			strconv.FormatUint(m.Oneway, 10), d(m.Mean), d(m.P50), d(m.P90), d(m.P99), d(m.Max)})
	}
	table(w, rows)
}

// table prints rows as aligned columns, indented by four spaces, without
// trailing blanks.
func table(w io.Writer, rows [][]string) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "    %s\n", strings.Join(r, "\t"))
	}
	tw.Flush()
	for line := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// age prints a duration for people: 0s, 850ms, 12.3s, 4m10s.
func age(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
