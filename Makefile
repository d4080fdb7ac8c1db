# The suite's build, run, test, lint and benchmark entry points.
# `make run` starts the whole suite on the embedded database; `make test`
# runs every test (what CI runs, through .ci/run).

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X app/internal/buildinfo.Version=$(VERSION) -X app/internal/buildinfo.Commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
STATE       ?= $(CURDIR)/.state

.PHONY: build run test lint bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/app ./cmd/app

# The cluster of `app run` on 127.0.0.1:8080 with the embedded database in
# .state/; Ctrl-C stops it. Any variable of the README's table can be set
# on the command line: make run CLUSTER_WORKERS=4
run: build
	APP_ENV=$${APP_ENV:-development} APP_STATE_DIR=$${APP_STATE_DIR:-$(STATE)} ./bin/app run

test:
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Figures in one run, so they compare: /healthz through `app run` with 2
# workers against a hello-world server (interleaved, 4 rounds), then a
# worker's start to READY and its idle memory.
bench:
	$(GO) test -run '^$$' -bench 'Healthz' -benchtime 3s -count 4 ./internal/cluster/
	$(GO) test -run '^$$' -bench 'WorkerStartToReady' -benchtime 10x ./internal/cluster/

clean:
	rm -rf bin
