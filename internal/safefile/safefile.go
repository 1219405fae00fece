// Package safefile writes the files the program leaves behind (render --file, --dotenv,
// migrate --write) so that nobody else can choose where the bytes go or read them on the way:
// the data goes to a new temporary file in the target's directory, created exclusively
// (O_EXCL, so never through a link someone placed there) with the final mode, and is then
// renamed over the target. A symbolic link at the target is replaced, never followed; a failed
// write leaves the old file as it was.
package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// Secret is the mode of a file that holds, or may hold, a secret: readable by its owner only.
const Secret os.FileMode = 0o600

// Public is the mode of a file that holds no secret (a dotenv report of facts).
const Public os.FileMode = 0o644

// Check says, before anything is changed elsewhere, whether Write could write path: its
// directory exists and takes a new file, and the path is not a directory or a device. what
// names the flag for the sentence ("--dotenv"). The probe file it creates is removed again.
func Check(what, path string) error {
	if err := checkTarget(what, path); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".runner-bootstrap-check-*")
	if err != nil {
		return fail.Usagef("cannot write %s %s: %v; nothing was changed", what, path, cause(err))
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return nil
}

func checkTarget(what, path string) error {
	if path == "" {
		return fail.Usagef("%s is empty: expected the path of a file to write", what)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fail.Usagef("cannot write %s %s: %v", what, path, cause(err))
	case fi.IsDir():
		return fail.Usagef("%s %s is a directory: expected the path of a file to write", what, path)
	case fi.Mode()&os.ModeSymlink != 0:
		// A link is replaced by the new file, not followed.
		return nil
	case fi.Mode().IsRegular():
		// Renaming over a file only needs the directory's permission: keep the owner's
		// read-only mark meaningful.
		if err := syscall.Access(path, 2); err != nil {
			return fail.Usagef("cannot write %s %s: %v", what, path, err)
		}
		return nil
	}
	return fail.Usagef("%s %s is not a regular file (%s): expected the path of a file to write; to pipe the output, leave %s out and read stdout", what, path, fi.Mode().Type(), what)
}

// Write replaces path with data, with the given mode.
func Write(what, path string, data []byte, mode os.FileMode) error {
	if err := checkTarget(what, path); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fail.Usagef("cannot write %s %s: %v", what, path, cause(err))
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600 already; Chmod sets the exact mode whatever the umask.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s %s: %w", what, path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s %s: %w", what, path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s %s: %w", what, path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s %s: %w", what, path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail.Usagef("cannot write %s %s: %v", what, path, cause(err))
	}
	done = true
	return nil
}

func cause(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	if le, ok := errors.AsType[*os.LinkError](err); ok {
		return le.Err
	}
	return err
}
