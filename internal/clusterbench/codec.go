package clusterbench

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/go-clusterclient/clusterclient/protocol"
)

// Codecs of the cluster workloads. json (the default) and serialize-json
// are the core module's; RegisterCodec adds others. The registry is
// written by RegisterCodec (before Main, by the program's main goroutine)
// and read by the parent's flag parsing and by each member process; mu
// guards it.
var (
	codecMu sync.RWMutex
	codecs  = map[string]protocol.Codec{
		protocol.JSON.Name():          protocol.JSON,
		protocol.SerializeJSON.Name(): protocol.SerializeJSON,
	}
)

// errCodecMismatch: a member runs another codec than the one asked for.
var errCodecMismatch = errors.New("clusterbench: member codec mismatch")

// defaultCodec is the codec of the cluster workloads when --codecs is not
// given, and the one whose rows are the report's "ours".
const defaultCodec = "json"

// RegisterCodec makes c selectable by its name in --codecs. A program
// calls it before Main, so that its child processes (the same program
// started again) know the codec too. It panics if c is nil, its name is
// empty or contains a comma or a slash, or a codec of that name is already
// registered (json and serialize-json are).
func RegisterCodec(c protocol.Codec) {
	if c == nil {
		panic("clusterbench: RegisterCodec of a nil codec")
	}
	name := c.Name()
	if name == "" || strings.ContainsAny(name, ",/ ") {
		panic(fmt.Sprintf("clusterbench: RegisterCodec: codec name %q is empty or has a comma, slash or space", name))
	}
	codecMu.Lock()
	defer codecMu.Unlock()
	if _, dup := codecs[name]; dup {
		panic(fmt.Sprintf("clusterbench: RegisterCodec: codec %q already registered", name))
	}
	codecs[name] = c
}

// codecByName returns the registered codec name; "" is the default.
func codecByName(name string) (protocol.Codec, error) {
	if name == "" {
		name = defaultCodec
	}
	codecMu.RLock()
	c, ok := codecs[name]
	codecMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: unknown codec %q (known: %s)", ErrInvalidConfig, name, strings.Join(knownCodecs(), ","))
	}
	return c, nil
}

// knownCodecs returns the registered codecs' names, sorted.
func knownCodecs() []string {
	codecMu.RLock()
	defer codecMu.RUnlock()
	names := make([]string, 0, len(codecs))
	for n := range codecs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// oursImplName is the implementation label of clusterclient's rows with
// codec: "ours" for the default codec, "ours/<codec>" for the others.
func oursImplName(codec string) string {
	if codec == "" || codec == defaultCodec {
		return implOurs
	}
	return implOurs + "/" + codec
}

// isOurs reports whether impl is clusterclient's, with any codec.
func isOurs(impl string) bool {
	return impl == implOurs || strings.HasPrefix(impl, implOurs+"/")
}
