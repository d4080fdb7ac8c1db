# The suite's build, run, test, lint and benchmark entry points.
# `make run` starts the whole suite on the embedded SQLite store; `make test`
# runs every test (what CI runs, through .ci/run).

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X app/internal/buildinfo.Version=$(VERSION) -X app/internal/buildinfo.Commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
STATE       ?= $(CURDIR)/.state
NFPM        := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
GOARCH      ?= $(shell $(GO) env GOARCH)
# nfpm's rpm names: amd64 -> x86_64, arm64 -> aarch64.
RPMARCH     := $(subst arm64,aarch64,$(subst amd64,x86_64,$(GOARCH)))
# Package versions must start with a digit: v1.2.3 -> 1.2.3, no tag -> 0.0.0~git<commit>.
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//; s/-/~/g'); echo $${v:-0.0.0~git$(COMMIT)})

.PHONY: build run key doctor test fuzz lint bench package e2e clean

build:
	@test -f bin/app || echo "Building bin/app: the first build downloads and compiles the dependencies (about 2 minutes on 2 cores)..."
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/app ./cmd/app

# The cluster of `app run` on 127.0.0.1:8080 with the embedded SQLite store
# in .state/app.db; Ctrl-C stops it. Any variable of the README's table can be set
# on the command line: make run CLUSTER_WORKERS=4
run: build
	@echo "Starting the suite on 127.0.0.1:8080 (Ctrl-C stops it). From another shell in this directory: make key (an API key for it), make doctor."
	APP_ENV=$${APP_ENV:-development} APP_STATE_DIR=$${APP_STATE_DIR:-$(STATE)} ./bin/app run

# An API key for the suite `make run` runs (its database in .state/), and
# `app doctor` on it; NAME and SCOPES change the key's.
NAME   ?= dev
SCOPES ?= messages:read,messages:write,session,admin
key:
	@test -x bin/app || { echo "make key: no bin/app yet; start the suite with make run first"; exit 1; }
	@APP_ENV=$${APP_ENV:-development} APP_STATE_DIR=$${APP_STATE_DIR:-$(STATE)} ./bin/app keys create --name '$(NAME)' --scopes '$(SCOPES)'

doctor:
	@test -x bin/app || { echo "make doctor: no bin/app yet; start the suite with make run first"; exit 1; }
	@APP_ENV=$${APP_ENV:-development} APP_STATE_DIR=$${APP_STATE_DIR:-$(STATE)} ./bin/app doctor

# The web console's browser test (Debian's chromium) saves its screenshots
# in .artifacts/ (git-ignored), where a CI run leaves them. The OpenAPI
# document is linted first by the pinned Redocly CLI (tools/openapi-lint);
# the HTTP tests validate every response they get against it.
test:
	sh tools/openapi-lint/lint.sh
	APP_TEST_ARTIFACTS=$(CURDIR)/.artifacts $(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'TestThousandMessagesInOrderPerChat' ./internal/primary/

# The request decoder and the cron parser fuzzed for a bounded time; the
# corpora are kept in testdata/fuzz (and replayed by every go test).
fuzz:
	$(GO) test -run '^$$' -fuzz 'FuzzDecodeMessageRequest' -fuzztime 30s ./internal/httpapi/
	$(GO) test -run '^$$' -fuzz 'FuzzParse' -fuzztime 20s ./internal/schedule/

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./packaging/e2e/
	$(GO) run $(STATICCHECK) ./...

# The figures in docs/BENCHMARKS.md (written by cmd/benchreport from the raw
# output in docs/benchmarks/raw.txt), all on loopback, in under 10 minutes:
# /healthz through 2 workers, one process and a hello-world pair on one
# socket, with wrk, in turns (3 rounds); the messages API; a worker's start
# to READY and idle memory; 2,000 SSE clients (3 runs); the outbox (3 runs);
# the scheduler with 10,000 schedules; a check of 500 numbers; a stored group's info. wrk is Debian's package, installed
# here when missing (as root).
RAW := docs/benchmarks/raw.txt
bench:
	@command -v wrk >/dev/null || { echo "make bench: installing wrk"; apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; }
	mkdir -p docs/benchmarks
	: > $(RAW)
	$(GO) test -run '^$$' -bench 'HTTPCeiling' -benchtime 1x -timeout 20m ./internal/cluster/ | tee -a $(RAW)
	$(GO) test -run '^$$' -bench 'API' -benchtime 2s -count 3 ./internal/cluster/ | tee -a $(RAW)
	$(GO) test -run '^$$' -bench 'WorkerStartToReady' -benchtime 10x ./internal/cluster/ | tee -a $(RAW)
	$(GO) test -run '^$$' -bench 'SSEClients' -benchtime 1x -count 3 ./internal/cluster/ | tee -a $(RAW)
	$(GO) test -run '^$$' -bench 'Outbox' -benchtime 1x -count 3 ./internal/primary/ | tee -a $(RAW)
	$(GO) test -run '^$$' -bench 'Scheduler10k' -benchtime 1x ./internal/primary/ | tee -a $(RAW)
	$(GO) test -run '^$$' -bench 'NumberCheck' -benchtime 1x -count 3 ./internal/httpapi/ | tee -a $(RAW)
	$(GO) test -run '^$$' -bench 'GroupInfo' -benchtime 5000x -count 3 ./internal/httpapi/ | tee -a $(RAW)
	$(GO) test -run '^$$' -bench 'History' -benchtime 1x -timeout 40m ./internal/cluster/ | tee -a $(RAW)
	$(GO) run ./cmd/benchreport -raw $(RAW) -out docs/BENCHMARKS.md

# dist/app_<version>_<arch>.deb and dist/app-<version>-1.<arch>.rpm
package: build
	mkdir -p dist
	VERSION=$(PKG_VERSION) GOARCH=$(GOARCH) $(GO) run $(NFPM) package --config nfpm.yaml --packager deb --target dist/
	VERSION=$(PKG_VERSION) GOARCH=$(GOARCH) $(GO) run $(NFPM) package --config nfpm.yaml --packager rpm --target dist/

# The .deb installed and booted in a Debian bookworm container (systemd-nspawn).
# Needs root, debootstrap and systemd-nspawn; the root file system is cached
# in .cache/bookworm.
e2e: package
	CGO_ENABLED=0 $(GO) build -o bin/e2e-loadclient ./packaging/e2e/loadclient
	APP_E2E_DEB=$(CURDIR)/dist/app_$(PKG_VERSION)-1_$(GOARCH).deb \
		APP_E2E_LOADCLIENT=$(CURDIR)/bin/e2e-loadclient \
		APP_E2E_RPM=$(CURDIR)/dist/app-$(PKG_VERSION)-1.$(RPMARCH).rpm \
		$(GO) test -tags e2e -count=1 -v -timeout 30m ./packaging/e2e/

clean:
	rm -rf bin dist
