/* Small counter-based random numbers.
 *
 * Every random quantity in the core is a pure function of (seed, stream,
 * counter), so results do not depend on which thread draws them or in which
 * order, and a model can regenerate its hash functions from a few integers.
 */
#ifndef SKBOLT_RNG_H
#define SKBOLT_RNG_H

#include <stdint.h>

/* splitmix64 finaliser: a bijective 64-bit mixer with good avalanche. */
static inline uint64_t rng_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static inline uint64_t rng_at(uint64_t seed, uint64_t stream, uint64_t counter)
{
    return rng_mix(rng_mix(seed ^ rng_mix(stream)) + counter);
}

/* Uniform in [0, 1) with 24 bits, exact in float. */
static inline float rng_unit(uint64_t r)
{
    return (float)(r >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n) by the multiply-shift method (n < 2^32). */
static inline uint32_t rng_below(uint64_t r, uint32_t n)
{
    return (uint32_t)(((r >> 32) * (uint64_t)n) >> 32);
}

/* Sequential generator for loops such as Fisher-Yates shuffles. */
typedef struct {
    uint64_t seed, stream, counter;
} rng_stream;

static inline uint64_t rng_next(rng_stream *s)
{
    return rng_at(s->seed, s->stream, s->counter++);
}

#endif
