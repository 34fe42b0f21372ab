# usher - entry points. CMake + Ninja do the building; this file only names
# the jobs. `make run` and `make test` install what is missing first.
#
#   make            build (build/)
#   make run        the main job: `usher serve` on the example repository (real models)
#   make tour       the offline tools: inspect, estimate and plan over the zoo
#   make test       deps + normal, ASan+UBSan and libFuzzer builds + all tests
#   make fuzz       run the ONNX loader fuzzer for FUZZ_SECONDS (default 600)
#   make bench      benchmarks (bench/README.md)
#   make zoo        re-export and strip the model zoo (developers; needs torch)
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 600

.PHONY: all build deps run tour test fuzz bench zoo clean

all: build

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DUSHER_WERROR=ON

build: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

deps:
	scripts/deps.sh

run: deps build
	scripts/run-main.sh $(BUILD)/usher

tour: deps build
	scripts/tour.sh $(BUILD)/usher

test: deps
	scripts/test.sh

fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

bench: deps build
	bench/run.sh $(BUILD)

zoo: build
	tools/zoo/make-zoo.sh $(BUILD)/usher

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
