package userdir

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestClaimCreatesThenReuses(t *testing.T) {
	parent := t.TempDir()
	p, err := Claim(parent, "cc-7")
	if err != nil || p != filepath.Join(parent, "cc-7") {
		t.Fatalf("first claim: %q %v", p, err)
	}
	fi, err := os.Lstat(p)
	if err != nil || !fi.IsDir() || (hasModes && fi.Mode().Perm() != 0o700) {
		t.Fatalf("created %v %v, want a 0700 directory", fi.Mode(), err)
	}
	if p2, err := Claim(parent, "cc-7"); err != nil || p2 != p {
		t.Fatalf("second claim: %q %v, want %q", p2, err, p)
	}
}

// Goroutines (and, the same, processes) starting at once agree.
func TestClaimConcurrent(t *testing.T) {
	parent := t.TempDir()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got = map[string]int{}
	)
	for range 16 {
		wg.Go(func() {
			p, err := Claim(parent, "cc")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
			}
			got[p]++
		})
	}
	wg.Wait()
	if len(got) != 1 || got[filepath.Join(parent, "cc")] != 16 {
		t.Fatalf("claims %v", got)
	}
}

// An entry of this user that is not a private directory is the user's own
// doing: refused with what to do, not skipped.
func TestClaimRefusesOwnNonPrivate(t *testing.T) {
	if !hasModes {
		t.Skip("no unix modes on " + runtime.GOOS)
	}
	parent := t.TempDir()
	open := filepath.Join(parent, "cc")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Claim(parent, "cc"); !errors.Is(err, ErrNotPrivate) || !strings.Contains(err.Error(), "chmod 700 "+open) {
		t.Fatalf("own 0777 directory: %v", err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(parent, "ln")); err != nil {
		t.Fatal(err)
	}
	if _, err := Claim(parent, "ln"); !errors.Is(err, ErrNotPrivate) || !strings.Contains(err.Error(), "symbolic link of this user") {
		t.Fatalf("own symlink: %v", err)
	}
	if err := os.WriteFile(filepath.Join(parent, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Claim(parent, "f"); !errors.Is(err, ErrNotPrivate) || !strings.Contains(err.Error(), "regular file") {
		t.Fatalf("own file: %v", err)
	}
}

// Entries of another user are skipped whatever they are; the first free
// name is taken, and the same one is found again. (The real thing, a
// squatter process running as another uid, is in package cluster's
// TestSquattedDefaultDirs.)
func TestClaimSkipsOtherUsers(t *testing.T) {
	if !hasModes || os.Geteuid() != 0 {
		t.Skip("needs root (chown) on a system with uids")
	}
	parent := t.TempDir()
	target := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(parent, "cc"), 0o777))
	must(os.Chown(filepath.Join(parent, "cc"), 65534, 65534))
	must(os.Symlink(target, filepath.Join(parent, "cc-1")))
	must(os.Lchown(filepath.Join(parent, "cc-1"), 65534, 65534))
	must(os.WriteFile(filepath.Join(parent, "cc-2"), nil, 0o600))
	must(os.Chown(filepath.Join(parent, "cc-2"), 65534, 65534))
	for range 2 {
		p, err := Claim(parent, "cc")
		if err != nil || p != filepath.Join(parent, "cc-3") {
			t.Fatalf("claim: %q %v, want cc-3", p, err)
		}
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Fatalf("the symlink's target was written to: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(parent, "cc")); len(ents) != 0 {
		t.Fatalf("the other user's directory was written to: %v", ents)
	}
}
