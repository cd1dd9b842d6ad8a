# scorekit — build, test and benchmark entry points. See README.md.
#
#   make test          CPU test suite (once in full, once under the race detector with -short),
#                      go vet, gofmt; plus, where the CUDA
#                      toolkit is installed: go vet -tags cuda, compilation of every cuda-tagged
#                      test binary, and check-ptx; plus, where g++ and Boost.Context are
#                      installed, every cuda-tagged test with the kernels executed on the host
#                      (make test-emu: forward and reverse thread order, then the AddressSanitizer
#                      run in random order)
#   make test-emu      the cuda-tagged tests under the host execution of kernels (tag cudaemu), in
#                      forward and reverse thread order
#   make test-asan     the same once more under AddressSanitizer (go test -asan), random order
#   make kernel-coverage  the ops/cuda suite under cudaemu with the table of kernel entries and
#                      the tests that launch each
#   make cuda-toolkit  install Debian's CUDA toolkit when nvcc or cuda.h is missing (root)
#   make ptx           regenerate kernels/ptx/*.ptx from kernels/*.cu (cuda.mk)
#   make check-ptx     committed PTX up to date and assembling for sm_80 and sm_90 (cuda.mk)
#   make gpu-tests     build every cuda-tagged test binary and the benchmark binary into
#                      build/gpu/, with run.sh to run them on a GPU machine
#   make bench         CPU benchmarks
#   make perf-model    the paper performance model of the kernels on the benchmark workloads
#                      (PREDICTIONS from ptxas -v and cuobjdump -sass, no GPU); UPDATE=1 rewrites
#                      its section of bench/RESULTS.md (needs ptxas and cuobjdump, else skipped)
#   make fuzz          every fuzz target for FUZZTIME (default 60s) each, keeping the inputs found
#                      in testdata/fuzz (which make test replays); not part of make test

GO        ?= go
GOFLAGS   ?=
# Where the linker finds libcuda.so for cuda builds (Debian puts the driver stub here).
CUDA_LIBDIR ?= /usr/lib/x86_64-linux-gnu/stubs
CUDA_ENV  := CGO_LDFLAGS="-L$(CUDA_LIBDIR) $(CGO_LDFLAGS)"
HAVE_CUDA := $(shell command -v nvcc >/dev/null 2>&1 && test -f /usr/include/cuda.h && echo yes)
# The host execution of kernels needs a C++17 compiler and Boost.Context (fibers).
HAVE_EMU  := $(shell command -v g++ >/dev/null 2>&1 && test -f /usr/include/boost/context/fiber.hpp && echo yes)
# The CPU suite runs twice: in full without the race detector, then under it with -short. The
# race detector slows numerical code 10–25×; with -short the statistical tests whose subject is
# arithmetic (a distribution, an order of convergence, a trained network's samples), and which
# the full run has just passed, skip, and the conformance suite's large batch is a fifth, so the
# race run covers every concurrent path (workers, shards, trainers, the command) in a fraction of
# the time.
TEST_PKGS ?= ./...
RACE_PKGS ?= ./...
TEST_TIMEOUT ?= 20m
RACE_TIMEOUT ?= 30m
# Packages holding cuda-tagged tests.
CUDA_TEST_PKGS = $(sort $(dir $(shell grep -lE '^//go:build cuda( |$$)' $$(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go'))))
# Packages run under the host execution of kernels: the cuda-tagged tests and the layer's own.
EMU_TEST_PKGS = $(addprefix ./,$(CUDA_TEST_PKGS)) ./kernels/hostexec/hostexectest/
# The emulated runs skip the tests that the default build compiles too (they never reach a device,
# and the CPU suite has run them): scripts/emu-skip.sh names them in one -skip pattern.
EMU_SKIP_CMD = sh scripts/emu-skip.sh $(patsubst ./%/,%,$(EMU_TEST_PKGS))
EMU_SKIP = $$($(EMU_SKIP_CMD))
EMU_TIMEOUT ?= 30m

include cuda.mk

.PHONY: test test-cpu vet fmt-check test-cuda-compile test-emu test-asan kernel-coverage cuda-toolkit gpu-tests bench perf-model fuzz check

test: fmt-check vet test-cpu
ifeq ($(HAVE_CUDA),yes)
test: test-cuda-compile check-ptx
else
test:
	@echo "make test: CUDA toolkit not found: skipped go vet -tags cuda, cuda test compilation and check-ptx (make cuda-toolkit installs it)"
endif
ifeq ($(HAVE_EMU),yes)
test: test-emu test-asan
else
test:
	@echo "make test: g++ or Boost.Context not found: skipped the cuda-tagged tests with the kernels executed on the host (make cuda-toolkit installs them)"
endif

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test-cpu:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_PKGS)
	$(GO) test -race -short -count=1 -timeout $(RACE_TIMEOUT) $(RACE_PKGS)

test-cuda-compile:
	$(CUDA_ENV) $(GO) vet -tags cuda ./...
	@mkdir -p build/cuda-compile
	@for p in $(CUDA_TEST_PKGS); do \
		echo "go test -c -tags cuda $$p"; \
		$(CUDA_ENV) $(GO) test -c -tags cuda -o build/cuda-compile/ ./$$p || exit 1; \
	done
	$(CUDA_ENV) $(GO) build -tags cuda -o build/cuda-compile/scorekit ./cmd/scorekit

# Every cuda-tagged test with the kernels compiled as host C++ and run through the real launchers,
# once with the threads of each block in forward order and once in reverse (a result that depends
# on the order is a missing barrier).
test-emu:
	@$(EMU_SKIP_CMD) >/dev/null
	$(GO) vet -tags cudaemu ./...
	SCOREKIT_EMU_ORDER=forward $(GO) test -tags cudaemu -count=1 -timeout $(EMU_TIMEOUT) -skip "$(EMU_SKIP)" $(EMU_TEST_PKGS)
	SCOREKIT_EMU_ORDER=reverse $(GO) test -tags cudaemu -count=1 -timeout $(EMU_TIMEOUT) -skip "$(EMU_SKIP)" $(EMU_TEST_PKGS)

# The same under AddressSanitizer (out-of-bounds global and dynamic shared memory accesses abort
# with a report), in a random thread order, with -short: every test and kernel entry runs, the one
# large batch of the conformance suite and of a few parity tests is smaller (its subject, loops
# that stride over more than one grid, is covered by the two runs above), which halves the run.
test-asan:
	@$(EMU_SKIP_CMD) >/dev/null
	SCOREKIT_EMU_ORDER=random:$${SCOREKIT_EMU_SEED:-7} $(GO) test -short -asan -tags cudaemu -count=1 -timeout $(EMU_TIMEOUT) -skip "$(EMU_SKIP)" $(EMU_TEST_PKGS)

# Every kernel entry with its launch count and the tests that launched it (the package is tested in
# directory mode, so that what the test binary prints is shown although it passes).
kernel-coverage:
	cd ops/cuda && SCOREKIT_KERNEL_COVERAGE=1 $(GO) test -tags cudaemu -count=1 -timeout $(EMU_TIMEOUT)

cuda-toolkit:
	bash scripts/install-cuda-toolkit.sh

# The binaries are stripped and gzip-compressed (run.sh unpacks them) so that build/gpu stays small
# enough to copy around (≈ 25 MB instead of ≈ 105 MB).
gpu-tests:
	@rm -rf build/gpu && mkdir -p build/gpu
	@for p in $(CUDA_TEST_PKGS); do \
		name=$$(echo $$p | sed 's#/$$##; s#/#-#g'); \
		echo "build/gpu/$$name.test"; \
		$(CUDA_ENV) $(GO) test -c -tags cuda -ldflags='-s -w' -o build/gpu/$$name.test ./$$p || exit 1; \
	done
	$(CUDA_ENV) $(GO) build -tags cuda -ldflags='-s -w' -o build/gpu/scorekit ./cmd/scorekit
	gzip -9 build/gpu/*.test build/gpu/scorekit
	cp scripts/run-gpu-tests.sh build/gpu/run.sh
	cp -r bench/peers build/gpu/peers
	@du -sh build/gpu
	@echo "build/gpu is ready: copy it to a GPU machine and run build/gpu/run.sh (BENCH=1 for benchmarks)"

bench:
	$(GO) test ./bench/ -run '^$$' -bench . -benchtime 1s

# The performance model assembles the committed PTX with ptxas and disassembles it with cuobjdump.
CUOBJDUMP ?= cuobjdump
HAVE_SASS_TOOLS := $(shell command -v $(PTXAS) >/dev/null 2>&1 && command -v $(CUOBJDUMP) >/dev/null 2>&1 && echo yes)

perf-model:
ifeq ($(HAVE_SASS_TOOLS),yes)
	PTXAS="$(PTXAS)" CUOBJDUMP="$(CUOBJDUMP)" $(GO) run ./bench/perfmodel $(if $(filter 1,$(UPDATE)),-update bench/RESULTS.md)
else
	@echo "make perf-model: $(PTXAS) or $(CUOBJDUMP) not found: skipped (make cuda-toolkit installs them)"
endif

fuzz:
	sh scripts/fuzz.sh

check: test
