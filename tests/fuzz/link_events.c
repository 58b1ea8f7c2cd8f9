/* Test harness: feed a byte string through one C link receiver (firmware/link/ef_link.c) and record every
 * event, for the Python/C agreement properties (tests/fuzz/test_receivers_agree.py, loaded with ctypes). */
#include <stdlib.h>

#include "ef_link.h"

size_t ef_events(const uint8_t *data, size_t n, size_t cap, uint16_t max_payload, int32_t *codes, uint8_t *types,
                 uint16_t *seqs, uint32_t *payload_len, uint32_t *payload_crc, size_t max_events);

/* Per event k: codes[k] (1 accepted, -code rejected), its type, seq, payload length and CRC-32 (0 when
 * rejected). The buffer is a heap block of exactly cap bytes. Returns the number of events (<= max_events). */
size_t ef_events(const uint8_t *data, size_t n, size_t cap, uint16_t max_payload, int32_t *codes, uint8_t *types,
                 uint16_t *seqs, uint32_t *payload_len, uint32_t *payload_crc, size_t max_events)
{
    ef_link_rx rx;
    ef_frame f;
    size_t i, k = 0;
    uint8_t *buf = malloc(cap > 0u ? cap : 1u);
    if (buf == NULL) {
        return 0;
    }
    ef_link_rx_init(&rx, buf, cap, max_payload);
    for (i = 0; i < n && k < max_events; ++i) {
        int r = ef_link_rx_feed(&rx, data[i], &f);
        if (r == 0) {
            continue;
        }
        codes[k] = r;
        types[k] = r == 1 ? f.type : 0u;
        seqs[k] = r == 1 ? f.seq : 0u;
        payload_len[k] = r == 1 ? f.length : 0u;
        payload_crc[k] = r == 1 ? ef_crc32(0, f.payload, f.length) : 0u;
        ++k;
    }
    free(buf);
    return k;
}
