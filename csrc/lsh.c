/* Locality-sensitive hash families and the bucket tables.
 *
 * DWTA (densified winner-take-all): each code looks at DWTA_BIN coordinates
 * and records which of them is largest (3 bits). The coordinates come from
 * concatenated random permutations, so within a permutation every coordinate
 * lands in exactly one bin. A bin where no coordinate is positive (common for
 * ReLU activations) borrows the code of another bin chosen by a fixed probe
 * sequence, so sparse vectors still get full keys.
 *
 * SRP (signed random projections): each code is the sign of a sparse random
 * +-1 projection over a third of the coordinates (1 bit).
 *
 * A table key concatenates K codes. When the key has more bits than the
 * table has buckets it is mixed and its top bits kept.
 */
#include "network.h"

#include <stdlib.h>
#include <string.h>

#include "rng.h"

void hash_shape(bolt_hash *h, int32_t family, int32_t K, int32_t L,
                int32_t range_pow, int32_t dim)
{
    memset(h, 0, sizeof *h);
    h->family = family;
    h->K = K;
    h->L = L;
    h->range_pow = range_pow;
    h->dim = dim;
    h->n_codes = K * L;
    h->take = family == BOLT_HASH_DWTA ? DWTA_BIN : (dim + 2) / 3;
}

void hash_layout(arena *a, void *hash, const void *unused)
{
    bolt_hash *h = hash;
    (void)unused;
    const int64_t n = (int64_t)h->n_codes * h->take;
    h->coords = arena_take(a, PART_TABLES, n, sizeof(int32_t));
    h->signs = NULL;
    h->perm = NULL;
    if (h->family == BOLT_HASH_DWTA)
        h->perm = arena_take(a, PART_BUFFERS, h->dim, sizeof(int32_t));
    else
        h->signs = arena_take(a, PART_TABLES, n, 1);
}

/* DWTA: consecutive random permutations of [0, dim) cut into bins. */
static void draw_dwta(bolt_hash *h, rng_stream *rs)
{
    const int64_t n = (int64_t)h->n_codes * h->take;
    const int32_t dim = h->dim;
    int32_t *perm = h->perm;
    for (int64_t i = 0; i < n; i += dim) {
        for (int32_t j = 0; j < dim; j++)
            perm[j] = j;
        for (int32_t j = dim - 1; j > 0; j--) {
            int32_t r = (int32_t)rng_below(rng_next(rs), (uint32_t)j + 1);
            int32_t tmp = perm[j];
            perm[j] = perm[r];
            perm[r] = tmp;
        }
        for (int32_t j = 0; j < dim && i + j < n; j++)
            h->coords[i + j] = perm[j];
    }
}

int hash_create(bolt_hash *h, uint64_t seed, uint64_t draw)
{
    int rc = arena_build(hash_layout, h, NULL, 0, &h->block, "the hash functions");
    if (rc)
        return rc;
    h->salt = rng_at(seed, 0x2000u, draw);
    rng_stream rs = {seed, 0x3000u + draw, 0};
    if (h->family == BOLT_HASH_DWTA) {
        draw_dwta(h, &rs);
        return BOLT_OK;
    }
    const int64_t n = (int64_t)h->n_codes * h->take;
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&rs);
        h->coords[i] = (int32_t)rng_below(r, (uint32_t)h->dim);
        h->signs[i] = (r & 1u) ? 1 : -1;
    }
    return BOLT_OK;
}

void hash_destroy(bolt_hash *h)
{
    free(h->block);
    h->block = NULL;
    h->coords = NULL;
    h->signs = NULL;
    h->perm = NULL;
}

static uint32_t finish_key(const bolt_hash *h, uint64_t key, int bits)
{
    if (bits <= h->range_pow)
        return (uint32_t)key;
    return (uint32_t)(rng_mix(key ^ h->salt) >> (64 - h->range_pow));
}

static void dwta_keys(const bolt_hash *h, const float *v, uint32_t *keys,
                      int32_t *code)
{
    const int32_t nc = h->n_codes;
    int32_t n_empty = 0;
    for (int32_t c = 0; c < nc; c++) {
        const int32_t *co = h->coords + (int64_t)c * DWTA_BIN;
        float best = 0.0f;
        int32_t arg = -1;
        for (int32_t j = 0; j < DWTA_BIN; j++) {
            float x = v[co[j]];
            if (x > best) {
                best = x;
                arg = j;
            }
        }
        code[c] = arg;
        n_empty += arg < 0;
    }
    if (n_empty > 0 && n_empty < nc) {
        /* borrow from the first non-empty bin on a fixed probe sequence;
         * the attempt number is folded in so borrowed codes are not exact
         * copies of the bin they came from */
        for (int32_t c = 0; c < nc; c++) {
            if (code[c] >= 0)
                continue;
            int32_t got = 0;
            for (uint32_t a = 1; a <= 64 && !got; a++) {
                int32_t src = (int32_t)rng_below(rng_at(h->salt, (uint64_t)c, a),
                                                 (uint32_t)nc);
                if (code[src] >= 0 && code[src] < DWTA_BIN) {
                    code[c] = DWTA_BIN + (int32_t)((uint32_t)(code[src] + (int32_t)a) % DWTA_BIN);
                    got = 1;
                }
            }
            if (!got)
                code[c] = DWTA_BIN;
        }
        for (int32_t c = 0; c < nc; c++)
            if (code[c] >= DWTA_BIN)
                code[c] -= DWTA_BIN;
    } else if (n_empty == nc) {
        memset(code, 0, (size_t)nc * sizeof(int32_t));
    }
    for (int32_t l = 0; l < h->L; l++) {
        uint64_t key = 0;
        for (int32_t k = 0; k < h->K; k++)
            key |= (uint64_t)code[l * h->K + k] << (3 * k);
        keys[l] = finish_key(h, key, 3 * h->K);
    }
}

static void srp_keys(const bolt_hash *h, const float *v, uint32_t *keys)
{
    for (int32_t l = 0; l < h->L; l++) {
        uint64_t key = 0;
        for (int32_t k = 0; k < h->K; k++) {
            const int64_t c = (int64_t)(l * h->K + k) * h->take;
            float s = 0.0f;
            for (int32_t j = 0; j < h->take; j++)
                s += (float)h->signs[c + j] * v[h->coords[c + j]];
            key |= (uint64_t)(s > 0.0f) << k;
        }
        keys[l] = finish_key(h, key, h->K);
    }
}

void hash_keys(const bolt_hash *h, const float *v, uint32_t *keys,
               int32_t *scratch)
{
    if (h->family == BOLT_HASH_DWTA)
        dwta_keys(h, v, keys, scratch);
    else
        srp_keys(h, v, keys);
}

void tables_layout(bolt_tables *t, arena *a)
{
    const int64_t nb = tables_n_buckets(t);
    t->counts = arena_zero(a, PART_TABLES, nb, sizeof(uint32_t));
    t->ids = arena_take(a, PART_TABLES, mul_sat(nb, t->R), sizeof(int32_t));
}

void tables_clear(bolt_tables *t)
{
    memset(t->counts, 0, (size_t)tables_n_buckets(t) * sizeof(uint32_t));
}

/* Reservoir sampling keeps every inserted id with equal probability R/count
 * once a bucket overflows, so a popular bucket cannot grow without bound. */
void tables_insert(bolt_tables *t, int32_t l, uint32_t key, int32_t id)
{
    const int64_t b = tables_bucket(t, l, key);
    uint32_t c = t->counts[b];
    if (c < (uint32_t)t->R) {
        t->ids[b * t->R + c] = id;
    } else {
        uint32_t r = rng_below(rng_at(t->seed, (uint64_t)b, c), c + 1);
        if (r < (uint32_t)t->R)
            t->ids[b * t->R + r] = id;
    }
    if (c < UINT32_MAX)
        t->counts[b] = c + 1;
}
