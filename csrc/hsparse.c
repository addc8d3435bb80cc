/* The LSH-sparse first hidden layer (issue 36): its hash, its tables, the
 * choice of a sample's active units and their forward pass. This file:
 * the shape, the hash, the tables and the probes' memory; the active sets
 * are in hactive.c.
 *
 * The layer reads the sparse input, so it is hashed there: densified
 * winner-take-all (Chen & Shrivastava's densified one-permutation idea
 * applied to WTA codes). One random permutation of the d input coordinates
 * is cut into K * L bins of `bin` consecutive positions. A unit's code in a
 * bin is the position of the largest weight its column has there; a
 * sample's code is the position of its largest nonzero there. A unit whose
 * strongest weight in a bin sits on the sample's strongest feature in that
 * bin collides with it. Bins the sample has no nonzero in borrow the code of
 * the next bin that has one, so every table gets a key. (Bins of 8
 * coordinates, as the output layer's DWTA uses over dense hidden vectors,
 * would see almost no nonzero of a 100-word document among 2^15 features.)
 *
 * Units are hashed from the input-major weights in one pass over the input
 * rows, in permutation order, keeping per-(bin, unit) running maxima: the
 * columns are never gathered. The pass reads all d x H weights, which is
 * why the rebuild schedule of this layer is its own (hidden_rebuild_interval).
 *
 * A sample's active set is made of whole aligned blocks of B consecutive
 * units (B = 16, one 64-byte cache line of a weight row, or the largest
 * power of two dividing the width), k rounded up to whole blocks: a block
 * costs one line per input nonzero where scattered units cost a miss each,
 * and its loops run over contiguous floats. The tables hold units; a
 * retrieved unit counts for its block. The blocks with the most retrieved
 * units (at most hrank of them) are ranked by the largest pre-activation of
 * their units (long rows: over their 32 largest nonzeros) and the best kept,
 * topped up from a fixed random permutation of the blocks at an offset
 * drawn from the sample's keys and the step: deterministic, and at
 * inference (step 0) a function of the row alone.
 */
#include "hsparse.h"

#include <stdlib.h>
#include <string.h>

/* Streams of rng_at under the network's seed, apart from the others'. */
#define HS_SALT 0x8000u
#define HS_TABLES 0x8001u
#define HS_PERM 0x8002u
#define HS_FILL 0x8003u
/* HS_TOPUP, 0x8004u, is in hsparse.h */

/* The units of a block: the largest power of two up to HS_BLOCK that
 * divides the width (16 floats are one 64-byte cache line). */
#define HS_BLOCK 16

/* Blocks ranked by pre-activation per active block, and at most
 * HS_RANK_SPARE units' worth more than the active ones: ranking costs a
 * block of weights (one line) per candidate block and input nonzero. */
#define HS_RANK_FACTOR 8
#define HS_RANK_SPARE 512

/* The block shape of a sparse first hidden layer under config c: 0 when
 * the layer is dense (also once rounded to whole blocks). */
typedef struct {
    int32_t block, nb, blocks, rank;
} hs_dims;

static int hs_shape_of(const bolt_config *c, hs_dims *d)
{
    if (c->n_hidden != 1 || c->hidden_active <= 0 || c->hidden_active >= c->hidden_sizes[0])
        return 0;
    const int32_t H = (int32_t)c->hidden_sizes[0];
    int32_t B = HS_BLOCK;
    while (H % B)
        B /= 2;
    const int32_t nb = (c->hidden_active + B - 1) / B;
    if (nb * B >= H)
        return 0;
    d->block = B;
    d->nb = nb;
    d->blocks = H / B;
    const int32_t spare = (HS_RANK_SPARE + B - 1) / B;
    const int32_t more = spare < (HS_RANK_FACTOR - 1) * nb ? spare : (HS_RANK_FACTOR - 1) * nb;
    d->rank = nb + more < d->blocks ? nb + more : d->blocks;
    return 1;
}

static int64_t probe_words(const bolt_config *c, const hs_dims *d)
{
    const int64_t L = c->hidden_L, nc = (int64_t)c->hidden_K * L;
    return L + 2 * nc + L * (int64_t)c->hidden_reservoir + (int64_t)d->rank * (d->block + 2) +
           2 * HS_RANK_FEATURES + (d->blocks + 1) / 2;
}

int64_t hsparse_infer_words(const bolt_config *c)
{
    hs_dims d;
    if (!hs_shape_of(c, &d))
        return 0;
    return probe_words(c, &d) + 2 * (int64_t)d.nb * d.block;
}

void hsparse_shape(bolt_network *net)
{
    bolt_config *c = &net->cfg;
    hs_dims d;
    net->hsparse = hs_shape_of(c, &d);
    if (!net->hsparse)
        return;
    c->hidden_active = d.nb * d.block; /* whole blocks: what get_config reports */
    net->hk = d.nb * d.block;
    net->hblock = d.block;
    net->hnb = d.nb;
    net->hblocks = d.blocks;
    net->hrank = d.rank;
    hidden_hash *h = &net->hhash;
    h->K = c->hidden_K;
    h->L = c->hidden_L;
    h->range_pow = c->hidden_range_pow;
    h->n_codes = h->K * h->L;
    h->dim = c->n_features;
    h->bin = (h->dim + h->n_codes - 1) / h->n_codes;
    h->salt = rng_at(c->seed, HS_SALT, 0);
    net->htables.L = h->L;
    net->htables.range_pow = h->range_pow;
    net->htables.R = c->hidden_reservoir;
    net->htables.seed = rng_at(c->seed, HS_TABLES, 0);
}

void hsparse_layout(arena *a, bolt_network *net)
{
    hidden_hash *h = &net->hhash;
    h->perm = arena_take(a, PART_TABLES, h->dim, sizeof(int32_t));
    h->pos = arena_take(a, PART_TABLES, h->dim, sizeof(int32_t));
    net->hfill = arena_take(a, PART_TABLES, net->hblocks, sizeof(int32_t));
    tables_layout(&net->htables, a);
}

static void shuffle(int32_t *p, int64_t n, uint64_t seed, uint64_t stream)
{
    rng_stream rs = {seed, stream, 0};
    for (int64_t i = 0; i < n; i++)
        p[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t r = (int64_t)rng_below(rng_next(&rs), (uint32_t)(i + 1));
        const int32_t t = p[i];
        p[i] = p[r];
        p[r] = t;
    }
}

void hsparse_draw(bolt_network *net)
{
    hidden_hash *h = &net->hhash;
    shuffle(h->perm, h->dim, net->cfg.seed, HS_PERM);
    for (int32_t q = 0; q < h->dim; q++)
        h->pos[h->perm[q]] = q;
    shuffle(net->hfill, net->hblocks, net->cfg.seed, HS_FILL);
}


/* ------------------------------------------------------------------------ */
/* table rebuilds                                                             */

typedef struct {
    float *best;    /* n_codes x H running maxima */
    int32_t *arg;   /* n_codes x H their positions in the bin */
    uint32_t *keys; /* H x L */
} hbuild_bufs;

static void hbuild_layout(arena *a, void *vb, const void *vnet)
{
    hbuild_bufs *b = vb;
    const bolt_network *net = vnet;
    const int64_t H = net->width[1], nc = net->hhash.n_codes;
    b->best = arena_take(a, PART_BUFFERS, nc * H, sizeof(float));
    b->arg = arena_take(a, PART_BUFFERS, nc * H, sizeof(int32_t));
    b->keys = arena_take(a, PART_BUFFERS, H * net->hhash.L, sizeof(uint32_t));
}

void hsparse_rebuild_memory(const bolt_network *net, int32_t n_threads, bolt_memory *m)
{
    (void)n_threads; /* the buffers do not depend on the thread count */
    if (!net->hsparse)
        return;
    hbuild_bufs b;
    arena a = {0};
    hbuild_layout(&a, &b, net);
    arena_report(&a, m);
}

/* Codes of units c0 .. c1 in every bin: one pass over the input rows in
 * permutation order, so each bin's maxima stay in cache while its rows go
 * by. Select rather than branch, so the loop vectorises. */
static void code_columns(const bolt_network *net, const hbuild_bufs *b, int64_t c0, int64_t c1)
{
    const hidden_hash *h = &net->hhash;
    const bolt_layer *l = &net->layer[0];
    const int64_t H = l->cols;
    for (int32_t bin = 0; bin < h->n_codes; bin++)
        for (int64_t c = c0; c < c1; c++) {
            b->best[bin * H + c] = -INFINITY;
            b->arg[bin * H + c] = 0;
        }
    for (int32_t q = 0; q < h->dim; q++) {
        if (q + PREFETCH_ROWS < h->dim)
            prefetch_floats(l->w + (int64_t)h->perm[q + PREFETCH_ROWS] * H + c0, c1 - c0);
        const int32_t bin = q / h->bin, off = q - bin * h->bin;
        const float *wr = l->w + (int64_t)h->perm[q] * H;
        float *best = b->best + (int64_t)bin * H;
        int32_t *arg = b->arg + (int64_t)bin * H;
        for (int64_t c = c0; c < c1; c++) {
            const int gt = wr[c] > best[c];
            best[c] = gt ? wr[c] : best[c];
            arg[c] = gt ? off : arg[c];
        }
    }
}

int hsparse_build(bolt_network *net, int32_t n_threads)
{
    const hidden_hash *h = &net->hhash;
    const int64_t H = net->width[1];
    const int32_t L = h->L;
    hbuild_bufs b;
    void *block;
    int rc = arena_build(hbuild_layout, &b, net, 0, &block, "a hidden-layer table rebuild");
    if (rc)
        return rc;
    tables_clear(&net->htables);
    (void)n_threads; /* without OpenMP */
    /* codes are parallel over units (column blocks), insertion parallel
     * over tables with units in id order: the same tables at any thread
     * count */
#pragma omp parallel num_threads(n_threads)
    {
        const int64_t team = TEAM_SIZE(), me = THREAD_ID();
        const int64_t c0 = H * me / team, c1 = H * (me + 1) / team;
        code_columns(net, &b, c0, c1);
        for (int64_t c = c0; c < c1; c++)
            for (int32_t l = 0; l < L; l++)
                b.keys[c * L + l] = hidden_key(h, b.arg + c, l, H);
#pragma omp barrier
#pragma omp for schedule(static)
        for (int32_t l = 0; l < L; l++)
            for (int64_t c = 0; c < H; c++)
                tables_insert(&net->htables, l, b.keys[c * L + l], (int32_t)c);
    }
    free(block);
    return BOLT_OK;
}

int bolt_rebuild_hidden_tables(bolt_network *net, int32_t n_threads)
{
    int rc;
    if ((rc = check_given("network", (const void *[]){net}, 1)) ||
        (rc = check_threads(n_threads)))
        return rc;
    return net->hsparse ? hsparse_build(net, n_threads) : BOLT_OK;
}

int bolt_set_hidden_exact(bolt_network *net, int32_t exact)
{
    int rc = check_given("network", (const void *[]){net}, 1);
    if (rc)
        return rc;
    net->hexact = exact != 0;
    return BOLT_OK;
}

/* ------------------------------------------------------------------------ */
/* probes                                                                     */

int64_t hprobe_words(const bolt_network *net)
{
    if (!net->hsparse)
        return 0;
    const hs_dims d = {net->hblock, net->hnb, net->hblocks, net->hrank};
    return probe_words(&net->cfg, &d);
}

void hprobe_layout(arena *a, hidden_probe *all, const bolt_network *net, int64_t nt)
{
    const hidden_hash *h = &net->hhash;
    all->keys = arena_take(a, PART_BUFFERS, nt * h->L, sizeof(uint32_t));
    all->codes = arena_take(a, PART_BUFFERS, nt * h->n_codes, sizeof(int32_t));
    all->best = arena_take(a, PART_BUFFERS, nt * h->n_codes, sizeof(float));
    all->cand = arena_take(a, PART_BUFFERS, nt * h->L * net->htables.R, sizeof(int32_t));
    all->z = arena_take(a, PART_BUFFERS, nt * net->hrank * net->hblock, sizeof(float));
    all->score = arena_take(a, PART_BUFFERS, nt * net->hrank, sizeof(float));
    all->order = arena_take(a, PART_BUFFERS, nt * net->hrank, sizeof(int32_t));
    all->top = arena_take(a, PART_BUFFERS, nt * HS_RANK_FEATURES, sizeof(int32_t));
    all->mag = arena_take(a, PART_BUFFERS, nt * HS_RANK_FEATURES, sizeof(float));
    all->count = arena_zero(a, PART_BUFFERS, nt * net->hblocks, sizeof(uint16_t));
}

hidden_probe hprobe_at(const hidden_probe *all, const bolt_network *net, int tid)
{
    const hidden_hash *h = &net->hhash;
    hidden_probe p = {all->keys + (int64_t)tid * h->L, all->codes + (int64_t)tid * h->n_codes,
                      all->best + (int64_t)tid * h->n_codes,
                      all->cand + (int64_t)tid * h->L * net->htables.R,
                      all->z + (int64_t)tid * net->hrank * net->hblock,
                      all->score + (int64_t)tid * net->hrank,
                      all->order + (int64_t)tid * net->hrank,
                      all->top + (int64_t)tid * HS_RANK_FEATURES,
                      all->mag + (int64_t)tid * HS_RANK_FEATURES,
                      all->count + (int64_t)tid * net->hblocks};
    return p;
}

hidden_probe hprobe_carve(const bolt_network *net, float *buf)
{
    /* 32-bit words of malloc'd memory, each used as one type only */
    const hidden_hash *h = &net->hhash;
    hidden_probe p;
    p.keys = (uint32_t *)buf;
    p.codes = (int32_t *)(p.keys + h->L);
    p.best = (float *)(p.codes + h->n_codes);
    p.cand = (int32_t *)(p.best + h->n_codes);
    p.z = (float *)(p.cand + (int64_t)h->L * net->htables.R);
    p.score = p.z + (int64_t)net->hrank * net->hblock;
    p.order = (int32_t *)(p.score + net->hrank);
    p.top = p.order + net->hrank;
    p.mag = (float *)(p.top + HS_RANK_FEATURES);
    p.count = (uint16_t *)(p.mag + HS_RANK_FEATURES);
    memset(p.count, 0, (size_t)net->hblocks * sizeof(uint16_t));
    return p;
}
