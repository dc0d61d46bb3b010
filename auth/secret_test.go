package auth

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-clusterclient/clusterclient/internal/childproc"
)

func TestSecretCreatedOnceThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clusterclient-test", "secret")
	k1, created, err := loadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	if len(k1) != SecretSize {
		t.Fatalf("%d bytes", len(k1))
	}
	k2, created, err := loadOrCreate(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second call: created=%v err=%v equal=%v", created, err, bytes.Equal(k1, k2))
	}
	if hasModes {
		for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != want {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
			}
		}
	}
	assertNoTemp(t, filepath.Dir(path))
	h, err := New(Config{SecretFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.key, k1) {
		t.Error("New read another key")
	}
}

// Goroutines racing on fresh files: one creates, all read the same bytes.
func TestSecretConcurrentGoroutines(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "d", "secret")
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			keys    [][]byte
			creates int
		)
		start := make(chan struct{})
		for range 16 {
			wg.Go(func() {
				<-start
				k, created, err := loadOrCreate(path)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("round %d: %v", round, err)
					return
				}
				keys = append(keys, k)
				if created {
					creates++
				}
			})
		}
		close(start)
		wg.Wait()
		if creates != 1 {
			t.Fatalf("round %d: %d creators", round, creates)
		}
		for _, k := range keys {
			if !bytes.Equal(k, keys[0]) {
				t.Fatalf("round %d: different keys", round)
			}
		}
		assertNoTemp(t, filepath.Dir(path))
	}
}

// Eight processes start at one signal: exactly one creates the file and
// all of them read the same bytes.
func TestSecretConcurrentProcesses(t *testing.T) {
	const n = 8
	path := filepath.Join(t.TempDir(), "clusterclient-test", "secret")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	children := make([]*childproc.Child, n)
	for i := range children {
		children[i] = childproc.Start(t, "secret", path)
	}
	for _, c := range children {
		if _, err := c.Expect(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range children {
		if err := c.Send("go", nil); err != nil {
			t.Fatal(err)
		}
	}
	var creators int
	keys := map[string]int{}
	for _, c := range children {
		ev, err := c.Expect(ctx, "secret")
		if err != nil {
			t.Fatal(err)
		}
		var r secretResult
		if err := ev.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Err != "" {
			t.Fatalf("child %d: %s", c.Pid(), r.Err)
		}
		if r.Created {
			creators++
		}
		keys[r.Key]++
	}
	if creators != 1 || len(keys) != 1 {
		t.Fatalf("%d creators, %d distinct keys (%v)", creators, len(keys), keys)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if keys[hex.EncodeToString(onDisk)] != n {
		t.Fatal("the processes' key is not the file's")
	}
	assertNoTemp(t, filepath.Dir(path))
}

type secretResult struct {
	Created bool   `json:"created"`
	Key     string `json:"key"`
	Err     string `json:"err"`
}

func secretChild(args []string) int {
	childproc.Emit("ready", nil)
	childproc.Receive()
	k, created, err := loadOrCreate(args[0])
	r := secretResult{Created: created, Key: hex.EncodeToString(k)}
	if err != nil {
		r.Err = err.Error()
	}
	childproc.Emit("secret", r)
	childproc.Receive() // until the parent is done
	return 0
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".secret-") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

func TestDefaultSecretPath(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		abs := filepath.Join(t.TempDir(), "secret")
		t.Setenv(EnvSecretFile, abs)
		if p, err := DefaultSecretPath(); err != nil || p != abs {
			t.Fatalf("%q %v", p, err)
		}
		t.Setenv(EnvSecretFile, "relative/secret")
		if _, err := DefaultSecretPath(); !errors.Is(err, ErrSecretFile) {
			t.Fatalf("relative: %v", err)
		}
	})
	t.Run("xdg runtime", func(t *testing.T) {
		t.Setenv(EnvSecretFile, "")
		run := t.TempDir() // absolute on every OS
		t.Setenv("XDG_RUNTIME_DIR", run)
		if p, err := DefaultSecretPath(); err != nil || p != filepath.Join(run, "clusterclient", "secret") {
			t.Fatalf("%q %v", p, err)
		}
	})
	t.Run("config dir", func(t *testing.T) {
		cfg := t.TempDir()
		t.Setenv(EnvSecretFile, "")
		t.Setenv("XDG_RUNTIME_DIR", "")
		t.Setenv("XDG_CONFIG_HOME", cfg)
		t.Setenv("APPDATA", cfg)
		t.Setenv("HOME", cfg)
		d, err := os.UserConfigDir() // under cfg on every OS
		if err != nil {
			t.Fatal(err)
		}
		must(t, os.MkdirAll(d, 0o700))
		p, err := DefaultSecretPath()
		if err != nil || filepath.Dir(filepath.Dir(p)) != d || filepath.Base(p) != "secret" {
			t.Fatalf("%q %v, want a file under %s", p, err, d)
		}
	})
	t.Run("temp dir", func(t *testing.T) {
		t.Setenv(EnvSecretFile, "")
		t.Setenv("XDG_RUNTIME_DIR", "")
		missing := filepath.Join(t.TempDir(), "missing")
		t.Setenv("XDG_CONFIG_HOME", missing)
		t.Setenv("APPDATA", missing)
		t.Setenv("HOME", missing)
		p, err := DefaultSecretPath()
		if err != nil || !strings.HasPrefix(p, os.TempDir()) {
			t.Fatalf("%q %v", p, err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
