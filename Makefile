# The two commands of the README:
#   make run    builds inkstream and opens the Neovim demo on the bundled model
#   make test   builds everything and runs the whole test suite (release build,
#               then the unit tests again under AddressSanitizer + UBSan)
# Both install what is missing first (Debian packages, via scripts/setup.sh).

BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 15
FUZZ_RUNS ?= 0
FUZZ_TARGETS ?=
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PROMPT ?= It was a dark and stormy night; the rain fell in torrents, except at occasional intervals, when

.PHONY: run test build deps test-deps test-release test-sanitize test-fuzz fuzz vscode vscode-demo clean

deps:
	@scripts/setup.sh

test-deps:
	@scripts/setup.sh --tests

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The demo: Neovim with the plugin (editor_plugins/nvim) on a sample story and
# the bundled model (models/default). Without a terminal (e.g. in a script) it
# streams three completions of a prompt instead.
run: deps build
	@if [ -t 0 ] && [ -t 1 ]; then scripts/nvim_demo.sh $(BUILD)/cli/inkstream; \
	else $(BUILD)/cli/inkstream complete --prompt "$(PROMPT)" --n 3 --max-tokens 30 --stream; fi

test: test-deps test-release test-sanitize test-fuzz

test-release: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Unit tests and the malformed-input LSP test under ASan/UBSan. Tests that
# time a child process (CLI, LSP sessions, Neovim, VS Code, serve, the nginx
# deployment: it timed out at 180 s under ASan on an AVX2-only CI machine) run in the release pass
# only: under ASan each start of the binary takes seconds.
test-sanitize: test-deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DINKSTREAM_SANITIZE=ON -DINKSTREAM_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -E '^(Cli\.|LspSession\.|lsp_soak|nvim_|vscode_|serve_|deploy_)'

# Every parser under libFuzzer (clang-14, ASan+UBSan) for FUZZ_SECONDS each,
# from the committed corpus (tests/fuzz/); `make fuzz FUZZ_SECONDS=600` runs longer,
# `make fuzz FUZZ_RUNS=1000000 [FUZZ_TARGETS="jsonrpc tokenizer"]` until that many executions each.
test-fuzz: test-deps
	@cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 -DINKSTREAM_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_RUNS) $(FUZZ_TARGETS)

fuzz: test-fuzz

# The VS Code extension as a .vsix (install: code --install-extension
# editor_plugins/vscode/dist/inkstream.vsix). Needs Node 20 and npm.
vscode:
	@editor_plugins/vscode/scripts/setup_test_env.sh --packages-only
	@cd editor_plugins/vscode && npm run -s package >/dev/null
	@echo editor_plugins/vscode/dist/inkstream.vsix

# The extension in code-server (a real VS Code in the browser) on the demo
# story, for people without VS Code: open the address it prints.
vscode-demo: build
	@scripts/vscode_demo.sh $(BUILD)/cli/inkstream

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
