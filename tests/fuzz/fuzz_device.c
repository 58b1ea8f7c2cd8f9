/* libFuzzer target: the device main loop (firmware/device/device_main.c, included here so its state can be reset
 * between inputs) with a real generated network, over a fuzz HAL: ef_hal_getc() serves the input's bytes and
 * ends the run when they are used up; every byte the device sends goes through a link receiver.
 * Input byte 0, bit 0 clear: the rest is the raw wire. Bit 0 set: the rest is a list of operations that the
 * harness turns into wire bytes with valid CRCs, so the fuzzer reaches deep states (whole windows assembled and
 * run, replays, mid-window HELLOs) -- see ops() below.
 * Invariants (abort on violation): the device only sends well-formed frames (INFO 68 bytes, ERROR 8 bytes with a
 * known code, OUTPUT of exactly the model's outputs and layers); nothing is read or written outside a buffer
 * (AddressSanitizer) and no undefined behaviour (UBSan). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#define main ef_device_main
#include "device_main.c"
#undef main

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WIRE_CAP (16u * 1024u * 1024u)
#define MAX_OPS 64u
#define MAX_WINDOWS 3u /* whole windows per input: each runs the network */

static const uint8_t *in_data;
static size_t in_len, in_pos;
static jmp_buf done;
static uint64_t counter;
static ef_link_rx host_rx;
static uint8_t host_buf[EF_LINK_COBS_MAX(0xFFFFu + EF_LINK_OVERHEAD)];
static uint8_t *wire;
static size_t wire_len;
static int trace = -1; /* EF_FUZZ_TRACE set: one line per frame the device sends, on stderr */

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

void ef_hal_init(void) {}

int ef_hal_getc(void)
{
    if (in_pos == in_len) {
        longjmp(done, 1);
    }
    return in_data[in_pos++];
}

/* The host's view: every byte the device sends must form valid frames of the documented sizes. */
void ef_hal_putc(uint8_t c)
{
    ef_frame f;
    int r = ef_link_rx_feed(&host_rx, c, &f);
    if (r == 0) {
        return;
    }
    check(r == 1);
    if (trace) {
        fprintf(stderr, "device: type %u seq %u length %u first %u\n", (unsigned)f.type, (unsigned)f.seq,
                (unsigned)f.length, f.length ? (unsigned)f.payload[0] : 0u);
    }
    if (f.type == EF_MSG_INFO) {
        check(f.length == EF_INFO_BYTES && f.payload[0] == EF_LINK_VERSION);
    } else if (f.type == EF_MSG_ERROR) {
        check(f.length == EF_ERROR_BYTES && f.payload[0] >= EF_ERR_BAD_CRC && f.payload[0] <= EF_ERR_BAD_SIZE);
    } else {
        check(f.type == EF_MSG_OUTPUT && f.length == OUTPUT_BYTES);
        check(ef_get_u16(f.payload + 2) == (uint16_t)EF_N_LAYERS);
        check(ef_get_u32(f.payload + 4) == (uint32_t)EF_OUTPUT_SIZE);
    }
}

uint64_t ef_hal_cycles(void)
{
    return counter += 3u;
}

uint64_t ef_hal_instret(void)
{
    return counter += 2u;
}

int ef_hal_cores(void)
{
    return 1;
}

/* ---- structured inputs: operations -> wire bytes ----------------------------------------------------------- */
static void emit(const uint8_t *p, size_t n)
{
    size_t k = n < WIRE_CAP - wire_len ? n : WIRE_CAP - wire_len;
    memcpy(wire + wire_len, p, k);
    wire_len += k;
}

static void emit_frame(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t n)
{
    static uint8_t out[EF_LINK_WIRE_MAX(0xFFFFu)];
    emit(out, ef_link_encode(type, seq, payload, n, out, sizeof out));
}

/* One whole window as INPUT chunks of `step` bytes; its codes from a small generator seeded by `seed`. */
static void emit_window(uint16_t seq, uint32_t step, uint32_t seed, uint32_t total)
{
    static uint8_t chunk[EF_INPUT_HEAD_BYTES + EF_LINK_MAX_PAYLOAD];
    uint32_t off, k;
    for (off = 0; off < (uint32_t)EF_INPUT_SIZE; off += step) {
        uint32_t n = (uint32_t)EF_INPUT_SIZE - off < step ? (uint32_t)EF_INPUT_SIZE - off : step;
        ef_put_u32(chunk, off);
        ef_put_u32(chunk + 4, total);
        for (k = 0; k < n; ++k) {
            seed = seed * 1103515245u + 12345u;
            chunk[EF_INPUT_HEAD_BYTES + k] = (uint8_t)(seed >> 16);
        }
        emit_frame(EF_MSG_INPUT, seq, chunk, (uint16_t)(EF_INPUT_HEAD_BYTES + n));
    }
}

/* Operations, each an opcode byte and its arguments (missing bytes read as 0):
 *   0 HELLO seq16 | 1 whole window seq8 step8 seed8 | 2 one chunk seq8 off16 len16 total-mode8 (codes 0x5A)
 *   3 raw bytes len8 bytes | 4 frame of any type type8 seq8 len8 bytes | 5 lone delimiter
 *   6 whole window with a wrong total seq8 | 7 the last operation's bytes again (a duplicate)
 * At most MAX_WINDOWS whole windows (ops 1 and 6) per input; further ones are skipped. */
/* The next `bytes` argument bytes at p[*i] as a little-endian number (missing bytes read as 0). */
static uint32_t take(const uint8_t *p, size_t n, size_t *i, unsigned bytes)
{
    uint32_t v = 0;
    unsigned k;
    for (k = 0; k < bytes; ++k) {
        v |= (uint32_t)(*i < n ? p[(*i)++] : 0u) << (8u * k);
    }
    return v;
}

static void ops(const uint8_t *p, size_t n)
{
    static uint8_t chunk[EF_INPUT_HEAD_BYTES + 0xFFFFu];
    size_t i = 0, ops_done = 0, last_at = 0, windows = 0;
    while (i < n && ops_done++ < MAX_OPS) {
        uint8_t op = (uint8_t)(take(p, n, &i, 1) % 8u);
        size_t at = wire_len;
        if (op == 0u) {
            uint16_t seq = (uint16_t)take(p, n, &i, 2);
            emit_frame(EF_MSG_HELLO, seq, NULL, 0);
        } else if ((op == 1u || op == 6u) && windows++ < MAX_WINDOWS) {
            uint16_t seq = (uint16_t)take(p, n, &i, 1);
            uint32_t most = EF_LINK_MAX_PAYLOAD - EF_INPUT_HEAD_BYTES;
            uint32_t step = op == 1u ? 1u + (take(p, n, &i, 1) * (most - 1u)) / 255u : most;
            uint32_t seed = op == 1u ? take(p, n, &i, 1) : 7u;
            emit_window(seq, step, seed, op == 1u ? (uint32_t)EF_INPUT_SIZE : (uint32_t)EF_INPUT_SIZE + 1u);
        } else if (op == 2u) {
            uint16_t seq = (uint16_t)take(p, n, &i, 1);
            uint32_t off = take(p, n, &i, 2) * 4u;
            uint32_t len = take(p, n, &i, 2);
            uint8_t mode = (uint8_t)take(p, n, &i, 1);
            uint32_t total = mode == 0u ? (uint32_t)EF_INPUT_SIZE : mode == 1u ? 0xFFFFFFFFu : (uint32_t)mode;
            len = len > 0xFFFFu - EF_INPUT_HEAD_BYTES ? 0xFFFFu - EF_INPUT_HEAD_BYTES : len;
            ef_put_u32(chunk, off);
            ef_put_u32(chunk + 4, total);
            memset(chunk + EF_INPUT_HEAD_BYTES, 0x5A, len);
            emit_frame(EF_MSG_INPUT, seq, chunk, (uint16_t)(EF_INPUT_HEAD_BYTES + len));
        } else if (op == 3u || op == 4u) {
            uint8_t type = op == 4u ? (uint8_t)take(p, n, &i, 1) : 0u;
            uint16_t seq = op == 4u ? (uint16_t)take(p, n, &i, 1) : 0u;
            size_t len = take(p, n, &i, 1);
            len = len < n - i ? len : n - i;
            if (op == 3u) {
                emit(p + i, len);
            } else {
                emit_frame(type, seq, p + i, (uint16_t)len);
            }
            i += len;
        } else if (op == 5u) {
            emit((const uint8_t *)"", 1);
        } else if (op == 7u) {
            size_t k, len = at - last_at;
            for (k = 0; k < len && wire_len < WIRE_CAP; ++k) {
                wire[wire_len++] = wire[last_at + k];
            }
        }
        last_at = at;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return 0;
    }
    if (trace < 0) {
        trace = getenv("EF_FUZZ_TRACE") != NULL;
    }
    if (wire == NULL) {
        wire = malloc(WIRE_CAP);
        check(wire != NULL);
    }
    if (data[0] & 1u) {
        wire_len = 0;
        ops(data + 1, size - 1u);
        in_data = wire;
        in_len = wire_len;
    } else {
        in_data = data + 1;
        in_len = size - 1u;
    }
    in_pos = 0;
    /* a freshly booted device */
    state = ST_IDLE;
    asm_seq = 0;
    asm_got = 0;
    windows_run = 0;
    cache_valid = 0;
    cache_seq = 0;
    cache_crc = 0;
    memset(window, 0, sizeof window);
    ef_link_rx_init(&host_rx, host_buf, sizeof host_buf, 0xFFFFu);
    if (setjmp(done) == 0) {
        ef_device_main();
    }
    return 0;
}
