/* The LSH-sparse first hidden layer's active sets: a sample's active blocks
 * from its hash-table probe, their pre-activations and forward pass (the
 * design is described at the top of hsparse.c). */
#include "hsparse.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* active sets                                                                */

/* The sample's codes in every bin, empty bins borrowing from the next
 * non-empty one (cyclically); all zero for an empty row. */
static void sample_codes(const hidden_hash *h, const bolt_csr *X, int64_t row,
                         int32_t *code, float *best)
{
    const int32_t nc = h->n_codes;
    for (int32_t c = 0; c < nc; c++)
        code[c] = -1;
    const int64_t end = csr_ptr(X, row + 1);
    int any = 0;
    for (int64_t p = csr_ptr(X, row); p < end; p++) {
        const float v = csr_val(X, p);
        if (v == 0.0f)
            continue;
        const int32_t q = h->pos[csr_col(X, p)], bin = q / h->bin, off = q - bin * h->bin;
        if (code[bin] < 0 || v > best[bin] || (v == best[bin] && off < code[bin])) {
            code[bin] = off;
            best[bin] = v;
        }
        any = 1;
    }
    if (!any) {
        memset(code, 0, (size_t)nc * sizeof(int32_t));
        return;
    }
    /* walking down twice round the circle, `next` is the code of the
     * nearest non-empty bin above; borrowed codes are stored as -2 - code
     * until the end, so they are never lent on */
    int32_t next = -1;
    for (int32_t i = 2 * nc - 1; i >= 0; i--) {
        const int32_t c = i % nc;
        if (code[c] >= 0)
            next = code[c];
        else if (i < nc && next >= 0)
            code[c] = -2 - next;
    }
    for (int32_t c = 0; c < nc; c++)
        if (code[c] < 0)
            code[c] = -2 - code[c];
}

/* How many input rows ahead the block loads are prefetched: the blocks sit
 * at scattered places of rows far larger than the caches, so a load is a
 * memory round trip unless it was asked for early. */
#define GATHER_AHEAD 2

/* Starts loading the n blocks of B units that begin at start[0],
 * start[stride], ... of weight row wr (GCC; nothing elsewhere). */
static inline void prefetch_blocks(const float *wr, const int32_t *start, int32_t stride,
                                   int32_t n, int32_t B)
{
#if defined(__GNUC__)
    for (int32_t i = 0; i < n; i++)
        for (int32_t t = 0; t < B; t += 16)
            __builtin_prefetch(wr + start[(int64_t)i * stride] + t);
#else
    (void)wr;
    (void)start;
    (void)stride;
    (void)n;
    (void)B;
#endif
}

/* z[i B + t] += v w[start[i stride] + t]: n contiguous blocks of B weights
 * of one input row (BS is a constant where inlined, so the loop
 * vectorises). */
static inline void axpy_blocks(float *restrict z, const float *restrict wr,
                               const int32_t *start, int32_t stride, int32_t n, float v,
                               int32_t BS)
{
    for (int32_t i = 0; i < n; i++) {
        const float *src = wr + start[(int64_t)i * stride];
        float *dst = z + (int64_t)i * BS;
        for (int32_t t = 0; t < BS; t++)
            dst[t] += v * src[t];
    }
}

/* Pre-activations of n blocks of units into z (B each), block i being the
 * B units from start[i * stride] on: b + sum over the row's nonzeros of
 * x_j w[j, unit] (only over the nonzeros at offsets at[0..n_at) of the
 * row, when at is given). Every input row costs one contiguous run of B
 * weights (one cache line at B = 16) per block. */
static void block_pre(const bolt_network *net, const bolt_csr *X, int64_t row,
                      const int32_t *at, int32_t n_at, const int32_t *start, int32_t stride,
                      int32_t n, float *z)
{
    const bolt_layer *l = &net->layer[0];
    const int32_t B = net->hblock;
    const int64_t H = l->cols, begin = csr_ptr(X, row);
    const int64_t m = at ? n_at : csr_ptr(X, row + 1) - begin;
#define HS_POS(q) (begin + (at ? (int64_t)at[q] : (q)))
    for (int64_t q = 0; q < m && q < GATHER_AHEAD; q++)
        prefetch_blocks(l->w + csr_col(X, HS_POS(q)) * H, start, stride, n, B);
    for (int32_t i = 0; i < n; i++)
        memcpy(z + (int64_t)i * B, l->b + start[(int64_t)i * stride], (size_t)B * sizeof(float));
    for (int64_t q = 0; q < m; q++) {
        if (q + GATHER_AHEAD < m)
            prefetch_blocks(l->w + csr_col(X, HS_POS(q + GATHER_AHEAD)) * H, start, stride, n, B);
        const int64_t p = HS_POS(q);
        const float v = csr_val(X, p);
        const float *wr = l->w + csr_col(X, p) * H;
        if (B == 16)
            axpy_blocks(z, wr, start, stride, n, v, 16);
        else
            axpy_blocks(z, wr, start, stride, n, v, B);
    }
#undef HS_POS
}

/* Offsets in the row of its (at most) HS_RANK_FEATURES nonzeros of largest
 * magnitude (ties: the earlier) into top; returns how many, or -1 when the
 * row has no more than that (all of them count). */
static int32_t top_features(const bolt_csr *X, int64_t row, int32_t *top, float *mag)
{
    const int64_t begin = csr_ptr(X, row), nnz = csr_ptr(X, row + 1) - begin;
    if (nnz <= HS_RANK_FEATURES)
        return -1;
    int32_t n = 0, low = 0; /* low: the entry of smallest magnitude kept */
    for (int64_t q = 0; q < nnz; q++) {
        const float v = fabsf(csr_val(X, begin + q));
        if (n < HS_RANK_FEATURES) {
            top[n] = (int32_t)q;
            mag[n++] = v;
            if (n == HS_RANK_FEATURES)
                for (int32_t i = 0; i < n; i++)
                    low = mag[i] < mag[low] || (mag[i] == mag[low] && top[i] > top[low]) ? i : low;
            continue;
        }
        if (!(v > mag[low]))
            continue;
        top[low] = (int32_t)q;
        mag[low] = v;
        for (int32_t i = 0; i < n; i++)
            low = mag[i] < mag[low] || (mag[i] == mag[low] && top[i] > top[low]) ? i : low;
    }
    return n;
}

/* The k of n indices id with the largest values z (ties: the smaller
 * index) moved to the front, by quickselect on (z, id) in place. */
static void top_by_value(int32_t *id, float *z, int32_t n, int32_t k)
{
    int32_t lo = 0, hi = n - 1;
#define HS_BEFORE(a, b) (z[a] > z[b] || (z[a] == z[b] && id[a] < id[b]))
#define HS_SWAP(a, b)                                                                   \
    do {                                                                                \
        const float tz = z[a];                                                          \
        const int32_t ti = id[a];                                                       \
        z[a] = z[b];                                                                    \
        id[a] = id[b];                                                                  \
        z[b] = tz;                                                                      \
        id[b] = ti;                                                                     \
    } while (0)
    while (lo < hi) {
        HS_SWAP((lo + hi) / 2, hi); /* middle as pivot, parked at hi */
        int32_t store = lo;
        for (int32_t i = lo; i < hi; i++)
            if (HS_BEFORE(i, hi)) {
                HS_SWAP(i, store);
                store++;
            }
        HS_SWAP(store, hi);
        if (store == k - 1 || store == k)
            break;
        if (store < k)
            lo = store + 1;
        else
            hi = store - 1;
    }
#undef HS_BEFORE
#undef HS_SWAP
}

/* Shell sort of n ints (Ciura's gaps; n is a few blocks). */
static void sort_ints(int32_t *x, int32_t n)
{
    static const int32_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        const int32_t gap = gaps[g];
        for (int32_t i = gap; i < n; i++) {
            const int32_t t = x[i];
            int32_t j = i;
            for (; j >= gap && x[j - gap] > t; j -= gap)
                x[j] = x[j - gap];
            x[j] = t;
        }
    }
}

/* Hashes the row, queries the tables and lists in p->cand, once each, the
 * blocks of the retrieved units, with in p->count how many retrieved units
 * (over all tables) each holds; returns how many blocks, and in *mixed a
 * digest of the row's keys (it seeds the top-up). */
static int32_t retrieve(const bolt_network *net, const hidden_probe *p, const bolt_csr *X,
                        int64_t row, uint64_t *mixed)
{
    const hidden_hash *h = &net->hhash;
    const int32_t L = h->L;
    int shift = 0;
    while ((1 << shift) < net->hblock)
        shift++;
    sample_codes(h, X, row, p->codes, p->best);
    *mixed = 0;
    for (int32_t l = 0; l < L; l++) {
        p->keys[l] = hidden_key(h, p->codes, l, 1);
        *mixed = rng_mix(*mixed ^ p->keys[l]);
    }
    tables_prefetch(&net->htables, p->keys);
    int32_t n = 0;
    for (int32_t l = 0; l < L; l++) {
        const int32_t *bucket;
        const int32_t held = tables_get(&net->htables, l, p->keys[l], &bucket);
        for (int32_t i = 0; i < held; i++) {
            const int32_t b = bucket[i] >> shift;
            if (p->count[b] == 0)
                p->cand[n++] = b;
            if (p->count[b] < UINT16_MAX)
                p->count[b]++;
        }
    }
    return n;
}

/* Keeps at most `want` of the n candidate blocks, those with the most
 * retrieved units (every block above a threshold count t and the first at
 * t; counts past 255 count as 255), compacted in place at the front of
 * cand (the write index never passes the read index); clears every count
 * it reads. Returns how many are kept. */
static int32_t keep_most_retrieved(const hidden_probe *p, int32_t n, int32_t want)
{
    if (n <= want) {
        for (int32_t i = 0; i < n; i++)
            p->count[p->cand[i]] = 0;
        return n;
    }
    int32_t hist[256] = {0}, t = 255, above = 0;
    for (int32_t i = 0; i < n; i++) {
        const int32_t c = p->count[p->cand[i]];
        hist[c < 255 ? c : 255]++;
    }
    while (t > 1 && above + hist[t] < want)
        above += hist[t--];
    int32_t ties = want - above, m = 0;
    for (int32_t i = 0; i < n; i++) {
        const int32_t b = p->cand[i], c = p->count[b] < 255 ? p->count[b] : 255;
        p->count[b] = 0;
        if (c > t || (c == t && ties-- > 0))
            p->cand[m++] = b;
    }
    return m;
}

/* Tops blocks[0..m) up to the active count from the fill permutation at an
 * offset drawn from the row's key digest and the step, skipping the
 * chosen. */
static void top_up(const bolt_network *net, const hidden_probe *p, int32_t *blocks, int32_t m,
                   uint64_t mixed, uint64_t step)
{
    const int32_t nb = net->hnb, nblk = net->hblocks;
    for (int32_t i = 0; i < m; i++)
        p->count[blocks[i]] = 1;
    int64_t at = rng_below(rng_at(net->cfg.seed ^ mixed, HS_TOPUP, step), (uint32_t)nblk);
    while (m < nb) {
        const int32_t b = net->hfill[at];
        if (!p->count[b]) {
            p->count[b] = 1;
            blocks[m++] = b;
        }
        at = at + 1 == nblk ? 0 : at + 1;
    }
    for (int32_t i = 0; i < nb; i++)
        p->count[blocks[i]] = 0;
}

/* ids[i B + t] = blocks[i] B + t for the nb blocks, in place: blocks and
 * ids may be the same array (expanded from the end). */
static void expand_blocks(int32_t *ids, const int32_t *blocks, int32_t nb, int32_t B)
{
    for (int32_t i = nb - 1; i >= 0; i--) {
        const int32_t first = blocks[i] * B;
        for (int32_t t = B - 1; t >= 0; t--)
            ids[(int64_t)i * B + t] = first + t;
    }
}

int hsparse_choose(const bolt_network *net, const hidden_probe *p, const bolt_csr *X,
                   int64_t row, uint64_t step, int32_t *ids, float *pre)
{
    const int32_t nb = net->hnb, B = net->hblock;
    uint64_t mixed;
    const int32_t n = retrieve(net, p, X, row, &mixed);
    const int32_t m = keep_most_retrieved(p, n, net->hrank);
    if (m > nb) {
        /* hashing collides on any shared feature, a rare one as much as a
         * telling one: the nb blocks whose units pass the most activation
         * (sum of their ReLUs) */
        sort_ints(p->cand, m); /* the loads along a weight row go forward */
        for (int32_t i = 0; i < m; i++)
            p->cand[i] *= B; /* first units */
        /* a long row is ranked by its largest nonzeros alone: ranking
         * costs a line per candidate block and nonzero */
        const int32_t n_top = top_features(X, row, p->top, p->mag);
        block_pre(net, X, row, n_top < 0 ? NULL : p->top, n_top, p->cand, 1, m, p->z);
        for (int32_t i = 0; i < m; i++) {
            float sum = 0.0f;
            const float *zi = p->z + (int64_t)i * B;
            for (int32_t t = 0; t < B; t++)
                sum = zi[t] > sum ? zi[t] : sum;
            p->score[i] = sum;
            p->order[i] = i;
        }
        top_by_value(p->order, p->score, m, nb);
        sort_ints(p->order, nb); /* ascending candidates: ascending ids */
        for (int32_t i = 0; i < nb; i++) {
            const int32_t c = p->order[i];
            for (int32_t t = 0; t < B; t++)
                ids[(int64_t)i * B + t] = p->cand[c] + t;
            if (pre && n_top < 0)
                memcpy(pre + (int64_t)i * B, p->z + (int64_t)c * B, (size_t)B * sizeof(float));
        }
        return pre != NULL && n_top < 0;
    }
    memcpy(ids, p->cand, (size_t)m * sizeof(int32_t));
    if (m < nb)
        top_up(net, p, ids, m, mixed, step);
    /* ascending ids: the loads along a weight row go forward */
    sort_ints(ids, nb);
    expand_blocks(ids, ids, nb, B);
    return 0;
}

void hsparse_forward(const bolt_network *net, const bolt_csr *X, int64_t row,
                     const int32_t *ids, int32_t k, float *a)
{
    block_pre(net, X, row, NULL, 0, ids, net->hblock, k / net->hblock, a);
    for (int32_t i = 0; i < k; i++)
        a[i] = a[i] > 0.0f ? a[i] : 0.0f;
}

int bolt_hidden_active(const bolt_network *net, const bolt_csr *X, int64_t row,
                       int64_t step, int32_t *out, int64_t cap, int64_t *n_out)
{
    int rc;
    if ((rc = check_given("network X out n_out", (const void *[]){net, X, out, n_out}, 4)) ||
        (rc = check_inference(net, X, 1)))
        return rc;
    if (row < 0 || row >= X->n_rows || step < 0)
        return bolt_fail(BOLT_EINVAL, "row must be in [0, %lld) and step non-negative",
                         (long long)X->n_rows);
    if (!net->hsparse) {
        *n_out = 0;
        return BOLT_OK;
    }
    float *buf = malloc((size_t)(hprobe_words(net) + net->hk) * sizeof(float));
    if (!buf)
        return bolt_fail(BOLT_ENOMEM, "out of memory choosing active units");
    const hidden_probe p = hprobe_carve(net, buf);
    int32_t *ids = (int32_t *)(buf + hprobe_words(net));
    hsparse_choose(net, &p, X, row, (uint64_t)step, ids, NULL);
    *n_out = net->hk;
    memcpy(out, ids, (size_t)(cap < net->hk ? cap : net->hk) * sizeof(int32_t));
    free(buf);
    return BOLT_OK;
}
