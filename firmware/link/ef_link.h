/* Link protocol of the edgeflow device (C side): COBS framing, header, CRC-32, message layouts.
 * The spec is the docstring of edgeflow/link/protocol.py; this file implements the same bytes. */
#ifndef EF_LINK_H
#define EF_LINK_H

#include <stddef.h>
#include <stdint.h>

#define EF_LINK_VERSION 1u
#define EF_LINK_HEADER 5u   /* type u8, seq u16, payload length u16 */
#define EF_LINK_OVERHEAD 9u /* header + CRC-32 */
/* Worst-case COBS size of a body of n bytes (without the 0x00 delimiter). */
#define EF_LINK_COBS_MAX(n) ((n) + (n) / 254u + 2u)
/* Worst-case wire size (COBS + delimiter) of a frame with an n-byte payload. */
#define EF_LINK_WIRE_MAX(n) (EF_LINK_COBS_MAX((n) + EF_LINK_OVERHEAD) + 1u)

enum ef_msg_type {
    EF_MSG_HELLO = 0x01,
    EF_MSG_INFO = 0x02,
    EF_MSG_INPUT = 0x03,
    EF_MSG_OUTPUT = 0x04,
    EF_MSG_ERROR = 0x05
};

enum ef_err_code {
    EF_ERR_BAD_CRC = 1,
    EF_ERR_BAD_LENGTH = 2,
    EF_ERR_BAD_SEQ = 3,
    EF_ERR_BAD_OFFSET = 4,
    EF_ERR_BAD_TYPE = 5,
    EF_ERR_OVERFLOW = 6,
    EF_ERR_BAD_COBS = 7,
    EF_ERR_BAD_SIZE = 8
};

#define EF_INFO_BYTES 68u       /* INFO payload */
#define EF_OUTPUT_HEAD_BYTES 28u /* OUTPUT payload before the outputs */
#define EF_INPUT_HEAD_BYTES 8u   /* INPUT payload before the chunk: offset u32, total u32 */
#define EF_ERROR_BYTES 8u        /* ERROR payload: code u8, 3 reserved, detail u32 */
#define EF_OUTPUT_REPLAY 0x01u   /* OUTPUT flags bit: cached answer to a repeated seq */

/** CRC-32 as zlib.crc32: ef_crc32(0, p, n) == zlib.crc32(p); chain calls by passing the previous result. */
uint32_t ef_crc32(uint32_t crc, const uint8_t *p, size_t n);

/** COBS-encode n bytes of in into out (cap bytes); returns the encoded length (no delimiter), 0 if cap is short. */
size_t ef_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/** Encode one frame (COBS + 0x00) into out; returns the wire length, 0 if out (cap bytes) is too small. */
size_t ef_link_encode(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t n, uint8_t *out, size_t cap);

/** A received frame; payload points into the receiver's buffer and is valid until the next feed. */
typedef struct {
    uint8_t type;
    uint16_t seq;     /* on a rejected frame: read from its header when enough bytes decoded, else 0 */
    uint16_t length;
    const uint8_t *payload;
    uint32_t detail;  /* on a rejected frame: code-specific detail (e.g. bytes received) */
} ef_frame;

/** Byte-at-a-time receiver over a caller-provided buffer of cap bytes
 *  (cap >= EF_LINK_COBS_MAX(max_payload + EF_LINK_OVERHEAD) to accept every legal frame). */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint16_t max_payload;
    uint8_t overflow;
} ef_link_rx;

void ef_link_rx_init(ef_link_rx *rx, uint8_t *buf, size_t cap, uint16_t max_payload);

/** Feed one received byte. Returns 0 while no frame is complete, 1 when *f holds a valid frame, or
 *  -code (enum ef_err_code) when the frame that just ended was rejected (f->seq/f->detail best effort). */
int ef_link_rx_feed(ef_link_rx *rx, uint8_t byte, ef_frame *f);

/* Little-endian field access (no alignment assumptions). */
void ef_put_u16(uint8_t *p, uint16_t v);
void ef_put_u32(uint8_t *p, uint32_t v);
void ef_put_u64(uint8_t *p, uint64_t v);
uint16_t ef_get_u16(const uint8_t *p);
uint32_t ef_get_u32(const uint8_t *p);

#endif /* EF_LINK_H */
