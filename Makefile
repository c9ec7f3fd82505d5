# edgehog: PostHog-compatible capture and flags as nginx modules, plus the
# ingest-worker.  `make run` and `make test` do all set-up on Debian 12.

SHELL      := /bin/bash
ROOT       := $(CURDIR)
BUILD      := $(ROOT)/build
NGX_BUILD  := $(BUILD)/nginx
NGX_SRC    := /usr/share/nginx/src
PYTHON     := /usr/bin/python3
FIXTURES   ?= $(abspath $(ROOT)/../shared/fixtures)
FUZZ_TIME  ?= 60
PORT       ?= 8000
CLUSTER    ?=

CC         ?= cc
WARN       := -Wall -Wextra -Wno-unused-parameter -Werror
LIBS       := -lrdkafka -lpq -lhiredis -ljansson -lcurl -lmsgpackc \
              -lpcre2-8 -lcrypto -lz -lm

COMMON_SRCS := $(wildcard common/*.c)
# pure cores: no nginx headers, so tests and fuzzers link them directly
CAPTURE_CORE_SRCS := $(wildcard ngx_capture_module/capture_*.c)
CORE_SRCS   := $(CAPTURE_CORE_SRCS) \
               $(wildcard ngx_decide_module/decide_*.c) \
               $(wildcard ingest-worker/src/ingest_*.c) \
               $(COMMON_SRCS)
CORE_INCS   := -Icommon -Ingx_capture_module -Ingx_decide_module \
               -Iingest-worker/src -It/unit
MODULE_SRCS := config $(wildcard ngx_capture_module/* ngx_decide_module/* \
               common/* common/ngx/*)
WORKER_SRCS := $(wildcard ingest-worker/src/*.c) $(COMMON_SRCS)
WORKER_HDRS := $(wildcard ingest-worker/src/*.h common/*.h)

UNIT_TESTS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(wildcard t/unit/*.c))
FUZZERS     := $(patsubst t/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard t/fuzz/fuzz_*.c))
SAN         := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined

.PHONY: all modules worker deps unit unit-build fuzz fuzz-build test integration run \
        stop bench bench-json bench-capture bench-capture-build \
        bench-capture-alloc bench-decide \
        bench-decide-engine bench-worker bench-worker-build clean lint

all: modules worker

deps:
	@bash deps/install.sh

# --- nginx modules, built against Debian's nginx with its conf_flags -------

# configure reads the source list, so a new or removed file reconfigures
$(NGX_BUILD)/srclist: FORCE
	@mkdir -p $(NGX_BUILD)
	@echo "$(MODULE_SRCS)" | cmp -s - $@ || echo "$(MODULE_SRCS)" > $@

$(NGX_BUILD)/Makefile: $(NGX_BUILD)/srclist config ngx_capture_module/config \
                       ngx_decide_module/config
	cd $(NGX_SRC) && bash -c '. ./conf_flags && ./configure \
	    --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC \
	                   $$(dpkg-buildflags --get CPPFLAGS)" \
	    --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC" \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --add-dynamic-module=$(ROOT) \
	    --builddir=$(NGX_BUILD)' > $(NGX_BUILD)/configure.log 2>&1 \
	    || { tail -30 $(NGX_BUILD)/configure.log; exit 1; }

modules: $(NGX_BUILD)/Makefile
	$(MAKE) -s -f $(NGX_BUILD)/Makefile -C $(NGX_SRC) modules

# --- ingest-worker --------------------------------------------------------

worker: $(BUILD)/ingest-worker

$(BUILD)/ingest-worker: $(WORKER_SRCS) $(WORKER_HDRS)
	@mkdir -p $(BUILD)
	$(CC) -g -O2 $(WARN) -Icommon -Iingest-worker/src -I/usr/include/postgresql -o $@ \
	    $(WORKER_SRCS) $(LIBS)

# --- unit tests and fuzzers (ASan + UBSan) -------------------------------

$(BUILD)/unit/%: t/unit/%.c $(CORE_SRCS) $(wildcard t/unit/*.h common/*.h \
                 ngx_capture_module/*.h ngx_decide_module/*.h \
                 ingest-worker/src/*.h)
	@mkdir -p $(BUILD)/unit
	clang $(SAN) $(WARN) $(CORE_INCS) -DEDGEHOG_FIXTURES='"$(FIXTURES)"' \
	    -o $@ $< $(CORE_SRCS) $(LIBS)

unit-build: $(UNIT_TESTS)

unit: unit-build
	@if [ -n "$(UNIT_TESTS)" ]; then \
	    prove --exec '' $(UNIT_TESTS); fi

$(BUILD)/fuzz/%: t/fuzz/%.c $(CORE_SRCS)
	@mkdir -p $(BUILD)/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined $(CORE_INCS) \
	    -o $@ $< $(CORE_SRCS) $(LIBS)

fuzz-build: $(FUZZERS)

# new inputs go to build/, the committed seed corpora stay untouched
fuzz: fuzz-build
	@set -e; for f in $(FUZZERS); do \
	    n=$$(basename $$f); mkdir -p $(BUILD)/corpus/$$n; \
	    echo "== $$n ($(FUZZ_TIME)s)"; \
	    $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	        $(BUILD)/corpus/$$n $$( [ -d t/fuzz/corpus/$$n ] && \
	        echo t/fuzz/corpus/$$n ) 2>&1 | tail -3; \
	    test $${PIPESTATUS[0]} -eq 0; done

# --- tests ----------------------------------------------------------------

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory fuzz-build
	@bash t/run-tests.sh

integration: all
	@bash t/run-tests.sh --integration-only

# --- local stack ------------------------------------------------------------

run: deps
	@$(MAKE) --no-print-directory all
	@$(PYTHON) t/lib/stack.py run --dir $(ROOT)/.run --nginx-port $(PORT) \
	    $(if $(CLUSTER),--cluster)

stop:
	@$(PYTHON) t/lib/stack.py stop --dir $(ROOT)/.run

# --- benchmarks (ratios measured in one run, never assertions) ------------

bench: bench-json bench-capture bench-decide bench-worker

# which packaged JSON library suits capture's hot path (DESIGN.md)
bench-json:
	@mkdir -p $(BUILD)/bench
	@$(CC) -O2 $(WARN) -o $(BUILD)/bench/json_libs bench/json_libs.c \
	    bench/json_libs_jsonc.c -ljansson -lcjson -ljson-c
	@$(BUILD)/bench/json_libs

bench-capture: all
	@$(PYTHON) bench/capture.py

# the event builder alone (no nginx, no Kafka) with bench-capture's payloads
bench-capture-build:
	@mkdir -p $(BUILD)/bench
	@$(CC) -O2 -g $(WARN) -Icommon -Ingx_capture_module \
	    -o $(BUILD)/bench/capture_build bench/capture_build.c \
	    $(CAPTURE_CORE_SRCS) $(COMMON_SRCS) $(LIBS)
	@$(BUILD)/bench/capture_build $(BENCH_N)

# one request's heap traffic: the builder, librdkafka's produce and its
# delivery reports in bursts, nginx's 4 KB pool and buffer (no broker)
bench-capture-alloc:
	@mkdir -p $(BUILD)/bench
	@$(CC) -O2 -g $(WARN) -Icommon -Ingx_capture_module \
	    -o $(BUILD)/bench/capture_alloc bench/capture_alloc.c \
	    $(CAPTURE_CORE_SRCS) $(COMMON_SRCS) $(LIBS)
	@$(BUILD)/bench/capture_alloc $(BENCH_N) $(BENCH_ARGS)

bench-decide: all
	@$(PYTHON) bench/decide.py

# the engine alone (decode, evaluate, hash) with bench/decide.py's team
bench-decide-engine:
	@mkdir -p $(BUILD)/bench
	@$(CC) -O2 -g $(WARN) -Icommon -Ingx_decide_module \
	    -o $(BUILD)/bench/decide_engine bench/decide_engine.c \
	    $(wildcard ngx_decide_module/decide_*.c) $(COMMON_SRCS) $(LIBS)
	@$(BUILD)/bench/decide_engine

bench-worker: all
	@$(PYTHON) bench/worker.py

# the worker's per-event transforms alone (no Kafka, no Postgres) with
# bench-worker (a)'s message
bench-worker-build:
	@mkdir -p $(BUILD)/bench
	@$(CC) -O2 -g $(WARN) -Icommon -Iingest-worker/src \
	    -o $(BUILD)/bench/worker_build bench/worker_build.c \
	    $(wildcard ingest-worker/src/ingest_*.c) $(COMMON_SRCS) $(LIBS)
	@$(BUILD)/bench/worker_build $(BENCH_N)

clean:
	rm -rf $(BUILD)

lint:
	@! grep -rnP '\t| +$$' --include='*.c' --include='*.h' \
	    ngx_capture_module ngx_decide_module ingest-worker common t/unit \
	    t/fuzz || { echo "tabs or trailing spaces above"; exit 1; }

FORCE:
