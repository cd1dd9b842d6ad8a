# scorekit — build, test and benchmark entry points. See README.md.
#
#   make test          CPU test suite (race detector on), go vet, gofmt; plus, where the CUDA
#                      toolkit is installed: go vet -tags cuda, compilation of every cuda-tagged
#                      test binary, and check-ptx
#   make cuda-toolkit  install Debian's CUDA toolkit when nvcc or cuda.h is missing (root)
#   make ptx           regenerate kernels/ptx/*.ptx from kernels/*.cu (cuda.mk)
#   make check-ptx     committed PTX up to date and assembling for sm_80 and sm_90 (cuda.mk)
#   make gpu-tests     build every cuda-tagged test binary and the benchmark binary into
#                      build/gpu/, with run.sh to run them on a GPU machine
#   make bench         CPU benchmarks

GO        ?= go
GOFLAGS   ?=
# Where the linker finds libcuda.so for cuda builds (Debian puts the driver stub here).
CUDA_LIBDIR ?= /usr/lib/x86_64-linux-gnu/stubs
CUDA_ENV  := CGO_LDFLAGS="-L$(CUDA_LIBDIR) $(CGO_LDFLAGS)"
HAVE_CUDA := $(shell command -v nvcc >/dev/null 2>&1 && test -f /usr/include/cuda.h && echo yes)
# Packages whose tests run under the race detector (all of them today; drop slow ones here if the
# CI budget demands).
RACE_PKGS ?= ./...
# Packages holding cuda-tagged tests.
CUDA_TEST_PKGS = $(sort $(dir $(shell grep -l '^//go:build cuda' $$(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go'))))

include cuda.mk

.PHONY: test test-cpu vet fmt-check test-cuda-compile cuda-toolkit gpu-tests bench check

test: fmt-check vet test-cpu
ifeq ($(HAVE_CUDA),yes)
test: test-cuda-compile check-ptx
else
test:
	@echo "make test: CUDA toolkit not found: skipped go vet -tags cuda, cuda test compilation and check-ptx (make cuda-toolkit installs it)"
endif

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test-cpu:
	$(GO) test -race -count=1 $(RACE_PKGS)

test-cuda-compile:
	$(CUDA_ENV) $(GO) vet -tags cuda ./...
	@mkdir -p build/cuda-compile
	@for p in $(CUDA_TEST_PKGS); do \
		echo "go test -c -tags cuda $$p"; \
		$(CUDA_ENV) $(GO) test -c -tags cuda -o build/cuda-compile/ ./$$p || exit 1; \
	done
	$(CUDA_ENV) $(GO) build -tags cuda -o build/cuda-compile/scorekit ./cmd/scorekit

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

check: test
