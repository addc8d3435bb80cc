/* The network's lifetime: its memory, creation, and the hash tables'
 * rebuilds and redraws.
 *
 * Everything a network owns except its hash functions lives in one block
 * laid out by model_layout, and every buffer of a call in a block laid out
 * the same way (see arena in network.h): bolt_estimate_memory runs those
 * very layouts without allocating, so a budget check before fitting sees
 * the bytes the fit will ask for.
 *
 * Frozen tables stop being rebuilt; instead each batch inserts the labels
 * its samples' probes missed into the buckets those probes read, in sample
 * order per table, so they too do not depend on the thread count.
 */
#include "network.h"

#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* Neurons a table rebuild hashes at a time. Small enough that their keys
 * (REBUILD_CHUNK * L words) stay in cache from hashing to insertion and the
 * buffer is faulted in once, not once per chunk: at 65536 the fresh pages
 * of an up-to-67 MB buffer were zeroed on every rebuild and hashing ran
 * 1.7x faster on two threads instead of 2x. */
#define REBUILD_CHUNK 2048

/* ------------------------------------------------------------------------ */
/* blocks                                                                     */

/* 64: a cache line, so no two threads' scratch rows share one */
#define ARENA_ALIGN 64
/* far above any machine, far below int64 overflow when parts are summed */
#define ARENA_LIMIT ((int64_t)1 << 60)

void *arena_take(arena *a, int part, int64_t n, int64_t size)
{
    const int64_t pad = (ARENA_ALIGN - a->used % ARENA_ALIGN) % ARENA_ALIGN;
    const int64_t room = ARENA_LIMIT - a->used - pad;
    if (n < 0 || room < 0 || (n > 0 && n > room / size)) {
        a->overflow = 1;
        return NULL;
    }
    const int64_t bytes = n * size;
    char *p = NULL;
    if (a->base) {
        if (a->used + pad + bytes > a->cap) {
            a->overflow = 1;
            return NULL;
        }
        p = a->base + a->used + pad;
    }
    a->used += pad + bytes;
    a->part[part] += bytes;
    a->part[PART_BUFFERS] += pad;
    return p;
}

void *arena_zero(arena *a, int part, int64_t n, int64_t size)
{
    void *p = arena_take(a, part, n, size);
    if (p && !a->zeroed && n > 0)
        memset(p, 0, (size_t)(n * size));
    return p;
}

int64_t arena_bytes(const arena *a)
{
    return a->used + ARENA_ALIGN - 1; /* room to align malloc's pointer */
}

void arena_report(const arena *a, bolt_memory *m)
{
    if (a->overflow) { /* callers see the total and refuse it */
        m->total += ARENA_LIMIT;
        return;
    }
    m->weights += a->part[PART_WEIGHTS];
    m->optimizer += a->part[PART_OPTIMIZER];
    m->tables += a->part[PART_TABLES];
    m->buffers += a->part[PART_BUFFERS] + (arena_bytes(a) - a->used);
    m->total += arena_bytes(a);
}

int arena_build(layout_fn layout, void *bufs, const void *ctx, int zeroed,
                void **block, const char *what)
{
    arena count = {0};
    layout(&count, bufs, ctx);
    *block = NULL;
    if (count.overflow || (uint64_t)arena_bytes(&count) > (uint64_t)SIZE_MAX)
        return bolt_fail(BOLT_ENOMEM, "%s would need more memory than can be addressed", what);
    const size_t n = (size_t)arena_bytes(&count);
    char *raw = zeroed ? calloc(1, n) : malloc(n);
    if (!raw)
        return bolt_fail(BOLT_ENOMEM, "out of memory allocating %s (%.1f MB)", what,
                         (double)n / 1e6);
    arena carve = {0};
    carve.base = raw + (ARENA_ALIGN - (uintptr_t)raw % ARENA_ALIGN) % ARENA_ALIGN;
    carve.cap = count.used;
    carve.zeroed = zeroed;
    layout(&carve, bufs, ctx);
    if (carve.overflow || carve.used != count.used) {
        free(raw);
        return bolt_fail(BOLT_EINTERNAL, "internal error: the layout of %s changed between "
                         "sizing and carving", what);
    }
    *block = raw;
    return BOLT_OK;
}

/* ------------------------------------------------------------------------ */
/* sizes                                                                      */

int64_t max_width(const bolt_config *c)
{
    int64_t m = 1;
    for (int i = 0; i < c->n_hidden; i++)
        m = c->hidden_sizes[i] > m ? c->hidden_sizes[i] : m;
    return m;
}

int64_t sum_width(const bolt_config *c)
{
    int64_t s = 0;
    for (int i = 0; i < c->n_hidden; i++)
        s += c->hidden_sizes[i];
    /* a sparse hidden layer's inference scratch rides in the same
     * per-thread buffer (hidden_infer): its probe (hprobe_words), then the
     * active ids and their activations */
    s += hsparse_infer_words(c);
    return s;
}

/* Everything that follows from the config alone, before any allocation:
 * enough for the layouts to size a network that does not exist yet. */
static void net_shape(bolt_network *net, const bolt_config *cfg)
{
    memset(net, 0, sizeof *net);
    net->cfg = *cfg;
    net->n_layers = cfg->n_hidden + 1;
    net->width[0] = cfg->n_features;
    for (int i = 0; i < cfg->n_hidden; i++)
        net->width[i + 1] = cfg->hidden_sizes[i];
    net->width[net->n_layers] = cfg->n_outputs;
    hsparse_shape(net);
    net->sparse = cfg->active_size < cfg->n_outputs;
    if (!net->sparse)
        return;
    hash_shape(&net->hash, cfg->hash_family, cfg->hash_K, cfg->hash_L, cfg->range_pow,
               (int32_t)net->width[cfg->n_hidden]);
    net->tables.L = cfg->hash_L;
    net->tables.range_pow = cfg->range_pow;
    net->tables.R = cfg->reservoir;
    net->tables.seed = rng_at(cfg->seed, 0x5000u, 0);
}

/* The network's block: layers, seen flags, centre, fill order and tables. */
static void model_layout(arena *a, void *vnet, const void *unused)
{
    bolt_network *net = vnet;
    (void)unused;
    for (int i = 0; i < net->n_layers; i++) {
        const int64_t in = net->width[i], out = net->width[i + 1];
        if (i == 0) /* one row per input feature */
            layer_layout(&net->layer[i], a, in, out, out, net->hsparse ? net->hblock : 0);
        else
            layer_layout(&net->layer[i], a, out, in, out, 0);
    }
    net->seen = arena_zero(a, PART_BUFFERS, net->cfg.n_outputs, 1);
    if (net->hsparse)
        hsparse_layout(a, net);
    if (!net->sparse)
        return;
    net->center = arena_zero(a, PART_TABLES, net->width[net->cfg.n_hidden], sizeof(float));
    net->fill_order = arena_take(a, PART_TABLES, net->cfg.n_outputs, sizeof(int32_t));
    tables_layout(&net->tables, a);
}

typedef struct {
    uint32_t *keys;
    int32_t *codes;
    int32_t *ids; /* the neurons of a chunk that go into the tables */
} rebuild_bufs;

typedef struct {
    const bolt_network *net;
    int32_t nt;
} rebuild_dims;

static void rebuild_layout(arena *a, void *vbufs, const void *vdims)
{
    rebuild_bufs *b = vbufs;
    const rebuild_dims *d = vdims;
    const int64_t C = d->net->cfg.n_outputs;
    const int64_t chunk = C < REBUILD_CHUNK ? C : REBUILD_CHUNK;
    b->keys = arena_take(a, PART_BUFFERS, chunk * d->net->cfg.hash_L, sizeof(uint32_t));
    b->codes = arena_take(a, PART_BUFFERS, (int64_t)d->nt * d->net->hash.n_codes,
                          sizeof(int32_t));
    b->ids = arena_take(a, PART_BUFFERS, chunk, sizeof(int32_t));
}

/* The network's own memory and its hash functions' (no call buffers). */
static void model_memory(bolt_network *shaped, bolt_memory *m)
{
    arena a = {0};
    model_layout(&a, shaped, NULL);
    arena_report(&a, m);
    if (shaped->sparse) {
        arena h = {0};
        hash_layout(&h, &shaped->hash, NULL);
        arena_report(&h, m);
    }
    m->buffers += (int64_t)sizeof(bolt_network);
    m->total += (int64_t)sizeof(bolt_network);
}

int bolt_estimate_memory(const bolt_config *cfg, int32_t batch_size,
                         int32_t nnz_per_row, int32_t n_threads, bolt_memory *out)
{
    int rc = check_config(cfg);
    if (rc || (rc = check_given("out", (const void *[]){out}, 1)) ||
        (rc = check_threads(n_threads)))
        return rc;
    if (batch_size < 1 || nnz_per_row < 0)
        return bolt_fail(BOLT_EINVAL, "batch_size must be positive and nnz_per_row non-negative");
    bolt_network net;
    net_shape(&net, cfg);
    memset(out, 0, sizeof *out);
    model_memory(&net, out);
    /* the workspace and a table rebuild are both held during training;
     * rows are taken to have one label each */
    arena w = {0}, r = {0};
    train_layout(&w, &net, batch_size, 1, (int64_t)batch_size * nnz_per_row, n_threads);
    arena_report(&w, out);
    hsparse_rebuild_memory(&net, n_threads, out);
    if (net.sparse) {
        rebuild_bufs bufs;
        rebuild_dims dims = {&net, n_threads};
        rebuild_layout(&r, &bufs, &dims);
        arena_report(&r, out);
    }
    if (out->total >= ARENA_LIMIT)
        return bolt_fail(BOLT_ENOMEM, "this configuration needs more memory than can be "
                         "addressed");
    return BOLT_OK;
}

/* ------------------------------------------------------------------------ */
/* creation                                                                   */

void bolt_free(bolt_network *net)
{
    if (!net)
        return;
    train_release(net);
    hash_destroy(&net->hash);
    free(net->block);
    free(net);
}

/* A fixed random permutation of the outputs, walked to fill active sets. */
static void draw_fill_order(bolt_network *net)
{
    const int64_t C = net->cfg.n_outputs;
    for (int64_t i = 0; i < C; i++)
        net->fill_order[i] = (int32_t)i;
    rng_stream rs = {net->cfg.seed, 0x4000u, 0};
    for (int64_t i = C - 1; i > 0; i--) {
        int64_t r = (int64_t)rng_below(rng_next(&rs), (uint32_t)(i + 1));
        int32_t t = net->fill_order[i];
        net->fill_order[i] = net->fill_order[r];
        net->fill_order[r] = t;
    }
}

/* The fill order with the seen outputs first (in the permutation's order),
 * then the others by id (fill_span says where they start). A pure function
 * of the seed and the seen flags, so a restored model fills as the one it
 * was saved from. An output no training row carried is never a useful
 * negative: it scores -inf at inference. */
void order_fill(bolt_network *net)
{
    const int64_t C = net->cfg.n_outputs;
    if (!net->sparse)
        return;
    draw_fill_order(net);
    if (net->n_seen == 0 || net->n_seen == C)
        return;
    int64_t m = 0;
    for (int64_t i = 0; i < C; i++)
        if (net->seen[net->fill_order[i]])
            net->fill_order[m++] = net->fill_order[i];
    for (int64_t j = 0; j < C; j++)
        if (!net->seen[j])
            net->fill_order[m++] = (int32_t)j;
}

static int create_failed(bolt_network *net, int rc)
{
    if (rc == BOLT_ENOMEM) {
        bolt_memory m = {0};
        bolt_network shaped; /* the layouts would overwrite net's pointers */
        net_shape(&shaped, &net->cfg);
        model_memory(&shaped, &m);
        bolt_fail(BOLT_ENOMEM,
                  "out of memory allocating the network (%.1f MB of weights, "
                  "optimizer state and tables); use fewer classes, a smaller "
                  "hidden layer or a smaller hash table",
                  (double)m.total / 1e6);
    }
    bolt_free(net);
    return rc;
}

int bolt_create(const bolt_config *cfg, int32_t build, int32_t n_threads,
                bolt_network **out)
{
    int rc = check_config(cfg);
    if (rc || (rc = check_given("out", (const void *[]){out}, 1)) ||
        (rc = check_threads(n_threads)))
        return rc;
    *out = NULL;
    bolt_network *net = calloc(1, sizeof *net);
    if (!net)
        return bolt_fail(BOLT_ENOMEM, "out of memory creating the network");
    net_shape(net, cfg);
    if ((rc = arena_build(model_layout, net, NULL, 1, &net->block, "the network")))
        return create_failed(net, rc);
    for (int i = 0; i < net->n_layers; i++)
        layer_init(&net->layer[i], cfg->seed, i, net->width[i], net->width[i + 1], n_threads);
    if (net->hsparse) {
        hsparse_draw(net);
        if ((rc = hsparse_build(net, n_threads)))
            return create_failed(net, rc);
    }
    if (net->sparse) {
        order_fill(net);
        if ((rc = hash_create(&net->hash, cfg->seed, 0)) ||
            (build && (rc = build_tables(net, n_threads))))
            return create_failed(net, rc); /* unbuilt, the zeroed block is empty tables */
    }
    *out = net;
    return BOLT_OK;
}

/* ------------------------------------------------------------------------ */
/* tables                                                                     */

/* How far ahead a table build prefetches buckets (insertions). */
#define INSERT_AHEAD 16

int build_tables(bolt_network *net, int32_t n_threads)
{
    const int32_t L = net->cfg.hash_L;
    const int64_t C = net->cfg.n_outputs;
    const bolt_layer *out = &net->layer[net->n_layers - 1];
    const int64_t chunk = C < REBUILD_CHUNK ? C : REBUILD_CHUNK;
    /* once any output has been a label, only labels go in: the others are
     * never scored (see unseen), and at 1M classes of which 2% had rows
     * hashing them was the whole cost of a rebuild */
    const int only_seen = net->n_seen > 0;
    rebuild_bufs b;
    rebuild_dims dims = {net, n_threads};
    void *block;
    int rc = arena_build(rebuild_layout, &b, &dims, 0, &block, "a hash table rebuild");
    if (rc)
        return rc;
    tables_clear(&net->tables);
    /* hashing is parallel over neurons; insertion is parallel over tables
     * with neurons in id order, so the tables do not depend on thread count */
    for (int64_t j = 0; j < C;) {
        int64_t n = 0; /* the next chunk of neurons that go in, in id order */
        for (; j < C && n < chunk; j++)
            if (!only_seen || net->seen[j])
                b.ids[n++] = (int32_t)j;
#pragma omp parallel num_threads(n_threads)
        {
            int32_t *code = b.codes + (int64_t)THREAD_ID() * net->hash.n_codes;
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n; i++)
                hash_keys(&net->hash, out->w + (int64_t)b.ids[i] * out->cols, b.keys + i * L,
                          code);
            /* each insertion misses the cache on its bucket (rebuilds at
             * 1M outputs were half such stalls): the bucket INSERT_AHEAD
             * neurons on is loaded meanwhile. (Blocks of neurons sharing
             * cached keys across tables were slower: the strided keys
             * prefetch well, the tables then stop being one at a time.) */
#pragma omp for schedule(static)
            for (int32_t l = 0; l < L; l++)
                for (int64_t i = 0; i < n; i++) {
                    if (i + INSERT_AHEAD < n)
                        tables_prefetch_one(&net->tables, l, b.keys[(i + INSERT_AHEAD) * L + l]);
                    tables_insert(&net->tables, l, b.keys[i * L + l], b.ids[i]);
                }
        }
    }
    free(block);
    return BOLT_OK;
}

int redraw_hash(bolt_network *net, int64_t draw)
{
    /* drawn aside first, so that failing leaves the old functions working */
    bolt_hash fresh = net->hash;
    if (hash_create(&fresh, net->cfg.seed, (uint64_t)draw))
        return bolt_fail(BOLT_ENOMEM, "out of memory drawing new hash functions");
    hash_destroy(&net->hash);
    net->hash = fresh;
    return BOLT_OK;
}

int bolt_rebuild_tables(bolt_network *net, int32_t redraw, int32_t n_threads)
{
    int rc;
    if ((rc = check_given("network", (const void *[]){net}, 1)) ||
        (rc = check_threads(n_threads)))
        return rc;
    if (!net->sparse)
        return BOLT_OK;
    if (redraw) {
        if ((rc = redraw_hash(net, net->ctr.redraws + 1)))
            return rc;
        net->ctr.redraws++;
        net->ctr.since_redraw = 0;
    }
    net->ctr.since_rebuild = 0;
    return build_tables(net, n_threads);
}

int maintain_tables(bolt_network *net, int32_t n_threads)
{
    const bolt_config *c = &net->cfg;
    net->ctr.since_rebuild++;
    net->ctr.since_redraw++;
    /* the sparse hidden layer's own schedule, counted in Adam steps (saved
     * with the counters) and frozen with the output's tables */
    if (net->hsparse && !net->ctr.frozen && c->hidden_rebuild_interval > 0 &&
        net->ctr.step % c->hidden_rebuild_interval == 0) {
        const int rc = hsparse_build(net, n_threads);
        if (rc)
            return rc;
    }
    if (!net->sparse || net->ctr.frozen)
        return BOLT_OK;
    if (c->redraw_interval > 0 && net->ctr.since_redraw >= c->redraw_interval)
        return bolt_rebuild_tables(net, 1, n_threads);
    if (c->rebuild_interval > 0 && net->ctr.since_rebuild >= c->rebuild_interval)
        return bolt_rebuild_tables(net, 0, n_threads);
    return BOLT_OK;
}

void learn_missed_labels(bolt_network *net, const uint32_t *keys,
                         const int32_t *missed, const int32_t *n_missed,
                         int64_t stride, int64_t B, int32_t nt)
{
    const int32_t L = net->cfg.hash_L;
    (void)nt; /* without OpenMP */
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int32_t l = 0; l < L; l++)
        for (int64_t s = 0; s < B; s++)
            for (int32_t j = 0; j < n_missed[s]; j++)
                tables_insert(&net->tables, l, keys[s * L + l], missed[s * stride + j]);
}
