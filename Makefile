# The two commands a user needs: `make run` and `make test`. Plain `make`
# builds build/rouse. Everything goes through CMake + Ninja underneath.
#
# In CI (CI=true) `make test` also builds and runs the whole suite under
# AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/, then builds
# the libFuzzer targets (build-fuzz/) and replays each over its corpus.

BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all build setup test test-asan test-fuzz test-long run fuzz clean format

all: build

setup:
	@scripts/setup

$(BUILD)/build.ninja: CMakeLists.txt | setup
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -LE long
ifeq ($(CI),true)
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-fuzz
endif

# Tests labelled long (minutes, gigabytes), left out of `make test`: a model
# over 2 GiB of weights, and the larger variants of the PyTorch model families.
test-long: build
	ROUSE_LONG_TESTS=1 ctest --test-dir $(BUILD) --output-on-failure -L long

test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DROUSE_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -LE "nosan|long"

run: build
	@scripts/run-demo ./$(BUILD)/rouse

fuzz:
	@scripts/setup fuzz
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DROUSE_FUZZ=ON \
	  -DROUSE_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build-fuzz -j $(JOBS)

# Builds the fuzz targets and replays each over its corpus (no mutation).
test-fuzz: fuzz
	scripts/fuzz-replay build-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
