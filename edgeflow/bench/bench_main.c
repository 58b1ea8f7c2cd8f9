/* Bench driver for the host build: a persistent process that times each window it runs.
 * Reads one window of EF_INPUT_SIZE int8 codes from stdin, runs ef_network_run, writes EF_OUTPUT_SIZE int32
 * accumulators then two int64 (process CPU ns, monotonic wall ns of that call) to stdout and flushes, until
 * EOF. Linked with the same sources, kernels and flags as the host build's firmware (firmware/host_main.c). */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "network.h"

static int8_t window[EF_INPUT_SIZE];
static int32_t acc[EF_OUTPUT_SIZE];

static int64_t ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000 + (int64_t)t.tv_nsec;
}

int main(void)
{
    int64_t times[2];
    size_t got;
    while ((got = fread(window, 1, EF_INPUT_SIZE, stdin)) == EF_INPUT_SIZE) {
        int64_t c0 = ns(CLOCK_PROCESS_CPUTIME_ID), w0 = ns(CLOCK_MONOTONIC);
        ef_network_run(window, acc);
        times[1] = ns(CLOCK_MONOTONIC) - w0;
        times[0] = ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (fwrite(acc, sizeof(int32_t), EF_OUTPUT_SIZE, stdout) != EF_OUTPUT_SIZE
            || fwrite(times, sizeof(int64_t), 2, stdout) != 2 || fflush(stdout) != 0) {
            fprintf(stderr, "bench_main: write failed\n");
            return 1;
        }
    }
    if (got != 0) {
        fprintf(stderr, "bench_main: trailing %lu bytes are not a whole window of %d bytes\n",
                (unsigned long)got, EF_INPUT_SIZE);
        return 1;
    }
    return 0;
}
