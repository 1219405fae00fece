// Package readlimit reads what the program is given (files, stdin, answers) with a documented
// size limit and, for files and stdin, so that the run's context can interrupt it: a manifest
// path pointing at /dev/zero or a FIFO nobody writes to must end in one sentence, not grow the
// process to gigabytes or hang past SIGTERM.
package readlimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// The limits, documented in the README. Each is far above what a real file of that kind holds.
const (
	// Manifest is the largest fleet manifest apply reads (about 40,000 entries).
	Manifest int64 = 8 << 20
	// ValuesFile is the largest Helm values file migrate reads.
	ValuesFile int64 = 4 << 20
	// CommandFile is the largest register command file (or stdin) migrate reads.
	CommandFile int64 = 1 << 20
	// TokenFile is the largest --token-file: an access token is well under 100 bytes.
	TokenFile int64 = 4 << 10
	// CAFile is the largest --ca-file PEM bundle.
	CAFile int64 = 1 << 20
	// Stdin is the most explain reads from stdin.
	Stdin int64 = 1 << 20
	// Response is the largest answer the GitLab client reads (one page of 100 runners or
	// variables is a few hundred kilobytes).
	Response int64 = 32 << 20
)

// ReadFile reads path, at most limit bytes. what names it for the sentence ("the manifest").
func ReadFile(ctx context.Context, what, path string, limit int64) ([]byte, error) {
	return read(ctx, what+" "+path, limit, func() (io.ReadCloser, error) { return os.Open(path) })
}

// Read reads r, at most limit bytes; what names it for the sentence ("stdin").
func Read(ctx context.Context, what string, r io.Reader, limit int64) ([]byte, error) {
	return read(ctx, what, limit, func() (io.ReadCloser, error) { return io.NopCloser(r), nil })
}

// read opens and reads in a goroutine, so that a read blocked in the kernel (a FIFO, a
// terminal, a stalled network file system) does not keep the run from ending when ctx does.
func read(ctx context.Context, what string, limit int64, open func() (io.ReadCloser, error)) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := open()
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		ch <- result{b, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fail.WithCode(fail.CodeFailure, fmt.Errorf("reading %s was interrupted (%w) before it ended", what, context.Cause(ctx)))
	case res := <-ch:
		if res.err != nil {
			if pe, ok := errors.AsType[*os.PathError](res.err); ok {
				res.err = pe.Err
			}
			return nil, fail.Usagef("cannot read %s: %v", what, res.err)
		}
		if int64(len(res.b)) > limit {
			return nil, fail.Usagef("%s is larger than %s, the most runner-bootstrap reads: expected a much smaller file", what, Size(limit))
		}
		return res.b, nil
	}
}

// Size renders a limit for messages: "8 MiB", "4 KiB".
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Body limits an HTTP answer's body: reading past limit fails with a sentence naming the
// request, instead of growing the process without end. The connection is closed as usual.
func Body(rc io.ReadCloser, limit int64, what string) io.ReadCloser {
	return &body{rc: rc, left: limit, limit: limit, what: what}
}

type body struct {
	rc    io.ReadCloser
	left  int64
	limit int64
	what  string
}

func (b *body) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly limit bytes from a longer one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n == 0 {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("the answer to %s is larger than %s, the most runner-bootstrap reads from GitLab: check that --gitlab-url is your GitLab instance", b.what, Size(b.limit))
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }
