# petrel: the two commands that matter are `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja

.PHONY: all deps build run test test-unit test-asan fuzz fuzz-smoke bench reliability soak format clean

all: build

deps:
	@scripts/deps

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	mkdir -p var
	$(BUILD)/src/cli/petrel serve --config petrel.toml

# The whole suite: unit tests and integration tests on the real binary, then
# every fuzz target for a few seconds (libFuzzer, clang, ASan+UBSan).
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 600 \
	  --repeat until-pass:2
	$(MAKE) --no-print-directory fuzz-smoke

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L unit

$(ASAN_BUILD)/build.ninja: | deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DPETREL_SANITIZE=ON

# The same suite against an ASan+UBSan build.
test-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) --timeout 900 \
	  --repeat until-pass:2

$(FUZZ_BUILD)/build.ninja: | deps
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ -DPETREL_FUZZ=ON

# Every fuzz target for FUZZ_SECONDS each (default 60). Only the fuzz
# targets and what they link are built with clang.
FUZZ_SECONDS ?= 60
fuzz: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	scripts/fuzz-all $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The same for FUZZ_SMOKE_SECONDS each (default 5), as part of `make test`.
FUZZ_SMOKE_SECONDS ?= 5
fuzz-smoke: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	scripts/fuzz-all $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

bench: build
	@scripts/deps bench
	bench/run $(BUILD)

# Issue 5: every reliability case at full scale (PETREL_SOAK=1: 200 SIGKILLs,
# 5000 idle connections, 10 s of overload), printed as one Markdown table
# (also written to $(BUILD)/reliability.md). tests/reliability/README.md.
reliability: build
	@scripts/deps bench
	PETREL_BIN=$(BUILD)/src/cli/petrel scripts/reliability --output $(BUILD)/reliability.md

# The SIGKILL storm at 200 cycles (PETREL_STORM_CYCLES=N to change) and the
# 5000 idle connections, with their rows of the table.
soak: build
	PETREL_BIN=$(BUILD)/src/cli/petrel PETREL_SOAK=1 scripts/reliability --no-existing \
	  tests/reliability/test_kill_storm.py tests/reliability/test_slow_clients.py

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
