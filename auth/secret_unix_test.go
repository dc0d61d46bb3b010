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
