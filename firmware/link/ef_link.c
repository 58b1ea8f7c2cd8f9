/* Link protocol of the edgeflow device: CRC-32 (zlib-compatible), COBS encode/decode, frame encode and a
 * byte-at-a-time receiver that rejects bad COBS, bad length, bad CRC and overlong frames. */
#include "ef_link.h"

/* ---- CRC-32 (reflected polynomial 0xEDB88320, init/final xor 0xFFFFFFFF), 16-entry nibble table ---------- */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t ef_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    size_t i;
    crc = ~crc;
    for (i = 0; i < n; ++i) {
        crc ^= p[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
    }
    return ~crc;
}

/* ---- little-endian helpers ---------------------------------------------------------------------------- */
void ef_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

void ef_put_u32(uint8_t *p, uint32_t v)
{
    ef_put_u16(p, (uint16_t)(v & 0xFFFFu));
    ef_put_u16(p + 2, (uint16_t)(v >> 16));
}

void ef_put_u64(uint8_t *p, uint64_t v)
{
    ef_put_u32(p, (uint32_t)(v & 0xFFFFFFFFu));
    ef_put_u32(p + 4, (uint32_t)(v >> 32));
}

uint16_t ef_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

uint32_t ef_get_u32(const uint8_t *p)
{
    return (uint32_t)ef_get_u16(p) | ((uint32_t)ef_get_u16(p + 2) << 16);
}

/* ---- COBS encoder over several segments --------------------------------------------------------------- */
typedef struct {
    uint8_t *out;
    size_t cap;
    size_t len;
    size_t code_at;
    uint8_t code;
    uint8_t full; /* ran out of room */
} cobs_enc;

static void enc_start(cobs_enc *e, uint8_t *out, size_t cap)
{
    e->out = out;
    e->cap = cap;
    e->len = 1;
    e->code_at = 0;
    e->code = 1;
    e->full = (uint8_t)(cap < 1u);
}

static void enc_close_block(cobs_enc *e)
{
    e->out[e->code_at] = e->code;
    e->code_at = e->len;
    e->code = 1;
    if (e->len >= e->cap) {
        e->full = 1;
        return;
    }
    e->len++;
}

/* A block of 254 data bytes (code 0xFF) is closed lazily, when the next byte comes, so that no empty block
 * follows it at the very end (canonical COBS). */
static void enc_put(cobs_enc *e, uint8_t b)
{
    if (e->full) {
        return;
    }
    if (e->code == 0xFFu) {
        enc_close_block(e);
        if (e->full) {
            return;
        }
    }
    if (b == 0u) {
        enc_close_block(e);
        return;
    }
    if (e->len >= e->cap) {
        e->full = 1;
        return;
    }
    e->out[e->len++] = b;
    e->code++;
}

static size_t enc_finish(cobs_enc *e)
{
    if (e->full) {
        return 0;
    }
    e->out[e->code_at] = e->code;
    return e->len;
}

size_t ef_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    cobs_enc e;
    size_t i;
    enc_start(&e, out, cap);
    for (i = 0; i < n; ++i) {
        enc_put(&e, in[i]);
    }
    return enc_finish(&e);
}

size_t ef_link_encode(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t n, uint8_t *out, size_t cap)
{
    uint8_t head[EF_LINK_HEADER];
    uint8_t tail[4];
    uint32_t crc;
    cobs_enc e;
    size_t i, len;
    if (cap < 2u || (n > 0u && payload == NULL)) {
        return 0;
    }
    head[0] = type;
    ef_put_u16(head + 1, seq);
    ef_put_u16(head + 3, n);
    crc = ef_crc32(ef_crc32(0, head, sizeof head), payload, n);
    ef_put_u32(tail, crc);
    enc_start(&e, out, cap - 1u); /* keep one byte for the delimiter */
    for (i = 0; i < sizeof head; ++i) {
        enc_put(&e, head[i]);
    }
    for (i = 0; i < n; ++i) {
        enc_put(&e, payload[i]);
    }
    for (i = 0; i < sizeof tail; ++i) {
        enc_put(&e, tail[i]);
    }
    len = enc_finish(&e);
    if (len == 0u) {
        return 0;
    }
    out[len] = 0x00u;
    return len + 1u;
}

/* ---- receiver --------------------------------------------------------------------------------------- */
void ef_link_rx_init(ef_link_rx *rx, uint8_t *buf, size_t cap, uint16_t max_payload)
{
    rx->buf = buf;
    rx->cap = cap;
    rx->len = 0;
    rx->max_payload = max_payload;
    rx->overflow = 0;
}

/* Decode buf[0..n) in place (the output never overtakes the input); returns the decoded length or -1. */
static long cobs_decode_inplace(uint8_t *buf, size_t n)
{
    size_t i = 0, o = 0, k;
    while (i < n) {
        uint8_t code = buf[i];
        if (code == 0u || (size_t)code > n - i) {
            return -1;
        }
        for (k = 1; k < code; ++k) {
            if (buf[i + k] == 0u) {
                return -1;
            }
            buf[o++] = buf[i + k];
        }
        i += code;
        if (code < 0xFFu && i < n) {
            buf[o++] = 0u;
        }
    }
    return (long)o;
}

static int reject(ef_frame *f, int code, uint32_t detail)
{
    f->detail = detail;
    return -code;
}

static int parse_frame(ef_link_rx *rx, ef_frame *f)
{
    long dec = cobs_decode_inplace(rx->buf, rx->len);
    size_t n;
    uint16_t plen;
    if (dec < 0) {
        return reject(f, EF_ERR_BAD_COBS, (uint32_t)rx->len);
    }
    n = (size_t)dec;
    if (n >= 3u) {
        f->seq = ef_get_u16(rx->buf + 1);
    }
    if (n < EF_LINK_OVERHEAD) {
        return reject(f, EF_ERR_BAD_LENGTH, (uint32_t)n);
    }
    plen = ef_get_u16(rx->buf + 3);
    if (plen > rx->max_payload || n != (size_t)plen + EF_LINK_OVERHEAD) {
        return reject(f, EF_ERR_BAD_LENGTH, (uint32_t)n);
    }
    if (ef_crc32(0, rx->buf, EF_LINK_HEADER + (size_t)plen) != ef_get_u32(rx->buf + EF_LINK_HEADER + plen)) {
        return reject(f, EF_ERR_BAD_CRC, (uint32_t)n);
    }
    f->type = rx->buf[0];
    f->length = plen;
    f->payload = rx->buf + EF_LINK_HEADER;
    return 1;
}

int ef_link_rx_feed(ef_link_rx *rx, uint8_t byte, ef_frame *f)
{
    int r;
    if (byte != 0u) {
        if (rx->len < rx->cap) {
            rx->buf[rx->len++] = byte;
        } else {
            rx->overflow = 1;
        }
        return 0;
    }
    f->type = 0;
    f->seq = 0;
    f->length = 0;
    f->payload = NULL;
    f->detail = 0;
    if (rx->overflow) {
        r = reject(f, EF_ERR_OVERFLOW, (uint32_t)rx->len);
        if (rx->len >= 4u && rx->buf[0] > 3u) { /* first COBS block holds type + seq: the seq is readable */
            f->seq = ef_get_u16(rx->buf + 2);
        }
    } else if (rx->len == 0u) {
        r = 0; /* back-to-back delimiters: nothing to do */
    } else {
        r = parse_frame(rx, f);
    }
    rx->len = 0;
    rx->overflow = 0;
    return r;
}
