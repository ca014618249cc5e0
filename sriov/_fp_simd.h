/* Small store helpers for the receive kernel (sriov/_fp_rx.pxi), included from Cython.
 *
 * Why a C header: two things Cython cannot say portably.
 *  - The 16-byte write-back descriptor is stored as two 8-byte little-endian words written
 *    straight to guest memory. Building it in a stack buffer and copying it (16-byte load of two
 *    8-byte stores) stalls on a failed store-to-load forward on x86, ~25% of the kernel's time.
 *  - Non-temporal (streaming) stores for the frame bytes: a receive buffer is written and never
 *    read by the device, so fetching its lines first (read-for-ownership) is wasted traffic; that
 *    holds for the line a frame ends in too when it ends on a 4-byte boundary (a 60-byte
 *    minimum-size frame: 3 x 16 + 8 + 4 bytes streamed, 15 % faster than plain stores of it).
 *    SSE2 only (every x86-64); elsewhere the portable path is a plain copy.
 * Every function here writes exactly the bytes a plain memcpy of the same arguments would.
 */
#ifndef SRIOV_FP_SIMD_H
#define SRIOV_FP_SIMD_H

#include <stdint.h>
#include <string.h>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#define SRIOV_HAVE_STREAM 1
#else
#define SRIOV_HAVE_STREAM 0
#endif

static inline void sriov_st64le(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

static inline uint64_t sriov_ld64le(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* The advanced receive write-back descriptor: words 0-1 (info, RSS) zero; word 2 status_error;
 * word 3 length (bits 15:0) | VLAN tag (bits 31:16). Two 8-byte stores, no staging. */
static inline void sriov_wb16(uint8_t *dp, uint32_t status, uint32_t length, uint32_t vlan)
{
    sriov_st64le(dp, 0);
    sriov_st64le(dp + 8, (uint64_t)status | ((uint64_t)(length & 0xFFFF) << 32)
                             | ((uint64_t)(vlan & 0xFFFF) << 48));
}

/* The same from word 1 as a whole (status_error | length << 32 | VLAN << 48). */
static inline void sriov_wb16w(uint8_t *dp, uint64_t word1)
{
    sriov_st64le(dp, 0);
    sriov_st64le(dp + 8, word1);
}

/* The same for exactly one 64-byte line (the common 64-byte frame): no loop. */
static inline void sriov_stream_copy64(uint8_t *dst, const uint8_t *src)
{
#if SRIOV_HAVE_STREAM
    __m128i a = _mm_loadu_si128((const __m128i *)src);
    __m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
    __m128i d = _mm_loadu_si128((const __m128i *)(src + 48));
    _mm_stream_si128((__m128i *)dst, a);
    _mm_stream_si128((__m128i *)(dst + 16), b);
    _mm_stream_si128((__m128i *)(dst + 32), c);
    _mm_stream_si128((__m128i *)(dst + 48), d);
#else
    memcpy(dst, src, 64);
#endif
}

/* Copy n bytes (dst 64-byte aligned, no overlap) with streaming stores: every whole line, and
 * the line the frame ends in when the frame ends on a 4-byte boundary (16-byte stores, then one
 * 8- and one 4-byte store, movnti): a plain store there would first read the line from memory
 * (read-for-ownership), e.g. for a 60-byte minimum-size frame. A tail that ends elsewhere goes
 * out as plain stores, all of it: a plain store into a line with streamed bytes pending flushes
 * them and stalls (IMIX with the last 1-3 bytes plain ran 6x slower). */
static inline void sriov_stream_copy(uint8_t *dst, const uint8_t *src, uint32_t n)
{
#if SRIOV_HAVE_STREAM
    uint32_t i = 0, whole = (n & 3) ? (n & ~63u) : n;
    int32_t w;
    for (; i + 16 <= whole; i += 16)
        _mm_stream_si128((__m128i *)(dst + i), _mm_loadu_si128((const __m128i *)(src + i)));
    if (whole == n) {
#if defined(__x86_64__)
        if (i + 8 <= n) {
            long long q;
            memcpy(&q, src + i, 8);
            _mm_stream_si64((long long *)(dst + i), q);
            i += 8;
        }
#endif
        for (; i + 4 <= n; i += 4) {
            memcpy(&w, src + i, 4);
            _mm_stream_si32((int *)(dst + i), w);
        }
    }
    if (i < n)
        memcpy(dst + i, src + i, n - i);
#else
    memcpy(dst, src, n);
#endif
}

/* One frame of 48-64 bytes into one line (dst 64-byte aligned, no overlap): the 60-byte minimum
 * frame and the 64-byte one without a loop. */
static inline void sriov_stream_copy_line(uint8_t *dst, const uint8_t *src, uint32_t n)
{
    if (n == 64)
        sriov_stream_copy64(dst, src);
    else
        sriov_stream_copy(dst, src, n);
}

/* The same frame of 48-64 bytes with plain stores (the "plain" store mode: the line stays in the
 * caches; no overlap between dst and src, any alignment): three 16-byte pieces and the 16 bytes
 * that end at n (overlapping the third piece when n < 64, with the same bytes). Every load comes
 * before the first store. */
static inline void sriov_plain_copy_line(uint8_t *dst, const uint8_t *src, uint32_t n)
{
#if defined(__SSE2__)
    __m128i a = _mm_loadu_si128((const __m128i *)src);
    __m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
    __m128i d = _mm_loadu_si128((const __m128i *)(src + n - 16));
    _mm_storeu_si128((__m128i *)dst, a);
    _mm_storeu_si128((__m128i *)(dst + 16), b);
    _mm_storeu_si128((__m128i *)(dst + 32), c);
    _mm_storeu_si128((__m128i *)(dst + n - 16), d);
#else
    memcpy(dst, src, n);
#endif
}

/* Big-endian 16-bit field of a frame (EtherType, TCI): one load instead of two byte loads. */
static inline uint32_t sriov_ld16be(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return v;
#else
    return __builtin_bswap16(v);
#endif
}

/* A MAC address as a 48-bit integer, byte 0 in the low byte (the RAL/RAH order), from two loads. */
static inline uint64_t sriov_mac_key(const uint8_t *mac)
{
    uint32_t lo;
    uint16_t hi;
    memcpy(&lo, mac, 4);
    memcpy(&hi, mac + 4, 2);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap16(hi);
#endif
    return (uint64_t)lo | ((uint64_t)hi << 32);
}

/* Order the streaming stores before anything the host reads next (once per batch). */
static inline void sriov_store_fence(void)
{
#if SRIOV_HAVE_STREAM
    _mm_sfence();
#endif
}

/* Add to a counter that kernels of other ports (other threads) add to as well (the IOMMU's
 * fault log): an atomic add, returning the value before it. */
static inline uint64_t sriov_fetch_add64(uint64_t *p, uint64_t v)
{
#if defined(_MSC_VER) && !defined(__clang__)
    return (uint64_t)_InterlockedExchangeAdd64((volatile __int64 *)p, (__int64)v);
#else
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#endif
}

#endif /* SRIOV_FP_SIMD_H */
