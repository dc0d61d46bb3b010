// Command clusterctl inspects a running clusterclient cluster.
//
// Usage:
//
//	clusterctl status [flags]
//
// status connects to the cluster's address as an observer and prints what
// the leader reports: its process id and program, and for each channel
// its term, readiness, followers (remote address, idle time, subscription
// count, unacknowledged pushes), subscriptions with their subscribers and
// the age of the cached value, the calls running on the real client, the
// leader's counters, and per method the calls it served for followers and
// its own calls (count, errors, one-way, mean, p50, p90, p99, max; see
// cluster.MethodStats). --json prints the same as one JSON object (the
// report type; cluster.Status for each channel).
//
// Flags (the defaults are the library's):
//
//	--transport tcp|unix|yamux|kcp  the cluster's transport (default tcp)
//	--over tcp|unix                 yamux's underlying transport (default tcp)
//	--addr ADDR                     the address (default: the transport's
//	                                default, 127.0.0.1:7777 for tcp, yamux
//	                                and kcp, with CLUSTER_CLIENT_PORT applied)
//	--port N                        the port of the default host
//	--channel NAME                  only this channel (see below)
//	--codec json|serialize-json     the channel's codec (serialize-json for
//	                                clusters shared with Node processes)
//	--timeout D                     bound on the whole command (default 10s)
//	--json                          machine-readable output
//
// # How it observes
//
// With --channel, clusterctl registers on the channel exactly as a
// follower does (cluster.QueryStatus: the same registration, codec check
// and Handshake), asks the leader for a status snapshot, and hangs up; it
// subscribes to nothing and calls nothing. The leader lists it among the
// followers, marked as the observer. Without --channel it first asks the
// process that owns the address which channels it leads
// (cluster.ListChannels), which a Go leader answers only when its channels
// do not authenticate; with authentication, name the channel.
//
// A Node cluster-client leader has no status: clusterctl reports that the
// leader is a Node leader and whether it accepted the registration on the
// channel (use --codec serialize-json, Node's codec, to register).
//
// The exit status is 0 when something was reported, 1 when nothing could
// be (nothing listens, no such channel, refused), and 2 for bad flags.
package main
