package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// Methods of the suite's real client, callable through Invoke by every
// member of a cluster (see the package doc).
const (
	// MethodWhoami returns the real client's ID (a string naming its
	// process, channel and term).
	MethodWhoami = "whoami"
	// MethodEcho returns its first argument as it arrived (codec bytes).
	MethodEcho = "echo"
	// MethodSquare returns n*n for an int64 n.
	MethodSquare = "square"
	// MethodDigest returns the Digest of a string argument.
	MethodDigest = "digest"
	// MethodFail fails with a *protocol.RemoteError named FailName with
	// code FailCode and message FailMessage.
	MethodFail = "fail"
	// MethodPanic panics with PanicValue.
	MethodPanic = "panic"
	// MethodHold blocks until the holds are released (a case does that;
	// a member process does it when it closes) or the real client is
	// closed, ignoring its context; it then returns "released". It keeps a
	// call in flight for as long as a case needs, whatever the leader does
	// with the call's context.
	MethodHold = "hold"
	// MethodRecord records its string argument (the target of
	// InvokeOneway); MethodRecords returns what was recorded, in order.
	MethodRecord  = "record"
	MethodRecords = "records"
)

// What MethodFail and MethodPanic raise.
const (
	FailName    = "ConformanceError"
	FailCode    = "ERR_CONFORMANCE_FAIL"
	FailMessage = "the conformance real client fails on request"
	PanicValue  = "conformance: the real client panics on request"
)

// Reg is the registration the suite subscribes and publishes: a key, and
// for a publication, a value.
type Reg struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// Snapshot is what the suite's real client pushes to a subscription:
// every value published under the key and not unpublished, sorted, with
// the ID of the real client that pushed it and that client's count of
// pushes (from 1).
type Snapshot struct {
	Key    string   `json:"key"`
	Values []string `json:"values"`
	By     string   `json:"by"`
	Seq    int      `json:"seq"`
}

// Has reports whether v is among the snapshot's values.
func (s Snapshot) Has(v string) bool { return slices.Contains(s.Values, v) }

// Digest is MethodDigest's result.
type Digest struct {
	Len    int    `json:"len"`
	SHA256 string `json:"sha256"`
}

// digestOf computes the Digest of s.
func digestOf(s string) Digest {
	sum := sha256.Sum256([]byte(s))
	return Digest{Len: len(s), SHA256: hex.EncodeToString(sum[:])}
}

// upstream stands in for the server that the real clients of one process
// talk to. Each real client keeps its own data, as a registry forgets a
// dead client's publications: a new leader's real client knows the
// publications of the cluster only through replay.
//
// Concurrency: safe for concurrent use.
type upstream struct {
	prefix string

	// hooks, set before the first real client is built
	onBuild func(rc *realClient)
	onHold  func(rc *realClient)

	mu       sync.Mutex
	clients  []*realClient
	release  chan struct{} // closed by releaseHolds
	released bool
}

func newUpstream(prefix string) *upstream {
	return &upstream{prefix: prefix, release: make(chan struct{})}
}

// factory returns the cluster.Factory of channel's real client.
func (u *upstream) factory(channel string) cluster.Factory {
	return func(ctx context.Context, _ cluster.Emit) (*cluster.Service, error) {
		u.mu.Lock()
		n := 1
		for _, rc := range u.clients {
			if rc.channel == channel {
				n++
			}
		}
		rc := &realClient{
			id:      fmt.Sprintf("%s %s #%d", u.prefix, channel, n),
			channel: channel,
			up:      u,
			life:    ctx,
			data:    map[string][]string{},
			subs:    map[string]func(any){},
			subCall: map[string]int{},
			unsub:   map[string]int{},
		}
		u.clients = append(u.clients, rc)
		u.mu.Unlock()
		if u.onBuild != nil {
			u.onBuild(rc)
		}
		return rc.service(), nil
	}
}

// built returns the real clients built so far for channel, oldest first.
func (u *upstream) built(channel string) []*realClient {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*realClient
	for _, rc := range u.clients {
		if rc.channel == channel {
			out = append(out, rc)
		}
	}
	return out
}

// latest returns the newest real client of channel, or nil.
func (u *upstream) latest(channel string) *realClient {
	b := u.built(channel)
	if len(b) == 0 {
		return nil
	}
	return b[len(b)-1]
}

// releaseHolds ends every MethodHold call, now and later.
func (u *upstream) releaseHolds() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.released {
		u.released = true
		close(u.release)
	}
}

// realClient is the suite's real client: a registry that pushes each
// subscribed key's Snapshot, plus the methods listed above.
type realClient struct {
	id      string
	channel string
	up      *upstream
	life    context.Context // ends with the real client's term

	mu        sync.Mutex
	data      map[string][]string
	subs      map[string]func(any)
	seq       int
	subCall   map[string]int // upstream subscribes per key
	unsub     map[string]int // upstream unsubscribes per key
	published []Reg
	records   []string
	holding   int
	heldAt    time.Time // when the last MethodHold call started
	closes    int
}

// snapshot returns key's Snapshot (rc.mu held) and counts a push.
func (rc *realClient) snapshot(key string) Snapshot {
	rc.seq++
	vals := slices.Clone(rc.data[key])
	if vals == nil {
		vals = []string{}
	}
	slices.Sort(vals)
	return Snapshot{Key: key, Values: vals, By: rc.id, Seq: rc.seq}
}

func decodeReg(r cluster.Reg) (Reg, error) {
	var g Reg
	if err := r.Decode(&g); err != nil {
		return g, fmt.Errorf("conformance: registration %s: %w", r, err)
	}
	return g, nil
}

func (rc *realClient) service() *cluster.Service {
	return &cluster.Service{
		Subscribe: func(r cluster.Reg, push func(any)) error {
			g, err := decodeReg(r)
			if err != nil {
				return err
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			rc.subCall[g.Key]++
			rc.subs[g.Key] = push
			push(rc.snapshot(g.Key))
			return nil
		},
		Unsubscribe: func(r cluster.Reg) error {
			g, err := decodeReg(r)
			if err != nil {
				return err
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			rc.unsub[g.Key]++
			delete(rc.subs, g.Key)
			return nil
		},
		Publish: func(_ context.Context, r cluster.Reg) error {
			g, err := decodeReg(r)
			if err != nil {
				return err
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			rc.published = append(rc.published, g)
			if !slices.Contains(rc.data[g.Key], g.Value) {
				rc.data[g.Key] = append(rc.data[g.Key], g.Value)
			}
			if push := rc.subs[g.Key]; push != nil {
				push(rc.snapshot(g.Key))
			}
			return nil
		},
		Unpublish: func(_ context.Context, r cluster.Reg) error {
			g, err := decodeReg(r)
			if err != nil {
				return err
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			rc.data[g.Key] = slices.DeleteFunc(rc.data[g.Key], func(v string) bool { return v == g.Value })
			if push := rc.subs[g.Key]; push != nil {
				push(rc.snapshot(g.Key))
			}
			return nil
		},
		Methods: map[string]cluster.Handler{
			MethodWhoami: func(context.Context, cluster.Args) (any, error) { return rc.id, nil },
			MethodEcho: func(_ context.Context, a cluster.Args) (any, error) {
				if a.Len() == 0 {
					return nil, nil
				}
				return a.Raw(0)
			},
			MethodSquare: cluster.Method(func(_ context.Context, n int64) (int64, error) { return n * n, nil }),
			MethodDigest: cluster.Method(func(_ context.Context, s string) (Digest, error) { return digestOf(s), nil }),
			MethodFail: func(context.Context, cluster.Args) (any, error) {
				return nil, &protocol.RemoteError{Name: FailName, Code: FailCode, Message: FailMessage}
			},
			MethodPanic: func(context.Context, cluster.Args) (any, error) { panic(PanicValue) },
			MethodHold: func(context.Context, cluster.Args) (any, error) {
				rc.mu.Lock()
				rc.holding++
				rc.heldAt = time.Now()
				rc.mu.Unlock()
				if rc.up.onHold != nil {
					rc.up.onHold(rc)
				}
				select {
				case <-rc.up.release:
				case <-rc.life.Done():
				}
				return "released", nil
			},
			MethodRecord: cluster.Action(func(_ context.Context, s string) error {
				rc.mu.Lock()
				rc.records = append(rc.records, s)
				rc.mu.Unlock()
				return nil
			}),
			MethodRecords: func(context.Context, cluster.Args) (any, error) {
				rc.mu.Lock()
				defer rc.mu.Unlock()
				return slices.Clone(rc.records), nil
			},
		},
		Close: func(context.Context) error {
			rc.mu.Lock()
			rc.closes++
			rc.mu.Unlock()
			return nil
		},
	}
}

// state returns a copy of what the real client saw.
func (rc *realClient) state() realState {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	s := realState{
		subCall:   map[string]int{},
		unsub:     map[string]int{},
		published: slices.Clone(rc.published),
		records:   slices.Clone(rc.records),
		holding:   rc.holding,
		heldAt:    rc.heldAt,
		closes:    rc.closes,
		pushes:    rc.seq,
	}
	for k, v := range rc.subCall {
		s.subCall[k] = v
	}
	for k, v := range rc.unsub {
		s.unsub[k] = v
	}
	return s
}

type realState struct {
	subCall, unsub map[string]int
	published      []Reg
	records        []string
	holding        int
	heldAt         time.Time
	closes         int
	pushes         int
}

// publishedValue reports whether the real client received a Publish of
// value under key.
func (s realState) publishedValue(key, value string) bool {
	return slices.Contains(s.published, Reg{Key: key, Value: value})
}
