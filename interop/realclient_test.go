package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-clusterclient/clusterclient/cluster"
	"github.com/go-clusterclient/clusterclient/protocol"
)

// dataReg is a subscription registration. Group comes before DataID, out
// of alphabetical order: a Node peer keeps the order it was given, so Go
// and Node agree on the key only if Go keeps the struct's order too (a map
// would sort the keys).
type dataReg struct {
	Group  string `json:"group"`
	DataID string `json:"dataId"`
}

// pubReg is a publication: it sets the last value of DataID.
type pubReg struct {
	DataID string `json:"dataId"`
	Value  string `json:"value"`
}

// dataValue is what a subscription delivers: how many values were
// published for DataID so far, and the last one.
type dataValue struct {
	DataID string  `json:"dataId"`
	N      int     `json:"n"`
	Last   *string `json:"last"`
}

func sub(dataID string) dataReg { return dataReg{Group: "interop", DataID: dataID} }

// dataClient is the Go real client of the tests, the twin of DataClient in
// node/peer.js: per dataId a count of publications and the last value;
// Subscribe pushes {dataId, n, last} at once and after every publish of
// that dataId. Every call of the leader's side is reported as an "rc"
// event, as the Node peer prints it.
//
// Concurrency: safe for concurrent use (the cluster calls it from many
// goroutines).
type dataClient struct {
	emit func(name string, data any)

	mu    sync.Mutex
	state map[string]dataValue
	push  map[string][]func(any)
}

// newDataFactory returns a cluster.Factory building a dataClient whose
// events go to emit.
func newDataFactory(emit func(name string, data any)) cluster.Factory {
	return func(context.Context, cluster.Emit) (*cluster.Service, error) {
		d := &dataClient{emit: emit, state: map[string]dataValue{}, push: map[string][]func(any){}}
		emit("rc", map[string]any{"op": "create"})
		return d.service(), nil
	}
}

func (d *dataClient) current(id string) dataValue {
	v, ok := d.state[id]
	if !ok {
		v = dataValue{DataID: id}
	}
	return v
}

func (d *dataClient) service() *cluster.Service {
	return &cluster.Service{
		Subscribe: func(reg cluster.Reg, push func(any)) error {
			var r dataReg
			if err := reg.Decode(&r); err != nil {
				return err
			}
			d.emit("rc", map[string]any{"op": "subscribe", "reg": r, "key": reg.Key()})
			d.mu.Lock()
			defer d.mu.Unlock()
			d.push[r.DataID] = append(d.push[r.DataID], push)
			push(d.current(r.DataID))
			return nil
		},
		Unsubscribe: func(reg cluster.Reg) error {
			var r dataReg
			if err := reg.Decode(&r); err != nil {
				return err
			}
			d.emit("rc", map[string]any{"op": "unSubscribe", "reg": r, "key": reg.Key()})
			d.mu.Lock()
			defer d.mu.Unlock()
			delete(d.push, r.DataID)
			return nil
		},
		Publish: func(_ context.Context, reg cluster.Reg) error {
			var r pubReg
			if err := reg.Decode(&r); err != nil {
				return err
			}
			d.emit("rc", map[string]any{"op": "publish", "reg": r})
			d.mu.Lock()
			defer d.mu.Unlock()
			v := d.current(r.DataID)
			v.N++
			v.Last = &r.Value
			d.state[r.DataID] = v
			for _, push := range d.push[r.DataID] {
				push(v)
			}
			return nil
		},
		Methods: map[string]cluster.Handler{
			"echo": func(_ context.Context, a cluster.Args) (any, error) {
				// The argument's own bytes go back: what Node sent is
				// what Node gets.
				return a.Raw(0)
			},
			"describe": func(_ context.Context, a cluster.Args) (any, error) {
				raw, err := a.Raw(0)
				if err != nil {
					return nil, err
				}
				v, err := naturalOf(raw)
				if err != nil {
					return nil, err
				}
				t, err := tagOf(v)
				if err != nil {
					return nil, err
				}
				b, err := json.Marshal(t)
				return string(b), err
			},
			"build": func(_ context.Context, a cluster.Args) (any, error) {
				var s string
				if err := a.Decode(0, &s); err != nil {
					return nil, err
				}
				var t tagged
				if err := json.Unmarshal([]byte(s), &t); err != nil {
					return nil, err
				}
				return untagGo(t)
			},
			"add": func(_ context.Context, a cluster.Args) (any, error) {
				var x, y int64
				if err := a.Decode(0, &x); err != nil {
					return nil, err
				}
				if err := a.Decode(1, &y); err != nil {
					return nil, err
				}
				return x + y, nil
			},
			"fail": func(_ context.Context, a cluster.Args) (any, error) {
				var name, message, code string
				for i, p := range []*string{&name, &message, &code} {
					if err := a.Decode(i, p); err != nil {
						return nil, err
					}
				}
				return nil, &protocol.RemoteError{Name: name, Message: message, Code: code,
					Stack: name + ": " + message + "\n    at fail (the Go leader)"}
			},
			"sleep": func(ctx context.Context, a cluster.Args) (any, error) {
				var ms int64
				if err := a.Decode(0, &ms); err != nil {
					return nil, err
				}
				select {
				case <-time.After(time.Duration(ms) * time.Millisecond):
					return fmt.Sprintf("slept %dms", ms), nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			},
			"note": func(_ context.Context, a cluster.Args) (any, error) {
				raw, err := a.Raw(0)
				if err != nil {
					return nil, err
				}
				v, err := naturalOf(raw)
				if err != nil {
					return nil, err
				}
				t, err := tagOf(v)
				if err != nil {
					return nil, err
				}
				d.emit("rc", map[string]any{"op": "note", "value": t})
				return nil, nil
			},
		},
		Close: func(context.Context) error {
			d.emit("rc", map[string]any{"op": "close"})
			return nil
		},
	}
}

// errNoValue is returned when a tag names no value.
var errNoValue = errors.New("tag without a value")
