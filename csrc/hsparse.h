/* What the sparse first hidden layer's tables (hsparse.c) and its active
 * sets (hactive.c) share: the top-up stream, the ranking's row cut and
 * the tables' key. Internal to the core. */
#ifndef BOLT_HSPARSE_H
#define BOLT_HSPARSE_H

#include "network.h"
#include "rng.h"

/* Stream of rng_at for the top-up offsets (the others are in hsparse.c). */
#define HS_TOPUP 0x8004u

/* Nonzeros of a row the ranking reads, at most (those of largest
 * magnitude); the blocks kept then get their exact pre-activations. */
#define HS_RANK_FEATURES 32

static inline int key_bits_direct(const hidden_hash *h)
{
    /* bin^K distinct keys fit 2^range_pow buckets: use the key as is */
    double keys = 1.0;
    for (int32_t k = 0; k < h->K; k++)
        keys *= (double)h->bin;
    return keys <= (double)((int64_t)1 << h->range_pow);
}

/* Table l's key from the codes of its K bins. */
static inline uint32_t hidden_key(const hidden_hash *h, const int32_t *code, int32_t l,
                                  int64_t stride)
{
    uint64_t key = 0;
    for (int32_t k = 0; k < h->K; k++)
        key = key * (uint64_t)h->bin + (uint64_t)code[(int64_t)(l * h->K + k) * stride];
    if (key_bits_direct(h))
        return (uint32_t)key;
    return (uint32_t)(rng_mix(key ^ h->salt ^ ((uint64_t)l << 40)) >> (64 - h->range_pow));
}

#endif
