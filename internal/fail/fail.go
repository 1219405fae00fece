// Package fail carries the exit code of an error to the top of the program, so a
// command can say "this was bad input" deep inside and main can exit accordingly.
package fail

import (
	"errors"
	"fmt"
	"os"
)

// Exit codes shared by every command. They are part of the documented interface.
const (
	// CodeOK means the command did what was asked.
	CodeOK = 0
	// CodeFailure is any failure not covered below (GitLab 5xx, network, partial bulk failure).
	CodeFailure = 1
	// CodeUsage is bad input: flags, environment, manifest or values files. Nothing was changed.
	CodeUsage = 2
	// CodeAuth means GitLab refused the access token (401) or its rights (403).
	CodeAuth = 3
	// CodeNotFound means a project, group, runner or variable named by the user does not exist.
	CodeNotFound = 4
	// CodeConflict means GitLab rejected the change as conflicting or invalid (400/409/422).
	CodeConflict = 5

	// CodeExpiring is returned by status when the token expires within --warn-within.
	CodeExpiring = 10
	// CodeRunnerGone is returned by status when the variable names a runner that no longer exists.
	CodeRunnerGone = 11
	// CodeVariableMissing is returned by status when the variable does not exist or is not managed.
	CodeVariableMissing = 12
	// CodeFindings is returned by audit when a finding is at or above --fail-on.
	CodeFindings = 20
)

// Error is an error with an exit code.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// WithCode attaches an exit code to err (nil stays nil).
func WithCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Usagef reports bad input: one sentence saying what was wrong and what is expected.
func Usagef(format string, args ...any) error {
	return &Error{Code: CodeUsage, Err: fmt.Errorf(format, args...)}
}

// Code returns the exit code for err: 0 for nil, the attached code if any, else CodeFailure.
func Code(err error) int {
	if err == nil {
		return CodeOK
	}
	if fe, ok := errors.AsType[*Error](err); ok {
		return fe.Code
	}
	return CodeFailure
}

// PathCause strips a file error down to its cause ("no such file or directory"), for
// sentences that already name the path.
func PathCause(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
}
