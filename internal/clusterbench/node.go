package clusterbench

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// nodeScript is the Node member (node/bench.js), written to the run's
// temporary directory so that the command works from any directory.
//
//go:embed node/bench.js
var nodeScript []byte

// nodeClusterClientVersion is the version of cluster-client compared with.
const nodeClusterClientVersion = "3.7.0"

// ErrNodeUnavailable: --vs-node cannot run (node or cluster-client
// missing, or a host without a shared monotonic clock).
var ErrNodeUnavailable = errors.New("clusterbench: Node comparison unavailable")

// nodeEnv is a usable node with cluster-client.
type nodeEnv struct {
	bin       string // node executable
	script    string // bench.js in the run's directory
	modules   string // node_modules holding cluster-client, for NODE_PATH
	version   string // node --version
	ccVersion string // cluster-client's version
}

// findNode locates node and cluster-client 3.7.0 and writes the script into
// dir.
func findNode(cfg Config, dir string) (*nodeEnv, error) {
	if !monoIsHostWide {
		return nil, fmt.Errorf("%w: cross-process timings need Linux's host-wide CLOCK_MONOTONIC", ErrNodeUnavailable)
	}
	bin, err := exec.LookPath(cfg.Node)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (install Node.js or pass -node)", ErrNodeUnavailable, err)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s --version: %v", ErrNodeUnavailable, bin, err)
	}
	mods := cfg.NodeModules
	if mods == "" {
		if mods, err = findInteropModules(); err != nil {
			return nil, err
		}
	}
	pkg, err := os.ReadFile(filepath.Join(mods, "cluster-client", "package.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v (run `cd interop && npm ci`)", ErrNodeUnavailable, err)
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(pkg, &meta); err != nil {
		return nil, fmt.Errorf("%w: cluster-client package.json: %v", ErrNodeUnavailable, err)
	}
	if meta.Version != nodeClusterClientVersion {
		return nil, fmt.Errorf("%w: cluster-client %s in %s, want %s", ErrNodeUnavailable, meta.Version, mods, nodeClusterClientVersion)
	}
	script := filepath.Join(dir, "bench.js")
	if err := os.WriteFile(script, nodeScript, 0o600); err != nil {
		return nil, err
	}
	return &nodeEnv{bin: bin, script: script, modules: mods, version: strings.TrimSpace(string(out)), ccVersion: meta.Version}, nil
}

// findInteropModules finds interop/node_modules (with cluster-client in
// it) in the working directory or one above it.
func findInteropModules() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		mods := filepath.Join(dir, "interop", "node_modules")
		if _, err := os.Stat(filepath.Join(mods, "cluster-client")); err == nil {
			return mods, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%w: no interop/node_modules/cluster-client in %s or above (run `cd interop && npm ci`, or pass -node-modules)", ErrNodeUnavailable, wd)
		}
	}
}

// nodeImpl is npm cluster-client on TCP. Publish runs with at most 4
// subscribers and the forced failover with cfg.NodeForcedKills kills
// (each costs Node's fixed 3 s probe); memory is not measured.
func (r *runner) nodeImpl() clusterImpl {
	env := r.node
	var pubN []int
	for _, n := range r.cfg.PublishN {
		if n <= 4 {
			pubN = append(pubN, n)
		}
	}
	return clusterImpl{
		impl:      implNode,
		transport: "tcp",
		addr:      func() (string, error) { return freePort("tcp") },
		spawn: func(ctx context.Context, name, addr, mode string) (*proc, memberReady, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, memberReady{}, err
			}
			p, err := strconv.Atoi(port)
			if err != nil {
				return nil, memberReady{}, err
			}
			a, err := json.Marshal(map[string]any{"port": p, "channel": channel, "mode": mode})
			if err != nil {
				return nil, memberReady{}, err
			}
			cmd := exec.Command(env.bin, env.script, string(a))
			cmd.Env = append(childEnv(), "NODE_PATH="+env.modules)
			var info memberReady
			proc, err := r.procs.start(ctx, "node "+name, cmd, &info)
			return proc, info, err
		},
		publishN:    pubN,
		autoKills:   r.cfg.Kills,
		forcedKills: r.cfg.NodeForcedKills,
	}
}
