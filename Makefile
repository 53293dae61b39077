# spotagent: plain Makefile. `make` builds build/spotagent; `make check`
# runs every test (unit tests under ASan/UBSan, then integration tests on a
# real Mosquitto and PostgreSQL); `make demo` runs the live demo; `make
# bench` prints performance figures. See README.md.

CC       ?= cc
BUILD    ?= build
ASAN_DIR := $(BUILD)/asan

VERSION  := 0.1.0
GIT_REV  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wformat=2 -Wundef -Wcast-qual \
        -Wwrite-strings -Wpointer-arith -Wvla -Wimplicit-fallthrough \
        -Werror
CPPFLAGS_BASE := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc/agent \
        -I$(BUILD)/gen
OPT      ?= -O2 -g
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fno-omit-frame-pointer
LIBS     := -lpaho-mqtt3as -lcurl -lmicrohttpd -lyajl -lpq -lcrypto -lz -lpthread -lm

COMMON_SRC := $(wildcard src/common/*.c)
AGENT_SRC  := $(filter-out src/agent/main.c,$(wildcard src/agent/*.c))
# Device side: the publisher core, drivers and simulation; cmd_<name>.c
# files hold the main() of build/<name> (spotdevice, spotsim).
DEVICE_SRC := $(filter-out src/device/cmd_%.c,$(wildcard src/device/*.c src/device/*/*.c))
DEVICE_CMDS := $(patsubst src/device/cmd_%.c,%,$(wildcard src/device/cmd_*.c))
GEN_SRC    := $(BUILD)/gen/schemas_embedded.c
# version.h: rewritten only when the version or the git revision changed, so
# what includes it is rebuilt then (and only then).
VERSION_H  := $(BUILD)/gen/version.h
SCHEMAS    := $(sort $(wildcard schemas/*.json))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)
# Fuzz targets: tests/fuzz/fuzz_<name>.c, each with a seed corpus in
# tests/fuzz/corpus/<name>/ (the vectors and every crasher found).
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(filter-out \
                 tests/fuzz/fuzz_util.c tests/fuzz/fuzz_common.c,\
                 $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_HELPERS := tests/fuzz/fuzz_util.c tests/fuzz/fuzz_common.c
SERVER_SRC := $(wildcard tests/servers/*.c)

LIB_SRC    := $(COMMON_SRC) $(AGENT_SRC) $(DEVICE_SRC)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/schemas_embedded.o
LIB_OBJ_SAN := $(LIB_SRC:%.c=$(ASAN_DIR)/obj/%.o) $(ASAN_DIR)/obj/gen/schemas_embedded.o

.PHONY: all check unit fuzz-regress fuzz integration demo bench deps format \
        format-check lint clean FORCE

all: $(BUILD)/spotagent $(DEVICE_CMDS:%=$(BUILD)/%) tools

deps:
	@bash scripts/install-deps.sh

# --- code generation: schemas/*.json compiled into the binary -------------
$(VERSION_H): FORCE
	@mkdir -p $(@D)
	@printf '#define SPOT_VERSION "%s"\n#define SPOT_GIT_REV "%s"\n' \
	    '$(VERSION)' '$(GIT_REV)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/embed: src/tools/embed.c
	@mkdir -p $(@D)
	$(CC) $(WARN) $(OPT) $(CPPFLAGS_BASE) -o $@ $<

$(GEN_SRC): $(BUILD)/embed $(SCHEMAS)
	@mkdir -p $(@D)
	$(BUILD)/embed $(SCHEMAS) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/schemas_embedded.o: $(GEN_SRC)
	@mkdir -p $(@D)
	@echo '  CC      $<'
	@$(CC) $(WARN) $(OPT) $(CPPFLAGS_BASE) -c -o $@ $<

$(ASAN_DIR)/obj/gen/schemas_embedded.o: $(GEN_SRC)
	@mkdir -p $(@D)
	@echo '  CC asan $<'
	@$(CC) $(WARN) $(OPT) $(SAN) $(CPPFLAGS_BASE) -c -o $@ $<

# --- normal build ----------------------------------------------------------
$(BUILD)/obj/%.o: %.c | $(GEN_SRC) $(VERSION_H)
	@mkdir -p $(@D)
	@echo '  CC      $<'
	@$(CC) $(WARN) $(OPT) $(CPPFLAGS_BASE) -MMD -MP -c -o $@ $<

$(BUILD)/libspot.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/spotagent: $(BUILD)/obj/src/agent/main.o $(BUILD)/libspot.a
	$(CC) $(OPT) -o $@ $^ $(LIBS)

$(BUILD)/%: $(BUILD)/obj/src/device/cmd_%.o $(BUILD)/libspot.a
	$(CC) $(OPT) -o $@ $^ $(LIBS)

tools: $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%) \
       $(SERVER_SRC:tests/servers/%.c=$(BUILD)/servers/%)

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libspot.a
	@mkdir -p $(@D)
	@echo '  CC      $<'
	@$(CC) $(WARN) $(OPT) $(CPPFLAGS_BASE) -o $@ $^ $(LIBS)

# Test servers (the NGSI stand-in for Orion): libmicrohttpd + yajl.
SERVER_HDR := $(wildcard tests/servers/*.h)
$(BUILD)/servers/%: tests/servers/%.c $(SERVER_HDR) $(BUILD)/libspot.a
	@mkdir -p $(@D)
	@echo '  CC      $<'
	@$(CC) $(WARN) $(OPT) $(CPPFLAGS_BASE) -o $@ $< $(BUILD)/libspot.a $(LIBS)

# --- sanitizer build (tests) -----------------------------------------------
$(ASAN_DIR)/obj/%.o: %.c | $(GEN_SRC) $(VERSION_H)
	@mkdir -p $(@D)
	@echo '  CC asan $<'
	@$(CC) $(WARN) $(OPT) $(SAN) $(CPPFLAGS_BASE) -MMD -MP -c -o $@ $<

$(ASAN_DIR)/libspot.a: $(LIB_OBJ_SAN)
	ar rcs $@ $^

$(ASAN_DIR)/spotagent: $(ASAN_DIR)/obj/src/agent/main.o $(ASAN_DIR)/libspot.a
	$(CC) $(OPT) $(SAN) -o $@ $^ $(LIBS)

$(ASAN_DIR)/%: $(ASAN_DIR)/obj/src/device/cmd_%.o $(ASAN_DIR)/libspot.a
	$(CC) $(OPT) $(SAN) -o $@ $^ $(LIBS)

$(ASAN_DIR)/unit-tests: $(UNIT_SRC:%.c=$(ASAN_DIR)/obj/%.o) $(ASAN_DIR)/libspot.a
	$(CC) $(OPT) $(SAN) -o $@ $^ -lcriterion $(LIBS)

# --- fuzz targets ----------------------------------------------------------
# The corpus regression (make check): every target's code, linked with a
# plain main() (tests/fuzz/driver.c) by $(CC) under ASan/UBSan, runs over
# its checked-in corpus. No clang needed.
$(ASAN_DIR)/fuzz/%: tests/fuzz/fuzz_%.c tests/fuzz/driver.c $(FUZZ_HELPERS) \
                    $(wildcard tests/fuzz/*.h) $(ASAN_DIR)/libspot.a
	@mkdir -p $(@D)
	@echo '  CC asan $<'
	@$(CC) $(WARN) $(OPT) $(SAN) $(CPPFLAGS_BASE) -Itests/fuzz -o $@ \
	    $< tests/fuzz/driver.c $(FUZZ_HELPERS) $(ASAN_DIR)/libspot.a $(LIBS)

fuzz-regress: $(FUZZ_TARGETS:%=$(ASAN_DIR)/fuzz/%)
	@for t in $(FUZZ_TARGETS); do \
	    ASAN_OPTIONS=detect_leaks=1 $(ASAN_DIR)/fuzz/$$t \
	        tests/fuzz/corpus/$$t || exit 1; \
	done

# libFuzzer builds (make fuzz): the library again with clang and coverage
# instrumentation; each target runs FUZZ_SECONDS (default 60) at nice 19
# over a working corpus in $(FUZZ_DIR)/corpus/<name> seeded from the
# checked-in one. Crashers land in $(FUZZ_DIR)/artifacts/: minimise one,
# add it to tests/fuzz/corpus/<name>/ and fix the bug with a unit test.
FUZZ_CC      ?= clang
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o) \
                $(FUZZ_DIR)/obj/gen/schemas_embedded.o

$(FUZZ_DIR)/obj/%.o: %.c | $(GEN_SRC)
	@mkdir -p $(@D)
	@echo '  CC fuzz $<'
	@$(FUZZ_CC) $(WARN) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link \
	    $(CPPFLAGS_BASE) -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/obj/gen/schemas_embedded.o: $(GEN_SRC)
	@mkdir -p $(@D)
	@$(FUZZ_CC) $(WARN) $(FUZZ_FLAGS) $(CPPFLAGS_BASE) -c -o $@ $<

$(FUZZ_DIR)/libspot.a: $(FUZZ_LIB_OBJ)
	@ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HELPERS) \
                    $(wildcard tests/fuzz/*.h) $(FUZZ_DIR)/libspot.a
	@echo '  LD fuzz $@'
	@$(FUZZ_CC) $(WARN) $(FUZZ_FLAGS) -fsanitize=fuzzer $(CPPFLAGS_BASE) \
	    -Itests/fuzz -o $@ $< $(FUZZ_HELPERS) $(FUZZ_DIR)/libspot.a $(LIBS)

fuzz:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs clang" \
	    "and libclang-rt-14-dev (apt-get install clang" \
	    "libclang-rt-14-dev)" >&2; exit 1; }
	$(MAKE) $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
	@mkdir -p $(FUZZ_DIR)/artifacts
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    nice -n 19 $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
	        $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# --- tests -----------------------------------------------------------------
check: deps
	$(MAKE) all $(ASAN_DIR)/spotagent $(DEVICE_CMDS:%=$(ASAN_DIR)/%) \
	    $(ASAN_DIR)/unit-tests $(FUZZ_TARGETS:%=$(ASAN_DIR)/fuzz/%)
	$(MAKE) unit
	$(MAKE) fuzz-regress
	$(MAKE) integration
	@echo "make check: all tests passed"

unit: $(ASAN_DIR)/unit-tests
	SPOT_VECTORS=$(CURDIR)/tests/fixtures/vectors \
	  $(ASAN_DIR)/unit-tests --jobs 2

# The agent and the device programs under test are the sanitizer builds.
integration: $(BUILD)/spotagent $(ASAN_DIR)/spotagent \
             $(DEVICE_CMDS:%=$(ASAN_DIR)/%) tools
	SPOTAGENT=$(CURDIR)/$(ASAN_DIR)/spotagent TOOLS=$(CURDIR)/$(BUILD)/tools \
	  SPOTSIM=$(CURDIR)/$(ASAN_DIR)/spotsim \
	  SPOTDEVICE=$(CURDIR)/$(ASAN_DIR)/spotdevice \
	  bash tests/integration/run.sh

demo: deps
	$(MAKE) all
	bash scripts/demo.sh

bench: deps
	$(MAKE) all
	bash scripts/bench.sh

# --- style -----------------------------------------------------------------
FMT_SRC = $(wildcard src/*/*.c src/*/*.h src/*/*/*.c src/*/*/*.h include/spot/*.h tests/unit/*.c tests/tools/*.c tests/servers/*.c tests/servers/*.h tests/fuzz/*.c tests/fuzz/*.h)

format:
	clang-format -i $(FMT_SRC)

format-check:
	@clang-format --dry-run --Werror $(FMT_SRC) && echo "format-check: ok"

lint:
	@if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets)\s*\(' \
	    $(FMT_SRC); then echo "lint: forbidden function" >&2; exit 1; \
	 else echo "lint: ok"; fi

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
