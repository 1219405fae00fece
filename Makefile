# runner-bootstrap: `make demo` shows the main job against the built-in fake GitLab;
# `make test` runs every test (installing what the tests need first).
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := $(CURDIR)/bin
PKGS_UNIT := ./internal/... ./cmd/... ./test/gitlabfake/...
GOLANGCI_LINT ?= $(CURDIR)/tools/bin/golangci-lint

.PHONY: all build demo test tools lint test-unit test-e2e test-pipeline test-image bench fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/runner-bootstrap ./cmd/runner-bootstrap
	$(GO) build -o $(BIN)/gitlabfake ./test/gitlabfake/cmd/gitlabfake

demo: build
	@bash scripts/demo.sh

# Everything: formatting, vet and golangci-lint, unit tests (with the race detector), the binary against
# the fake GitLab, the CI/CD components under gitlab-ci-local, and the job image under buildah.
test: tools lint
	$(GO) test -count=1 -race $(PKGS_UNIT)
	$(GO) test -count=1 -timeout 30m ./test/e2e/... ./test/faults/... ./test/pipeline/... ./test/image/...

tools:
	@bash scripts/install-tools.sh

# golangci-lint's rules (.golangci.yml) include the layer order of shared/architecture.md.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@bash scripts/install-tools.sh lint
	$(GOLANGCI_LINT) run ./...

test-unit:
	$(GO) test -count=1 -race $(PKGS_UNIT)

test-e2e:
	$(GO) test -count=1 ./test/e2e/... ./test/faults/...

test-pipeline:
	@bash scripts/install-tools.sh
	$(GO) test -count=1 -v ./test/pipeline/...

test-image:
	$(GO) test -count=1 -v ./test/image/...

bench:
	$(GO) run ./test/bench

FUZZTIME ?= 60s
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf $(BIN)
