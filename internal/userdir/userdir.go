// Package userdir finds a user's private directory in a directory every
// user may write to (the system temporary directory), in a way another
// user cannot take from it.
//
// A fixed name such as /tmp/clusterclient-1000 can be created first by
// anyone: as a directory, a symbolic link or a file of theirs. Claim
// therefore walks a fixed sequence of names, name, name-1, name-2, ...,
// and takes the first that is either this user's private directory or
// does not exist yet (then it creates it, mode 0700). Every entry of
// another user is skipped, never used, followed or removed. The sequence
// and the rule are the same in every process, so all processes of the
// user agree on one directory as long as nobody changes the entries
// between their starts (see SECURITY.md for what a squatter who does can
// and cannot achieve).
package userdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// ErrNotPrivate: an entry of this user in the sequence is not a private
// directory (a symbolic link, a file, or a directory writable by group
// or others). Only the user (or root) can have made it, so Claim does not
// skip it: the user must remove it or fix its mode.
var ErrNotPrivate = errors.New("userdir: not a private directory")

// flips bounds how often one name may vanish between Claim's lstat and
// its mkdir (someone creating and removing it) before it counts as taken.
const flips = 8

// Claim returns the directory of this user in parent: the first of
// parent/name, parent/name-1, parent/name-2, ... that is a directory owned
// by the effective user and not writable by group or others, or that does
// not exist (Claim creates it, 0700). Entries owned by another user are
// skipped; the cost of each is one lstat. An entry of this user that is
// not a private directory stops the walk with ErrNotPrivate (naming it and
// what to do); so does an error other than "exists" from mkdir (the
// parent is not writable, the disk is full).
//
// The directory returned was checked after opening it without following
// a symbolic link: it is this user's and closed to others at that moment.
// In a sticky directory such as /tmp nobody else can rename or remove it
// afterwards; elsewhere the caller's later checks must still hold.
//
// Where the OS has no uids (Windows), every existing directory counts as
// this user's: the temporary directory is per user there.
func Claim(parent, name string) (string, error) {
	for i := 0; ; i++ {
		p := filepath.Join(parent, name)
		if i > 0 {
			p += "-" + strconv.Itoa(i)
		}
		ok, err := try(p)
		if err != nil {
			return "", err
		}
		if ok {
			return p, nil
		}
	}
}

// try reports whether p is (now) this user's private directory, false if
// it belongs to someone else.
func try(p string) (bool, error) {
	for range flips {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			err := os.Mkdir(p, 0o700)
			if errors.Is(err, fs.ErrExist) {
				continue // someone got there first: look again
			}
			if err != nil {
				return false, fmt.Errorf("userdir: create %s: %w", p, err)
			}
			return true, verify(p)
		}
		if err != nil {
			return false, fmt.Errorf("userdir: %w", err)
		}
		if !ownedBySelf(fi) {
			return false, nil
		}
		if err := private(p, fi); err != nil {
			return false, err
		}
		return true, verify(p)
	}
	return false, nil // it keeps vanishing: not ours (we never remove ours)
}

// private refuses an entry of this user that is not a private directory.
func private(p string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is a %v of this user, not a directory; remove it", ErrNotPrivate, p, typeName(fi.Mode()))
	}
	if perm := fi.Mode().Perm(); hasModes && perm&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %04o: group or others may write to it; run chmod 700 %s", ErrNotPrivate, p, perm, p)
	}
	return nil
}

// verify opens p without following a symbolic link and checks what it
// opened, so that the answer is about the directory itself, not about
// whatever the name pointed at when it was looked up.
func verify(p string) error {
	f, err := openNoFollow(p)
	if err != nil {
		return fmt.Errorf("userdir: open %s: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("userdir: %w", err)
	}
	if !ownedBySelf(fi) {
		return fmt.Errorf("%w: %s changed owner while it was checked (now %s)", ErrNotPrivate, p, ownerName(fi))
	}
	return private(p, fi)
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsRegular():
		return "regular file"
	}
	return "file of type " + m.Type().String()
}
