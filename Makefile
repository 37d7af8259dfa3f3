# wsgate: thin targets, each one command or one script.
GO      ?= go
ARGS    ?=

.PHONY: run build test fmt-check vet unit allocs lint interop test-clients bench bench-peers bench-million loadtest fuzz image

## run: start the gateway with the echo app on :8080 and the demo page at http://localhost:8080/
run:
	$(GO) run ./cmd/gateway $(ARGS)

## build: build the gateway binary into bin/wsgate
build:
	$(GO) build -o bin/wsgate ./cmd/gateway

## test: gofmt check, go vet, then every test with the race detector in random order
test: fmt-check vet unit allocs

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -shuffle=on -timeout 9m ./...

# The race detector makes sync.Pool drop items at random, so the
# zero-allocation tests skip themselves under -race and run again here;
# so does the exhaustive UTF-8 check (codec), millions of inputs of pure
# computation that -race would only slow down.
allocs:
	$(GO) test -count=1 -run 'Alloc|Exhaustive' ./...

## lint: gofmt, go vet and staticcheck at a pinned version
lint: fmt-check vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...

## interop: python3-websockets and node ws clients against the real binary
interop:
	bash testdata/interop/run.sh

## test-clients: the JavaScript client's tests under Node and headless Chromium against the real binary (the Go client's run in make test)
test-clients:
	bash client/js/test/run.sh

## bench: micro benchmarks of every package
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## loadtest: a load scenario against a running gateway, e.g. make loadtest ARGS="echo --conns 1000"
loadtest:
	$(GO) run ./loadtest $(ARGS)

## bench-peers: wsgate beside the raw-epoll floor, gorilla, gws and nbio in one run (ARGS="--scale 0.2" on 2 cores)
bench-peers:
	bash bench/run.sh $(ARGS)

## image: a static binary on an empty base (docs/deploy/container/), with podman, buildah or docker; TAG=wsgate:latest
image:
	bash docs/deploy/container/build.sh

## bench-million: a million connections over reuse-port gateways (ARGS="--conns 100000" for a smaller run)
bench-million:
	bash bench/million.sh $(ARGS)

## fuzz: a short run of each fuzz target (FUZZTIME per target)
fuzz:
	bash testdata/fuzz.sh
