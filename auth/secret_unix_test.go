//go:build unix

package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Files and directories others could read, write or swap are refused,
// with a message that says what is wrong.
func TestSecretWrongPermissions(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, dir, path string)
		want  string
		root  bool // needs root (chown)
	}{
		{"file 0644", func(t *testing.T, _, path string) { chmod(t, path, 0o644) }, "mode 0644", false},
		{"file 0640", func(t *testing.T, _, path string) { chmod(t, path, 0o640) }, "mode 0640", false},
		{"file 0606", func(t *testing.T, _, path string) { chmod(t, path, 0o606) }, "mode 0606", false},
		{"dir 0777", func(t *testing.T, dir, _ string) { chmod(t, dir, 0o777) }, "mode 0777", false},
		{"dir 0770", func(t *testing.T, dir, _ string) { chmod(t, dir, 0o770) }, "mode 0770", false},
		{"file symlink", func(t *testing.T, dir, path string) {
			other := filepath.Join(dir, "other")
			must(t, os.Rename(path, other))
			must(t, os.Symlink(other, path))
		}, "symbolic link", false},
		{"fifo", func(t *testing.T, _, path string) {
			must(t, os.Remove(path))
			must(t, syscall.Mkfifo(path, 0o600))
		}, "not a regular file", false},
		{"directory in its place", func(t *testing.T, _, path string) {
			must(t, os.Remove(path))
			must(t, os.Mkdir(path, 0o700))
		}, "not a regular file", false},
		{"short", func(t *testing.T, _, path string) { must(t, os.WriteFile(path, []byte("12345678"), 0o600)) }, "holds 8 bytes", false},
		{"file of another user", func(t *testing.T, _, path string) { must(t, os.Chown(path, 65534, 65534)) }, "owned by uid 65534", true},
		{"dir of another user", func(t *testing.T, dir, _ string) { must(t, os.Chown(dir, 65534, 65534)) }, "owned by uid 65534", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root && os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			dir := filepath.Join(t.TempDir(), "cc")
			path := filepath.Join(dir, "secret")
			if _, err := LoadOrCreateSecret(path); err != nil {
				t.Fatal(err)
			}
			c.setup(t, dir, path)
			_, err := LoadOrCreateSecret(path)
			if !errors.Is(err, ErrSecretFile) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want ErrSecretFile naming %s and saying %q", err, path, c.want)
			}
			if _, err := New(Config{SecretFile: path}); !errors.Is(err, ErrSecretFile) {
				t.Fatalf("New: %v", err)
			}
		})
	}
	t.Run("dir symlink", func(t *testing.T) {
		base := t.TempDir()
		real := filepath.Join(base, "real")
		must(t, os.Mkdir(real, 0o700))
		link := filepath.Join(base, "link")
		must(t, os.Symlink(real, link))
		if _, err := LoadOrCreateSecret(filepath.Join(link, "secret")); !errors.Is(err, ErrSecretFile) || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("got %v", err)
		}
	})
}

func chmod(t *testing.T, p string, m os.FileMode) { t.Helper(); must(t, os.Chmod(p, m)) }

// Another user who takes clusterclient-<uid> in the temporary directory
// first does not stop this user: the secret goes to the next free name,
// found again by the next process; a config directory of another user is
// not used either. (Issue 14; package cluster's TestSquattedDefaultDirs
// runs the squatter and the victim as real processes of two uids.)
func TestDefaultSecretPathSquatted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a directory of another user needs root")
	}
	tmp := t.TempDir()
	chmod(t, tmp, 0o1777)
	cfgHome := t.TempDir()
	must(t, os.Chown(cfgHome, 65534, 65534)) // exists, but not ours
	t.Setenv(EnvSecretFile, "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("TMPDIR", tmp)
	squatted := filepath.Join(tmp, "clusterclient-0")
	must(t, os.Symlink(t.TempDir(), squatted))
	must(t, os.Lchown(squatted, 65534, 65534))
	want := filepath.Join(tmp, "clusterclient-0-1", "secret")
	for range 2 {
		p, err := DefaultSecretPath()
		if err != nil || p != want {
			t.Fatalf("DefaultSecretPath = %q, %v; want %q", p, err, want)
		}
		if _, err := New(Config{}); err != nil {
			t.Fatal(err)
		}
	}
}
