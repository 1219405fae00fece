package cli

import "golang.org/x/sys/unix"

// Harden marks the process non-dumpable (prctl PR_SET_DUMPABLE 0): a core dump, or another
// process of the same user attaching with ptrace or reading /proc/<pid>/mem, would otherwise
// see the access token and any runner token in memory. main calls it before anything else.
func Harden() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}

// dumpable reports the process's dumpable flag (for tests).
func dumpable() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	return v != 0, err
}
