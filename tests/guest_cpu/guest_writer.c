/* A guest CPU for the concurrency tests (tests/test_concurrent_guest.py): it rewrites words of
 * guest memory in a tight loop while the device's kernels run, as a vCPU does, without the GIL
 * (ctypes releases it for the call). Built at test time with the system C compiler. */
#include <sched.h>
#include <stddef.h>
#include <stdint.h>

/* Toggle n words (``stride`` words apart from ``base``) between ``a`` and ``b`` until *stop is
 * set; returns the passes made. Volatile stores: every toggle reaches memory. */
uint64_t flip_words(uint32_t *base, size_t n, size_t stride, uint32_t a, uint32_t b,
                    volatile int *stop)
{
    volatile uint32_t *w = base;
    uint64_t passes = 0;
    size_t i;
    while (!*stop) {
        for (i = 0; i < n; i++)
            w[i * stride] = a;
        for (i = 0; i < n; i++)
            w[i * stride] = b;
        passes++;
    }
    return passes;
}

/* A hostile guest for the concurrent fuzzer (fuzz/fuzz_tx.py --concurrent): until *stop is set,
 * while *go is set, write a value picked from ``values`` into the word ``base[where[k]]`` for a
 * random k (xorshift64 from ``seed``): ``where`` aims the writes (descriptor command words, source
 * MACs, tags...). While *go is clear it yields the CPU (the fuzzer sets it around each kernel run
 * only, so the machine's other work is not starved). Returns the writes made. */
uint64_t mutate_words(uint32_t *base, const uint32_t *where, size_t nwhere, const uint32_t *values,
                      size_t nvalues, uint64_t seed, volatile int *go, volatile int *stop)
{
    volatile uint32_t *w = base;
    uint64_t x = seed | 1, writes = 0;
    while (!*stop) {
        if (!*go) {
            sched_yield();
            continue;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[where[(x >> 8) % nwhere]] = values[(x >> 40) % nvalues];
        writes++;
    }
    return writes;
}
