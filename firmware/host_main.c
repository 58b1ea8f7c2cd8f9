/* Host driver: int8 input windows from stdin (or argv[1]) -> ef_network_run -> int32 accumulators to stdout (or argv[2]). */
#include <stdint.h>
#include <stdio.h>

#include "network.h"

static int8_t window[EF_INPUT_SIZE];
static int32_t acc[EF_OUTPUT_SIZE];

int main(int argc, char **argv)
{
    FILE *in = argc > 1 ? fopen(argv[1], "rb") : stdin;
    FILE *out = argc > 2 ? fopen(argv[2], "wb") : stdout;
    long n = 0;
    size_t got;
    if (in == NULL || out == NULL) {
        fprintf(stderr, "host_main: cannot open %s\n", in == NULL ? argv[1] : argv[2]);
        return 2;
    }
    while ((got = fread(window, 1, EF_INPUT_SIZE, in)) == EF_INPUT_SIZE) {
        ef_network_run(window, acc);
        if (fwrite(acc, sizeof(int32_t), EF_OUTPUT_SIZE, out) != EF_OUTPUT_SIZE) {
            fprintf(stderr, "host_main: write failed after %ld windows\n", n);
            return 1;
        }
        ++n;
    }
    if (got != 0) {
        fprintf(stderr, "host_main: trailing %lu bytes are not a whole window of %d bytes\n",
                (unsigned long)got, EF_INPUT_SIZE);
        return 1;
    }
    fflush(out);
    fprintf(stderr, "host_main: %ld windows\n", n);
    return 0;
}
