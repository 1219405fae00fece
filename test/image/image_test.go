// Package image builds the repository's Dockerfile with buildah and runs the result.
//
// No registry can be pulled from on the build machines, so the test makes offline
// stand-ins for the Dockerfile's base images (GO_IMAGE and BASE_IMAGE are build
// arguments): a Go stand-in carrying the host's toolchain, and a runtime stand-in
// carrying busybox as /bin/sh, as a job image needs. Everything lives in a temporary
// buildah storage root (vfs driver, chroot isolation), so no daemon, no privileges
// beyond root and no cleanup outside the test's own directory are needed.
package image

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

const (
	goStandin      = "localhost/go-standin:latest"
	runtimeStandin = "localhost/alpine-standin:latest"
	builtImage     = "localhost/runner-bootstrap:test"
	testVersion    = "test-1.2.3"

	// caBundle is where Alpine (and Debian) keep the CA bundle that Go reads.
	caBundle = "/etc/ssl/certs/ca-certificates.crt"
	// standinCAMarker tags the runtime stand-in's CA bundle, so the test can tell that
	// the base's own bundle survives the build (a company base may carry its own CA).
	standinCAMarker = "# runtime stand-in CA bundle"

	// maxBinaryGrowth bounds what the binary adds on top of the base image.
	maxBinaryGrowth = 20 << 20
)

func TestDockerfileBuildsAJobImage(t *testing.T) {
	start := time.Now()
	requireTools(t)
	repo := repoRoot(t)
	trackBuildContext(t, repo)
	host := hostGoEnv(t)
	b := newBuildah(t)

	step := time.Now()
	makeGoStandin(t, b, host)
	t.Logf("go stand-in (%s) made in %s", goStandin, since(step))

	step = time.Now()
	makeRuntimeStandin(t, b)
	t.Logf("runtime stand-in (%s) made in %s", runtimeStandin, since(step))

	step = time.Now()
	b.run(t, 8*time.Minute, "bud",
		"--pull=never",
		"--layers=false",
		"--isolation", "chroot",
		"--build-arg", "GO_IMAGE="+goStandin,
		"--build-arg", "BASE_IMAGE="+runtimeStandin,
		"--build-arg", "VERSION="+testVersion,
		// The host's module and build caches keep the build fast. They are bind mounts
		// of RUN steps, so their content never ends up in a layer; buildah does leave
		// the empty mount points (/go/pkg/mod, /root/.cache/go-build) in this test's
		// runtime stage, which a build without --volume does not have.
		"--volume", host.GOMODCACHE+":/go/pkg/mod",
		"--volume", host.GOCACHE+":/root/.cache/go-build",
		"--file", filepath.Join(repo, "Dockerfile"),
		"--tag", builtImage,
		repo,
	)
	t.Logf("buildah bud took %s", since(step))

	step = time.Now()
	ctr := strings.TrimSpace(b.run(t, time.Minute, "from", "--pull=never", "--name", "rb-image-test", builtImage).Stdout())

	t.Run("version", func(t *testing.T) {
		res := b.run(t, time.Minute, "run", "--isolation", "chroot", ctr, "--", "runner-bootstrap", "--version")
		assert.Check(t, is.Contains(res.Combined(), testVersion))
	})

	t.Run("job shell", func(t *testing.T) {
		// GitLab runs a job's script with sh; the binary must be on PATH there.
		res := b.run(t, time.Minute, "run", "--isolation", "chroot", ctr, "--",
			"sh", "-c", "echo ok && command -v runner-bootstrap")
		assert.Check(t, is.Equal(res.Stdout(), "ok\n/usr/local/bin/runner-bootstrap\n"))
	})

	t.Run("non-root user with writable HOME and /tmp", func(t *testing.T) {
		res := b.run(t, time.Minute, "run", "--isolation", "chroot", ctr, "--",
			"sh", "-c", `id -u && touch "$HOME/probe" /tmp/probe && echo "$HOME"`)
		assert.Check(t, is.Equal(res.Stdout(), "65532\n/home/nonroot\n"))
	})

	t.Run("base CA bundle kept", func(t *testing.T) {
		res := b.run(t, time.Minute, "run", "--isolation", "chroot", ctr, "--", "cat", caBundle)
		assert.Check(t, is.Contains(res.Stdout(), standinCAMarker))
		assert.Check(t, is.Contains(res.Stdout(), "BEGIN CERTIFICATE"))
	})

	t.Run("config", func(t *testing.T) {
		cfg := inspectImage(t, b, builtImage).Config
		assert.Check(t, is.Len(cfg.Entrypoint, 0), "a job image must not have an ENTRYPOINT")
		assert.Check(t, is.DeepEqual(cfg.Cmd, []string{"runner-bootstrap", "--help"}))
		assert.Check(t, is.Equal(cfg.User, "65532:65532"))
		assert.Check(t, is.Equal(cfg.Labels["org.opencontainers.image.version"], testVersion))
		for _, key := range []string{"title", "description", "source", "licenses"} {
			assert.Check(t, cfg.Labels["org.opencontainers.image."+key] != "", "label %s is empty", key)
		}
	})

	t.Run("size", func(t *testing.T) {
		mnt := strings.TrimSpace(b.run(t, time.Minute, "mount", ctr).Stdout())
		fi, err := os.Stat(filepath.Join(mnt, "usr/local/bin/runner-bootstrap"))
		assert.NilError(t, err)
		base, built := inspectImage(t, b, runtimeStandin), inspectImage(t, b, builtImage)
		assert.Assert(t, len(built.Layers) > len(base.Layers))
		assert.Check(t, is.DeepEqual(built.Layers[:len(base.Layers)], base.Layers), "the image must extend its base's layers")
		added := sum(built.Layers[len(base.Layers):])
		t.Logf("binary %s; image %s = base %s + %s in %d layers (uncompressed)",
			mib(fi.Size()), mib(sum(built.Layers)), mib(sum(base.Layers)), mib(added), len(built.Layers)-len(base.Layers))
		assert.Check(t, fi.Size() < maxBinaryGrowth, "binary is %s", mib(fi.Size()))
		assert.Check(t, added < maxBinaryGrowth, "image adds %s over its base", mib(added))
	})
	t.Logf("runs took %s; whole test %s", since(step), since(start))
}

// requireTools skips the test on a developer machine without buildah, but fails it in
// CI, where scripts/install-tools.sh must have installed it.
func requireTools(t *testing.T) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + "; run scripts/install-tools.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		missing("buildah is not installed")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox is not installed (apt-get install busybox-static)")
	}
	assert.Assert(t, isStatic(t, bb), "%s is dynamically linked: install busybox-static", bb)
	_, err = os.Stat(caBundle)
	assert.NilError(t, err, "the host's CA bundle is needed for the stand-ins")
}

func isStatic(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	assert.NilError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	assert.NilError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		assert.Assert(t, parent != dir, "no go.mod above the test's directory")
		dir = parent
	}
}

// trackBuildContext reads every file of the build context, so that `go test` caches
// this test's result only until the Dockerfile or a source file changes: buildah reads
// them in another process, which the test cache cannot see.
func trackBuildContext(t *testing.T, repo string) {
	t.Helper()
	skip := map[string]bool{".git": true, "tools": true, "bin": true, "node_modules": true, ".gitlab-ci-local": true}
	err := filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && skip[d.Name()] {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			_, err = os.ReadFile(path)
		}
		return err
	})
	assert.NilError(t, err)
}

type goEnv struct {
	GOROOT, GOPROXY, GOSUMDB, GONOSUMDB, GOPRIVATE, GOMODCACHE, GOCACHE string
}

func hostGoEnv(t *testing.T) goEnv {
	t.Helper()
	res := icmd.RunCommand("go", "env", "-json", "GOROOT", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOMODCACHE", "GOCACHE")
	res.Assert(t, icmd.Success)
	var env goEnv
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &env))
	for _, dir := range []string{env.GOMODCACHE, env.GOCACHE} {
		assert.NilError(t, os.MkdirAll(dir, 0o755))
	}
	return env
}

// buildah runs buildah against the test's own storage root.
type buildah struct {
	global []string
	env    []string
}

func newBuildah(t *testing.T) *buildah {
	t.Helper()
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	assert.NilError(t, os.Mkdir(tmp, 0o700))
	b := &buildah{
		global: []string{
			"--root", filepath.Join(dir, "root"),
			"--runroot", filepath.Join(dir, "runroot"),
			"--storage-driver", "vfs",
		},
		env: append(os.Environ(),
			"BUILDAH_ISOLATION=chroot",
			"STORAGE_DRIVER=vfs",
			// buildah stages layer blobs in TMPDIR (/var/tmp by default).
			"TMPDIR="+tmp,
		),
	}
	// Runs before t.TempDir's removal (cleanups run last-in first-out).
	t.Cleanup(func() {
		for _, args := range [][]string{{"rm", "--all"}, {"rmi", "--all", "--force"}} {
			if res := b.exec(2*time.Minute, args...); res.ExitCode != 0 {
				t.Logf("cleanup: buildah %s: %s", strings.Join(args, " "), res.Combined())
			}
		}
	})
	return b
}

func (b *buildah) exec(timeout time.Duration, args ...string) *icmd.Result {
	cmd := icmd.Command("buildah", append(append([]string{}, b.global...), args...)...)
	return icmd.RunCmd(cmd, icmd.WithEnv(b.env...), icmd.WithTimeout(timeout))
}

func (b *buildah) run(t *testing.T, timeout time.Duration, args ...string) *icmd.Result {
	t.Helper()
	res := b.exec(timeout, args...)
	res.Assert(t, icmd.Success)
	return res
}

// makeGoStandin makes an offline stand-in for golang:alpine: the host's toolchain,
// busybox as the shell, the CA bundle, and the Go environment the host uses.
func makeGoStandin(t *testing.T, b *buildah, host goEnv) {
	t.Helper()
	ctr := strings.TrimSpace(b.run(t, time.Minute, "from", "--name", "go-standin-work", "scratch").Stdout())
	mnt := strings.TrimSpace(b.run(t, time.Minute, "mount", ctr).Stdout())
	populateBase(t, mnt, nil)

	goroot := filepath.Join(mnt, "usr/local/go")
	assert.NilError(t, os.MkdirAll(goroot, 0o755))
	// Tests and docs of the toolchain are not needed to build, and they are a fifth of it.
	icmd.RunCommand("sh", "-c",
		`tar -C "$1" --exclude=./test --exclude=./api --exclude=./doc --exclude=testdata -cf - . | tar -C "$2" -xf -`,
		"sh", host.GOROOT, goroot,
	).Assert(t, icmd.Success)
	for _, dir := range []string{"go/bin", "go/pkg/mod", "root/.cache/go-build"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(mnt, dir), 0o755))
	}

	config := []string{"config",
		"--env", "PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--env", "HOME=/root",
		"--env", "GOPATH=/go",
		"--env", "GOCACHE=/root/.cache/go-build",
		"--env", "GOTOOLCHAIN=local",
		"--env", "GOPROXY=" + host.GOPROXY,
		"--env", "GOSUMDB=" + host.GOSUMDB,
	}
	for _, kv := range [][2]string{{"GONOSUMDB", host.GONOSUMDB}, {"GOPRIVATE", host.GOPRIVATE}} {
		if kv[1] != "" {
			config = append(config, "--env", kv[0]+"="+kv[1])
		}
	}
	b.run(t, time.Minute, append(config, "--workingdir", "/go", ctr)...)
	b.run(t, 3*time.Minute, "commit", "--rm", ctr, goStandin)
}

// makeRuntimeStandin makes an offline stand-in for alpine: busybox and a CA bundle.
func makeRuntimeStandin(t *testing.T, b *buildah) {
	t.Helper()
	ctr := strings.TrimSpace(b.run(t, time.Minute, "from", "--name", "alpine-standin-work", "scratch").Stdout())
	mnt := strings.TrimSpace(b.run(t, time.Minute, "mount", ctr).Stdout())
	populateBase(t, mnt, []byte(standinCAMarker+"\n"))
	b.run(t, time.Minute, "config",
		"--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--cmd", "/bin/sh",
		ctr)
	b.run(t, time.Minute, "commit", "--rm", ctr, runtimeStandin)
}

// populateBase lays out what both stand-ins share: busybox with its applets in /bin,
// root's passwd entry, a world-writable /tmp and the host's CA bundle (caPrefix first).
func populateBase(t *testing.T, mnt string, caPrefix []byte) {
	t.Helper()
	for _, dir := range []string{"bin", "etc/ssl/certs", "root", "tmp", "usr/local/bin", "usr/bin", "sbin", "usr/sbin"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(mnt, dir), 0o755))
	}
	assert.NilError(t, os.Chmod(filepath.Join(mnt, "tmp"), 0o1777))
	assert.NilError(t, os.Chmod(filepath.Join(mnt, "root"), 0o700))

	bbPath, err := exec.LookPath("busybox")
	assert.NilError(t, err)
	bb, err := os.ReadFile(bbPath)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(mnt, "bin/busybox"), bb, 0o755))
	applets := icmd.RunCommand(bbPath, "--list")
	applets.Assert(t, icmd.Success)
	for name := range strings.FieldsSeq(applets.Stdout()) {
		if name == "busybox" {
			continue
		}
		assert.NilError(t, os.Symlink("busybox", filepath.Join(mnt, "bin", name)))
	}

	ca, err := os.ReadFile(caBundle)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(mnt, caBundle), append(caPrefix, ca...), 0o644))

	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		assert.NilError(t, os.WriteFile(filepath.Join(mnt, name), []byte(content), 0o644))
	}
}

type imageConfig struct {
	Entrypoint []string          `json:"Entrypoint"`
	Cmd        []string          `json:"Cmd"`
	User       string            `json:"User"`
	Labels     map[string]string `json:"Labels"`
}

type layer struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

type imageInfo struct {
	Config imageConfig
	// Layers as the image manifest lists them; buildah stores them uncompressed, so
	// their sizes add up to the image's size on disk.
	Layers []layer
}

func inspectImage(t *testing.T, b *buildah, image string) imageInfo {
	t.Helper()
	res := b.run(t, time.Minute, "inspect", "--type", "image", image)
	var out struct {
		Manifest string
		OCIv1    struct {
			Config imageConfig `json:"config"`
		}
	}
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &out))
	var manifest struct {
		Layers []layer `json:"layers"`
	}
	assert.NilError(t, json.Unmarshal([]byte(out.Manifest), &manifest))
	return imageInfo{Config: out.OCIv1.Config, Layers: manifest.Layers}
}

func sum(layers []layer) int64 {
	var n int64
	for _, l := range layers {
		n += l.Size
	}
	return n
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
