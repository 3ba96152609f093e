# The two commands of the README:
#   make run    builds inkstream and completes a prompt with the bundled model
#   make test   builds everything and runs the whole test suite
# Both install what is missing first (Debian packages, via scripts/setup.sh).

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: run test build deps test-deps sanitize clean

deps:
	@scripts/setup.sh

test-deps:
	@scripts/setup.sh --tests

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@$(BUILD)/cli/inkstream complete --prompt "It was a dark and stormy night;" --n 3 --max-tokens 30 --stream

test: test-deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-asan
