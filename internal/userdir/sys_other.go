//go:build !unix

package userdir

import (
	"io/fs"
	"os"
)

// hasModes: permission bits mean nothing here (Windows protects the
// per-user temporary directory with access control lists).
const hasModes = false

// ownedBySelf: without uids every entry counts as this user's.
func ownedBySelf(fs.FileInfo) bool { return true }

func ownerName(fs.FileInfo) string { return "unknown" }

func openNoFollow(p string) (*os.File, error) { return os.Open(p) }
