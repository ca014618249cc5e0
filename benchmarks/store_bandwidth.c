/* How far this machine's memory lets two cores stream 64-byte lines at once: the ceiling of the
 * two-port receive rows in bench_rx.py (two_threads / two_processes).
 *
 * Each process writes one whole 64-byte line every 2 KiB over 8 MiB (4096 lines: the layout of
 * 8 rings of 512 x 2 KiB buffers receiving 64-byte frames), with streaming (non-temporal) or
 * plain 16-byte stores, 20000 times, and prints the lines it wrote per second.
 *
 *   cc -O2 -o /tmp/store_bandwidth benchmarks/store_bandwidth.c
 *   /tmp/store_bandwidth stream 1; /tmp/store_bandwidth stream 2
 *   /tmp/store_bandwidth plain 1;  /tmp/store_bandwidth plain 2
 *
 * x86-64 only (SSE2). Figures: benchmarks/RESULTS.md, "Two ports on two cores".
 */
#include <emmintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPAN (8u << 20)
#define STRIDE 2048u
#define ROUNDS 20000

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double lines_per_second(int stream)
{
    uint8_t *buf = aligned_alloc(4096, SPAN);
    const __m128i v = _mm_set1_epi32(0x5a5a5a5a);
    double t;
    if (buf == NULL)
        return 0.0;
    memset(buf, 0, SPAN); /* fault the pages in before timing */
    t = seconds();
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t off = 0; off < SPAN; off += STRIDE) {
            __m128i *p = (__m128i *)(buf + off);
            if (stream) {
                _mm_stream_si128(p, v);
                _mm_stream_si128(p + 1, v);
                _mm_stream_si128(p + 2, v);
                _mm_stream_si128(p + 3, v);
            } else {
                _mm_store_si128(p, v);
                _mm_store_si128(p + 1, v);
                _mm_store_si128(p + 2, v);
                _mm_store_si128(p + 3, v);
            }
        }
        _mm_sfence();
    }
    t = seconds() - t;
    free(buf);
    return (double)(SPAN / STRIDE) * ROUNDS / t;
}

int main(int argc, char **argv)
{
    int stream, procs;
    if (argc != 3 || (strcmp(argv[1], "stream") && strcmp(argv[1], "plain")) || atoi(argv[2]) < 1) {
        fprintf(stderr, "usage: %s stream|plain PROCESSES\n", argv[0]);
        return 2;
    }
    stream = strcmp(argv[1], "stream") == 0;
    procs = atoi(argv[2]);
    for (int i = 0; i < procs; i++) {
        if (fork() == 0) {
            printf("%s stores, process %d of %d: %.1f M lines/s\n", argv[1], i + 1, procs,
                   lines_per_second(stream) / 1e6);
            fflush(stdout);
            _exit(0);
        }
    }
    while (wait(NULL) > 0)
        ;
    return 0;
}
