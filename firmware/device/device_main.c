/* Device main loop: say INFO at boot, assemble INPUT windows from link frames, run the network, answer OUTPUT
 * with counters (whole window and per layer), reject bad frames with one ERROR each. Only ef_hal.h, ef_link.h,
 * the generated network.h and ef_model_info.h are used. */
#include <stdint.h>
#include <string.h>

#include "ef_hal.h"
#include "ef_layer_hook.h"
#include "ef_link.h"
#include "ef_model_info.h"
#include "network.h"

#ifndef EF_LINK_MAX_PAYLOAD
#define EF_LINK_MAX_PAYLOAD 1024u /* largest INPUT payload accepted (announced in INFO) */
#endif

#define OUTPUT_BYTES (EF_OUTPUT_HEAD_BYTES + 4u * (uint32_t)EF_OUTPUT_SIZE + 16u * (uint32_t)EF_N_LAYERS)
#define RX_CAP EF_LINK_COBS_MAX(EF_LINK_MAX_PAYLOAD + EF_LINK_OVERHEAD)
#define TX_CAP EF_LINK_WIRE_MAX(OUTPUT_BYTES > EF_INFO_BYTES ? OUTPUT_BYTES : EF_INFO_BYTES)

typedef char ef_output_fits_u16[(OUTPUT_BYTES <= 0xFFFFu) ? 1 : -1];
typedef char ef_payload_fits_u16[(EF_LINK_MAX_PAYLOAD <= 0xFFFFu && EF_LINK_MAX_PAYLOAD > 8u) ? 1 : -1];

enum { ST_IDLE, ST_ASSEMBLING, ST_BROKEN };

static int8_t window[EF_INPUT_SIZE];
static int32_t logits[EF_OUTPUT_SIZE];
static uint8_t rx_buf[RX_CAP];
static uint8_t tx_buf[TX_CAP];
static uint8_t out_payload[OUTPUT_BYTES];
static uint64_t layer_cycles[EF_N_LAYERS];
static uint64_t layer_instret[EF_N_LAYERS];
static uint64_t mark_cycles, mark_instret;

static ef_link_rx rx;
static int state = ST_IDLE;
static uint16_t asm_seq;
static uint32_t asm_got;
static uint32_t windows_run;
static int cache_valid;
static uint16_t cache_seq;
static uint32_t cache_crc;

/* Both counters through one out-of-line routine, so every reading has the same instructions between its
 * cycle and its instret read: on QEMU -icount the deltas are then equal exactly, whatever the compiler
 * schedules around the call sites. */
static __attribute__((noinline)) void read_counters(uint64_t *c, uint64_t *n)
{
    *c = ef_hal_cycles();
    *n = ef_hal_instret();
}

void ef_layer_mark(int32_t i)
{
    uint64_t c, n;
    read_counters(&c, &n);
    if (i >= 0 && i < (int32_t)EF_N_LAYERS) {
        layer_cycles[i] = c - mark_cycles;
        layer_instret[i] = n - mark_instret;
    }
    mark_cycles = c;
    mark_instret = n;
}

static void send(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t n)
{
    size_t len = ef_link_encode(type, seq, payload, n, tx_buf, sizeof tx_buf);
    size_t i;
    for (i = 0; i < len; ++i) {
        ef_hal_putc(tx_buf[i]);
    }
}

static void send_info(uint16_t seq, uint8_t reason)
{
    static const uint8_t hash[8] = EF_MODEL_HASH;
    static const uint32_t in_dims[4] = EF_INPUT_DIMS;
    static const uint32_t out_dims[4] = EF_OUTPUT_DIMS;
    uint8_t p[EF_INFO_BYTES];
    int k;
    memset(p, 0, sizeof p);
    p[0] = (uint8_t)EF_LINK_VERSION;
    p[1] = reason;
    p[2] = (uint8_t)EF_INPUT_RANK;
    p[3] = (uint8_t)EF_OUTPUT_RANK;
    memcpy(p + 4, hash, sizeof hash);
    ef_put_u32(p + 12, (uint32_t)EF_INPUT_SIZE);
    ef_put_u32(p + 16, (uint32_t)EF_OUTPUT_SIZE);
    ef_put_u16(p + 20, (uint16_t)EF_N_LAYERS);
    ef_put_u16(p + 22, (uint16_t)EF_LINK_MAX_PAYLOAD);
    ef_put_u32(p + 24, (uint32_t)EF_INPUT_SCALE_BITS);
    ef_put_u32(p + 28, (uint32_t)(int32_t)EF_INPUT_ZERO_POINT);
    for (k = 0; k < 4; ++k) {
        ef_put_u32(p + 32 + 4 * k, in_dims[k]);
        ef_put_u32(p + 48 + 4 * k, out_dims[k]);
    }
    p[64] = (uint8_t)ef_hal_cores();
    send(EF_MSG_INFO, seq, p, (uint16_t)sizeof p);
}

/* One ERROR per broken window: after it, chunks of the broken window are dropped quietly until offset 0. */
static void fail(int code, uint16_t seq, uint32_t detail)
{
    uint8_t p[EF_ERROR_BYTES];
    if (state != ST_BROKEN) {
        memset(p, 0, sizeof p);
        p[0] = (uint8_t)code;
        ef_put_u32(p + 4, detail);
        send(EF_MSG_ERROR, seq, p, (uint16_t)sizeof p);
    }
    state = ST_BROKEN;
}

static void run_window(uint16_t seq)
{
    uint32_t crc = ef_crc32(0, (const uint8_t *)window, sizeof window);
    uint64_t c0, n0, c1, n1;
    int32_t k;
    if (cache_valid && cache_seq == seq && cache_crc == crc) { /* host retry after a lost answer */
        out_payload[0] = (uint8_t)EF_OUTPUT_REPLAY;
        send(EF_MSG_OUTPUT, seq, out_payload, (uint16_t)OUTPUT_BYTES);
        return;
    }
    memset(layer_cycles, 0, sizeof layer_cycles);
    memset(layer_instret, 0, sizeof layer_instret);
    read_counters(&c0, &n0);
    mark_cycles = c0;
    mark_instret = n0;
    ef_network_run(window, logits);
    read_counters(&c1, &n1);
    c0 = c1 - c0;
    n0 = n1 - n0;
    ++windows_run;
    memset(out_payload, 0, EF_OUTPUT_HEAD_BYTES);
    ef_put_u16(out_payload + 2, (uint16_t)EF_N_LAYERS);
    ef_put_u32(out_payload + 4, (uint32_t)EF_OUTPUT_SIZE);
    ef_put_u64(out_payload + 8, c0);
    ef_put_u64(out_payload + 16, n0);
    ef_put_u32(out_payload + 24, windows_run);
    for (k = 0; k < (int32_t)EF_OUTPUT_SIZE; ++k) {
        ef_put_u32(out_payload + EF_OUTPUT_HEAD_BYTES + 4u * (uint32_t)k, (uint32_t)logits[k]);
    }
    for (k = 0; k < (int32_t)EF_N_LAYERS; ++k) {
        uint8_t *q = out_payload + EF_OUTPUT_HEAD_BYTES + 4u * (uint32_t)EF_OUTPUT_SIZE + 16u * (uint32_t)k;
        ef_put_u64(q, layer_cycles[k]);
        ef_put_u64(q + 8, layer_instret[k]);
    }
    cache_valid = 1;
    cache_seq = seq;
    cache_crc = crc;
    send(EF_MSG_OUTPUT, seq, out_payload, (uint16_t)OUTPUT_BYTES);
}

static void on_input(const ef_frame *f)
{
    uint32_t off, total, n;
    if (f->length < EF_INPUT_HEAD_BYTES) {
        fail(EF_ERR_BAD_LENGTH, f->seq, f->length);
        return;
    }
    off = ef_get_u32(f->payload);
    total = ef_get_u32(f->payload + 4);
    n = (uint32_t)f->length - EF_INPUT_HEAD_BYTES;
    if (off == 0u) { /* a window (re)starts */
        state = ST_ASSEMBLING;
        asm_seq = f->seq;
        asm_got = 0;
    } else if (state == ST_BROKEN) {
        return; /* rest of a window already reported broken */
    } else if (state != ST_ASSEMBLING) {
        fail(EF_ERR_BAD_OFFSET, f->seq, 0);
        return;
    } else if (f->seq != asm_seq) {
        fail(EF_ERR_BAD_SEQ, f->seq, asm_seq);
        return;
    } else if (off != asm_got) {
        fail(EF_ERR_BAD_OFFSET, f->seq, asm_got);
        return;
    }
    if (total != (uint32_t)EF_INPUT_SIZE) {
        fail(EF_ERR_BAD_SIZE, f->seq, (uint32_t)EF_INPUT_SIZE);
        return;
    }
    if (n > (uint32_t)EF_INPUT_SIZE - off) {
        fail(EF_ERR_BAD_LENGTH, f->seq, (uint32_t)EF_INPUT_SIZE - off);
        return;
    }
    memcpy(window + off, f->payload + EF_INPUT_HEAD_BYTES, n);
    asm_got = off + n;
    if (asm_got == (uint32_t)EF_INPUT_SIZE) {
        state = ST_IDLE;
        run_window(asm_seq);
    }
}

int main(void)
{
    ef_frame f;
    ef_hal_init();
    ef_link_rx_init(&rx, rx_buf, sizeof rx_buf, (uint16_t)EF_LINK_MAX_PAYLOAD);
    send_info(0, 0);
    for (;;) {
        int r = ef_link_rx_feed(&rx, (uint8_t)ef_hal_getc(), &f);
        if (r == 0) {
            continue;
        }
        if (r < 0) { /* bad frame: name the window being assembled, else whatever the header said */
            fail(-r, state == ST_ASSEMBLING ? asm_seq : f.seq, f.detail);
            continue;
        }
        switch (f.type) {
        case EF_MSG_HELLO:
            state = ST_IDLE;
            cache_valid = 0; /* a new session: a reused seq is a new window */
            send_info(f.seq, 1);
            break;
        case EF_MSG_INPUT:
            on_input(&f);
            break;
        default:
            fail(EF_ERR_BAD_TYPE, f.seq, f.type);
            break;
        }
    }
}
