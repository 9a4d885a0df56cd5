# Hansa — build, run and test. `make devnet` runs the main job; `make test` runs every test.
GO        ?= go
BIN       ?= bin/hansa
E2E_DIR   := tests/e2e

GETH_VERSION := v1.17.8
GETH      := bin/geth

.PHONY: all build devnet geth test test-go test-e2e lint fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/hansa

## devnet: build and start a local development chain on 127.0.0.1:8545
devnet: build
	./$(BIN) devnet --dir ./devnet

## geth: build go-ethereum's geth (the real peer of the gateway tests) once into bin/
geth: $(GETH)
$(GETH):
	GOBIN=$(CURDIR)/bin $(GO) install github.com/ethereum/go-ethereum/cmd/geth@$(GETH_VERSION)

## test: vet, Go tests (unit, fuzz seeds, real-process end-to-end incl. geth), ethers.js and cast end-to-end
test: lint test-go test-e2e

lint:
	$(GO) vet ./...

test-go: $(GETH)
	HANSA_GETH=$(CURDIR)/$(GETH) $(GO) test -count=1 -timeout 20m ./...

test-e2e:
	cd $(E2E_DIR) && npm ci --no-audit --no-fund && npm test

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./internal/txpool/ -run '^$$' -fuzz FuzzAddRawTransaction -fuzztime $(FUZZTIME)
	$(GO) test ./internal/rpc/ -run '^$$' -fuzz FuzzJSONRPCRequest -fuzztime $(FUZZTIME)
	$(GO) test ./internal/chain/ -run '^$$' -fuzz FuzzDecodeProposal -fuzztime $(FUZZTIME)

## bench: in-process block execution benchmarks (see docs/benchmarks.md)
bench:
	$(GO) test ./internal/execution/ -run '^$$' -bench . -benchtime 3x -count 6

clean:
	rm -rf bin
