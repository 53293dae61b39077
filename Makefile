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
        -I$(BUILD)/gen -DSPOT_VERSION='"$(VERSION)"' -DSPOT_GIT_REV='"$(GIT_REV)"'
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
SCHEMAS    := $(sort $(wildcard schemas/*.json))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)
SERVER_SRC := $(wildcard tests/servers/*.c)

LIB_SRC    := $(COMMON_SRC) $(AGENT_SRC) $(DEVICE_SRC)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/schemas_embedded.o
LIB_OBJ_SAN := $(LIB_SRC:%.c=$(ASAN_DIR)/obj/%.o) $(ASAN_DIR)/obj/gen/schemas_embedded.o

.PHONY: all check unit integration demo bench deps format format-check lint clean

all: $(BUILD)/spotagent $(DEVICE_CMDS:%=$(BUILD)/%) tools

deps:
	@bash scripts/install-deps.sh

# --- code generation: schemas/*.json compiled into the binary -------------
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

# The revision compiled into /version: objects that use it are rebuilt when
# it changes (the stamp is rewritten only then).
GIT_REV_STAMP := $(BUILD)/gen/git_rev
$(shell mkdir -p $(BUILD)/gen && { [ "$$(cat $(GIT_REV_STAMP) 2>/dev/null)" = "$(GIT_REV)" ] || echo "$(GIT_REV)" > $(GIT_REV_STAMP); })
REV_OBJ := src/agent/main.o src/agent/admin_http.o
$(REV_OBJ:%=$(BUILD)/obj/%) $(REV_OBJ:%=$(ASAN_DIR)/obj/%): $(GIT_REV_STAMP)

# --- normal build ----------------------------------------------------------
$(BUILD)/obj/%.o: %.c | $(GEN_SRC)
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
$(BUILD)/servers/%: tests/servers/%.c $(BUILD)/libspot.a
	@mkdir -p $(@D)
	@echo '  CC      $<'
	@$(CC) $(WARN) $(OPT) $(CPPFLAGS_BASE) -o $@ $^ $(LIBS)

# --- sanitizer build (tests) -----------------------------------------------
$(ASAN_DIR)/obj/%.o: %.c | $(GEN_SRC)
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

# --- tests -----------------------------------------------------------------
check: deps
	$(MAKE) all $(ASAN_DIR)/spotagent $(DEVICE_CMDS:%=$(ASAN_DIR)/%) \
	    $(ASAN_DIR)/unit-tests
	$(MAKE) unit
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
FMT_SRC = $(wildcard src/*/*.c src/*/*.h src/*/*/*.c src/*/*/*.h include/spot/*.h tests/unit/*.c tests/tools/*.c tests/servers/*.c tests/servers/*.h)

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
