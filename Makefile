# tether: `make run` and `make test` work on a fresh Debian 12 machine (they install what is
# missing first). Everything builds in $(BUILD) with CMake + Ninja.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
# `make fuzz`: seconds per fuzz target.
FUZZ_SECONDS ?= 60
# ccache hashes paths relative to the checkout and not the build directory (which -g would add),
# so a fresh clone elsewhere still hits the cache, precompiled header included.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true
# The precompiled header is only cacheable when ccache may ignore its defines and time macros.
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime

.PHONY: all deps deps-sanitizers configure build run test bench fuzz fuzz-smoke sanitize clean

all: build

deps:
	@scripts/install-deps

# clang and its sanitizer runtimes, only for the fuzz and sanitize targets.
deps-sanitizers:
	@scripts/install-deps --sanitizers

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The main job on the embedded default (examples/demo.toml): MCP servers from npm, one here and
# one on an executor that tether spawns on loopback, listed and called through `tether mcp`.
run: configure
	@cmake --build $(BUILD) -j $(JOBS) --target tether
	@scripts/install-test-packages --dir examples/npm
	@scripts/demo $(BUILD)

# npm test peers (stock codex, ...) go to a cache outside the clone keyed by the lockfile hash;
# the tests locate them the same way and fail when they are missing. The suite includes a replay
# of every fuzz seed (fuzz_replay.*); fuzzing itself and the sanitizers are `make fuzz`,
# `make fuzz-smoke` and `make sanitize` (clang, a second full build: docs/FUZZING.md).
test: build
	@scripts/install-test-packages
	@ctest --test-dir $(BUILD) --output-on-failure --timeout 300 -j $(JOBS)

# The benchmark peers (supergateway, for the gateway bench) are pinned in bench/npm and installed
# like the test peers, outside the clone.
bench: build
	@scripts/install-test-packages --dir bench/npm
	@scripts/bench $(BUILD)

# Every libFuzzer target for FUZZ_SECONDS each, in build-fuzz/ (clang), on a corpus that grows
# from run to run (build-fuzz/corpus/); docs/FUZZING.md.
fuzz: deps-sanitizers
	@FUZZ_JOBS=$(JOBS) scripts/fuzz --seconds $(FUZZ_SECONDS)

fuzz-smoke: deps-sanitizers
	@FUZZ_JOBS=$(JOBS) scripts/fuzz-smoke

# Everything built with ASan + UBSan (clang) in build-fuzz/, which the fuzz targets share, then
# the whole suite under them; docs/FUZZING.md.
sanitize: deps-sanitizers
	@scripts/sanitize --jobs $(JOBS)

clean:
	rm -rf $(BUILD) build-fuzz
