//go:build !linux

package cli

// Harden does nothing outside Linux, where prctl does not exist; core dumps are off by default
// on the other systems the tool builds for.
func Harden() error { return nil }

func dumpable() (bool, error) { return false, nil }
