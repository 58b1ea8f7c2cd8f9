/* libFuzzer target: the link receiver of firmware/link/ef_link.c over any byte stream, with receive buffers of
 * every size (heap blocks of exactly cap bytes, so AddressSanitizer sees one byte written past them).
 * Input: byte 0 picks max_payload, byte 1 the buffer (bit 7: the legal size for max_payload, else 0..127 bytes),
 * the rest is the wire. Invariants checked (abort on violation):
 *   - every event is 0, 1 or -code with code in {BAD_CRC, BAD_LENGTH, OVERFLOW, BAD_COBS};
 *   - an accepted frame's payload lies inside the buffer and is at most max_payload bytes;
 *   - an accepted frame re-encoded by ef_link_encode is decoded again to the same type, seq and bytes, and
 *     ef_link_encode refuses (returns 0, writes nothing past) an output buffer 1..3 bytes short;
 *   - ef_cobs_encode of the wire bytes has no 0x00, at most EF_LINK_COBS_MAX bytes, refuses a short buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ef_link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

static void round_trip(const ef_frame *f)
{
    size_t need = EF_LINK_WIRE_MAX((size_t)f->length);
    uint8_t *wire = malloc(need);
    uint8_t *short_out;
    uint8_t *buf2;
    size_t len, i, cap2 = EF_LINK_COBS_MAX((size_t)f->length + EF_LINK_OVERHEAD);
    ef_link_rx rx2;
    ef_frame g;
    int r = 0;
    check(wire != NULL);
    len = ef_link_encode(f->type, f->seq, f->payload, f->length, wire, need);
    check(len > 1u && len <= need && wire[len - 1] == 0u);
    for (i = 0; i + 1 < len; ++i) {
        check(wire[i] != 0u);
    }
    for (i = 1; i <= 3u && i < len; ++i) { /* buffers 1..3 bytes short: refused, never written past */
        short_out = malloc(len - i);
        check(short_out != NULL);
        check(ef_link_encode(f->type, f->seq, f->payload, f->length, short_out, len - i) == 0u);
        free(short_out);
    }
    buf2 = malloc(cap2);
    check(buf2 != NULL);
    ef_link_rx_init(&rx2, buf2, cap2, f->length);
    for (i = 0; i < len; ++i) {
        r = ef_link_rx_feed(&rx2, wire[i], &g);
        check(i + 1 == len ? r == 1 : r == 0);
    }
    check(g.type == f->type && g.seq == f->seq && g.length == f->length);
    check(f->length == 0u || memcmp(g.payload, f->payload, f->length) == 0);
    free(buf2);
    free(wire);
}

/* COBS of the raw input into buffers of the exact size and a little less: no 0x00 out, bounded overhead, a short
 * buffer refused without a write past it. */
static void cobs_bounds(const uint8_t *data, size_t size)
{
    size_t cap = EF_LINK_COBS_MAX(size), len, i, k;
    uint8_t *out = malloc(cap);
    check(out != NULL);
    len = ef_cobs_encode(data, size, out, cap);
    check(len >= size + 1u && len <= cap);
    for (i = 0; i < len; ++i) {
        check(out[i] != 0u);
    }
    free(out);
    for (k = 1; k <= 2u && k <= len; ++k) {
        out = malloc(len - k > 0u ? len - k : 1u);
        check(out != NULL);
        check(ef_cobs_encode(data, size, out, len - k) == 0u);
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t max_payload;
    size_t cap, i;
    uint8_t *buf;
    ef_link_rx rx;
    ef_frame f;
    if (size < 2u) {
        return 0;
    }
    max_payload = (uint16_t)(data[0] * 4u + (data[0] & 3u));
    cap = (data[1] & 0x80u) ? EF_LINK_COBS_MAX((size_t)max_payload + EF_LINK_OVERHEAD) : (size_t)(data[1] & 0x7Fu);
    buf = malloc(cap > 0u ? cap : 1u);
    check(buf != NULL);
    ef_link_rx_init(&rx, buf, cap, max_payload);
    for (i = 2; i < size; ++i) {
        int r = ef_link_rx_feed(&rx, data[i], &f);
        if (r == 0) {
            continue;
        }
        if (r == 1) {
            check(f.length <= max_payload && f.payload >= buf && f.payload + f.length <= buf + cap);
            check(f.payload == buf + EF_LINK_HEADER);
            round_trip(&f);
            continue;
        }
        check(r == -EF_ERR_BAD_CRC || r == -EF_ERR_BAD_LENGTH || r == -EF_ERR_OVERFLOW || r == -EF_ERR_BAD_COBS);
        check(f.payload == NULL && f.length == 0u);
    }
    check(rx.len <= cap);
    free(buf);
    cobs_bounds(data + 2, size - 2u);
    return 0;
}
