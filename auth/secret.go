package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/go-clusterclient/clusterclient/internal/userdir"
)

// EnvSecretFile names an environment variable that overrides
// DefaultSecretPath: processes of one user with different environments
// (a login session with XDG_RUNTIME_DIR and a service without it) must
// agree on one file.
const EnvSecretFile = "CLUSTER_CLIENT_SECRET_FILE"

// SecretSize is the number of random bytes in a secret file the first
// process creates. A file may hold between MinKeySize and maxSecret bytes.
const SecretSize = 32

const maxSecret = 4096

// DefaultSecretPath returns where the per-user secret lives:
//
//  1. $CLUSTER_CLIENT_SECRET_FILE, if set;
//  2. $XDG_RUNTIME_DIR/clusterclient/secret, if XDG_RUNTIME_DIR is set
//     (the directory the unix transport also uses);
//  3. <os.UserConfigDir()>/clusterclient-<uid>/secret, if that config
//     directory exists and (where there are uids) belongs to this user;
//  4. <dir>/secret, where dir is this user's directory in os.TempDir():
//     the first of clusterclient-<uid>, clusterclient-<uid>-1,
//     clusterclient-<uid>-2, ... that is a private directory of this user
//     or does not exist yet. DefaultSecretPath creates that directory
//     (mode 0700) when it does not exist, so that nobody can take the name
//     between this choice and its use. Names another user took first (a
//     directory, a symbolic link, a file) are skipped, never used; the
//     unix transport's default directory is the same one.
//
// (<uid> is left out where there are no uids.) The choice depends only on
// the environment and on what exists, so every process of one user in one
// environment picks the same file. It fails (ErrSecretFile) if
// $CLUSTER_CLIENT_SECRET_FILE is not absolute, or if step 4 meets an entry
// of this user that is not a private directory or cannot create one.
func DefaultSecretPath() (string, error) {
	if p := os.Getenv(EnvSecretFile); p != "" {
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("%w: $%s=%q is not an absolute path", ErrSecretFile, EnvSecretFile, p)
		}
		return p, nil
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "clusterclient", "secret"), nil
	}
	name := "clusterclient"
	if uid := os.Geteuid(); uid >= 0 {
		name += "-" + strconv.Itoa(uid)
	}
	if d, err := os.UserConfigDir(); err == nil {
		// A config directory of another user (HOME pointing at someone
		// else's) is no place of ours: whoever owns it could swap ours.
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && checkOwner(fi) == nil {
			return filepath.Join(d, name, "secret"), nil
		}
	}
	dir, err := userdir.Claim(os.TempDir(), name)
	if err != nil {
		return "", fmt.Errorf("%w: no directory of this user (uid %d) in %s: %w (set $%s to a file of yours, or XDG_RUNTIME_DIR)",
			ErrSecretFile, os.Geteuid(), os.TempDir(), err, EnvSecretFile)
	}
	return filepath.Join(dir, "secret"), nil
}

// LoadOrCreateSecret returns the secret in the file at path, creating the
// file (and its directory, mode 0700) with SecretSize random bytes if it
// does not exist yet. Any number of processes may call it at once: the
// file appears complete or not at all (it is written under a temporary
// name and hard-linked into place, which fails if another process got
// there first; that process's secret is then read), so all of them return
// the same bytes.
//
// It refuses (ErrSecretFile) a directory that is a symbolic link, is not
// owned by this user or is writable by group or others, and a file that
// is not a regular file, is not owned by this user, is readable or
// writable by group or others, or does not hold MinKeySize to 4096 bytes.
// (On Windows, where these modes do not exist, the user profile's access
// control protects the default locations.)
func LoadOrCreateSecret(path string) ([]byte, error) {
	key, _, err := loadOrCreate(path)
	return key, err
}

func loadOrCreate(path string) (key []byte, created bool, err error) {
	fail := func(err error) ([]byte, bool, error) {
		return nil, false, fmt.Errorf("%w %s: %w", ErrSecretFile, path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	if err := checkDir(dir); err != nil {
		return fail(err)
	}
	// Two rounds at most: a file that vanishes between our failed link and
	// our read (someone deleting it) gets one more try.
	for range 2 {
		key, err := readSecret(path)
		if err == nil {
			return key, false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fail(err)
		}
		key, err = createSecret(dir, path)
		if err == nil {
			return key, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fail(err)
		}
	}
	return fail(errors.New("the file keeps appearing and disappearing"))
}

// readSecret reads and checks the secret file.
func readSecret(path string) ([]byte, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if err := checkOwner(fi); err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); hasModes && perm&0o077 != 0 {
		return nil, fmt.Errorf("mode %04o gives group or others access (want 0600; run chmod 600)", perm)
	}
	key, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, err
	}
	if len(key) < MinKeySize || len(key) > maxSecret {
		return nil, fmt.Errorf("holds %d bytes (want %d to %d)", len(key), MinKeySize, maxSecret)
	}
	return key, nil
}

// createSecret writes a fresh secret under a temporary name and links it
// into place; the error matches fs.ErrExist if the file exists.
func createSecret(dir, path string) ([]byte, error) {
	key := make([]byte, SecretSize)
	rand.Read(key)                              // never fails (crypto/rand, Go 1.24+)
	tmp, err := os.CreateTemp(dir, ".secret-*") // O_EXCL, mode 0600
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(key)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return nil, err
	}
	return key, nil
}

// checkDir refuses a directory that others could use to swap the file.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("directory %s is not a directory (%v)", dir, fi.Mode().Type())
	}
	if err := checkOwner(fi); err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if perm := fi.Mode().Perm(); hasModes && perm&0o022 != 0 {
		return fmt.Errorf("directory %s has mode %04o: group or others may write to it (want 0700)", dir, perm)
	}
	return nil
}
