/* Host (native gcc) implementation of ef_hal.h: the link is a file descriptor pair (the tty named by the
 * EF_HAL_PORT environment variable, opened raw, or the inherited descriptor EF_HAL_FD (e.g. a pty master),
 * else stdin/stdout); counters come from clock_gettime
 * (cycles = monotonic ns, instret = process CPU ns), or a deterministic count per call with EF_HAL_FAKE_COUNTERS.
 * Output is buffered and flushed whenever the device is about to wait for input. EOF on input ends the process. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ef_hal.h"

static int fd_in = 0;
static int fd_out = 1;
static int fake_counters;
static uint64_t fake_count;
static uint8_t in_buf[4096];
static size_t in_len, in_pos;
static uint8_t out_buf[4096];
static size_t out_len;

static void flush_out(void)
{
    size_t done = 0;
    while (done < out_len) {
        ssize_t w = write(fd_out, out_buf + done, out_len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            exit(0); /* the host went away */
        }
        done += (size_t)w;
    }
    out_len = 0;
}

void ef_hal_init(void)
{
    const char *port = getenv("EF_HAL_PORT");
    const char *fd_text = getenv("EF_HAL_FD");
    fake_counters = getenv("EF_HAL_FAKE_COUNTERS") != NULL;
    if (port != NULL && port[0] != '\0') {
        int fd = open(port, O_RDWR | O_NOCTTY);
        if (fd < 0) {
            fprintf(stderr, "ef_hal_host: cannot open %s\n", port);
            exit(2);
        }
        fd_in = fd_out = fd;
    } else if (fd_text != NULL && fd_text[0] != '\0') {
        fd_in = fd_out = atoi(fd_text);
    }
    if (isatty(fd_in)) {
        struct termios t;
        if (tcgetattr(fd_in, &t) == 0) {
            cfmakeraw(&t);
            tcsetattr(fd_in, TCSANOW, &t);
        }
    }
}

int ef_hal_getc(void)
{
    if (in_pos == in_len) {
        ssize_t r;
        flush_out();
        for (;;) {
            r = read(fd_in, in_buf, sizeof in_buf);
            if (r < 0 && errno == EIO) { /* pty master while no one holds the port: wait for the host */
                struct timespec pause = {0, 10000000L};
                nanosleep(&pause, NULL);
                continue;
            }
            if (!(r < 0 && errno == EINTR)) {
                break;
            }
        }
        if (r <= 0) {
            exit(0); /* link closed: power off */
        }
        in_len = (size_t)r;
        in_pos = 0;
    }
    return in_buf[in_pos++];
}

void ef_hal_putc(uint8_t c)
{
    if (out_len == sizeof out_buf) {
        flush_out();
    }
    out_buf[out_len++] = c;
}

static uint64_t ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ef_hal_cycles(void)
{
    return fake_counters ? (fake_count += 1000u) : ns(CLOCK_MONOTONIC);
}

uint64_t ef_hal_instret(void)
{
    return fake_counters ? (fake_count += 1000u) : ns(CLOCK_PROCESS_CPUTIME_ID);
}

int ef_hal_cores(void)
{
    return 1;
}
