/* The network: a sparse-input layer, dense ReLU hidden layers and an output
 * layer whose active neurons are chosen per sample by LSH.
 *
 * A training batch runs in two phases. Phase 1, parallel over samples: the
 * forward pass, the loss over the active set and the backward pass, keeping
 * each sample's activations and deltas. Phase 2, parallel over weight rows:
 * every row a sample touched gathers its gradient from those samples, in
 * sample order, and takes its Adam step at once. No two threads ever write
 * the same memory, so there are no locks, no atomics, and the result is the
 * same whatever the thread count.
 */
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#if defined(_MSC_VER)
#define THREAD_LOCAL __declspec(thread)
#else
#define THREAD_LOCAL _Thread_local
#endif

#define MAX_THREADS 1024
#define REBUILD_CHUNK 4096

static THREAD_LOCAL char last_error[512];

const char *bolt_last_error(void) { return last_error; }

int bolt_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int bolt_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

struct bolt_network {
    bolt_config cfg;
    int32_t n_layers;                     /* n_hidden + 1 */
    int64_t width[BOLT_MAX_HIDDEN + 2];   /* features, hidden..., outputs */
    bolt_layer layer[BOLT_MAX_HIDDEN + 1];
    int sparse;                           /* output layer sampled by LSH */
    bolt_hash hash;
    bolt_tables tables;
    int32_t *fill_order;                  /* fixed random permutation of outputs */
    int64_t step, since_rebuild, since_redraw, redraws;
    int32_t frozen;
    /* seen[j] != 0 once output j has been a label of a training row. Outputs
     * never seen are scored -inf (probability 0) at inference once any has
     * been: sampled softmax leaves their logits where initialisation put
     * them while every trained logit drifts down, so they would outrank
     * the trained ones in exact scoring. */
    uint8_t *seen;
    int64_t n_seen;
};

/* ------------------------------------------------------------------------ */
/* validation                                                                */

int csr_check(const bolt_csr *m, const char *name, int64_t n_cols)
{
    if (!m)
        return bolt_fail(BOLT_EINVAL, "%s is missing", name);
    if ((m->indptr_type != BOLT_INT32 && m->indptr_type != BOLT_INT64) ||
        (m->indices_type != BOLT_INT32 && m->indices_type != BOLT_INT64) ||
        (m->data_type != BOLT_FLOAT32 && m->data_type != BOLT_FLOAT64))
        return bolt_fail(BOLT_EINVAL, "%s has an unsupported index or value type", name);
    if (m->n_rows < 0)
        return bolt_fail(BOLT_EINVAL, "%s has a negative number of rows", name);
    if (m->n_cols != n_cols)
        return bolt_fail(BOLT_EINVAL, "%s has %lld columns but the network expects %lld",
                         name, (long long)m->n_cols, (long long)n_cols);
    if (!m->indptr)
        return bolt_fail(BOLT_EINVAL, "%s has no indptr", name);
    if (csr_ptr(m, 0) != 0)
        return bolt_fail(BOLT_EINVAL, "%s indptr must start at 0", name);
    for (int64_t i = 0; i < m->n_rows; i++)
        if (csr_ptr(m, i + 1) < csr_ptr(m, i))
            return bolt_fail(BOLT_EINVAL, "%s indptr decreases at row %lld", name, (long long)i);
    const int64_t nnz = csr_ptr(m, m->n_rows);
    if (nnz > 0 && !m->indices)
        return bolt_fail(BOLT_EINVAL, "%s has no indices", name);
    for (int64_t p = 0; p < nnz; p++) {
        int64_t c = csr_col(m, p);
        if (c < 0 || c >= n_cols)
            return bolt_fail(BOLT_EINVAL, "%s has column index %lld outside [0, %lld)",
                             name, (long long)c, (long long)n_cols);
        if (!isfinite(csr_val(m, p)))
            return bolt_fail(BOLT_EINVAL, "%s contains NaN or infinity (or a value too large for float32)", name);
    }
    return BOLT_OK;
}

static int check_threads(int32_t n_threads)
{
    if (n_threads < 1 || n_threads > MAX_THREADS)
        return bolt_fail(BOLT_EINVAL, "n_threads must be in [1, %d], got %d", MAX_THREADS, n_threads);
    return BOLT_OK;
}

static int check_config(const bolt_config *c)
{
    if (!c)
        return bolt_fail(BOLT_EINVAL, "config is missing");
    if (c->n_features < 1 || c->n_outputs < 1)
        return bolt_fail(BOLT_EINVAL, "n_features and n_outputs must be positive (got %d and %d)",
                         c->n_features, c->n_outputs);
    if (c->n_hidden < 1 || c->n_hidden > BOLT_MAX_HIDDEN)
        return bolt_fail(BOLT_EINVAL, "the number of hidden layers must be in [1, %d], got %d",
                         BOLT_MAX_HIDDEN, c->n_hidden);
    for (int i = 0; i < c->n_hidden; i++)
        if (c->hidden_sizes[i] < 1)
            return bolt_fail(BOLT_EINVAL, "hidden layer %d has width %d; widths must be positive",
                             i, c->hidden_sizes[i]);
    if (c->loss != BOLT_LOSS_SOFTMAX && c->loss != BOLT_LOSS_SIGMOID)
        return bolt_fail(BOLT_EINVAL, "unknown loss %d", c->loss);
    if (c->active_size < 1)
        return bolt_fail(BOLT_EINVAL, "active_size must be positive, got %d", c->active_size);
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f && c->beta2 >= 0.0f && c->beta2 < 1.0f))
        return bolt_fail(BOLT_EINVAL, "Adam betas must be in [0, 1)");
    if (!(c->epsilon > 0.0f))
        return bolt_fail(BOLT_EINVAL, "Adam epsilon must be positive");
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return bolt_fail(BOLT_EINVAL, "dropout must be in [0, 1), got %g", (double)c->dropout);
    if (c->active_size >= c->n_outputs)
        return BOLT_OK; /* dense output: no hashing parameters are used */
    if (c->hash_family != BOLT_HASH_DWTA && c->hash_family != BOLT_HASH_SRP)
        return bolt_fail(BOLT_EINVAL, "unknown hash family %d", c->hash_family);
    if (c->hash_K < 1 || c->hash_K > 20)
        return bolt_fail(BOLT_EINVAL, "hash K must be in [1, 20], got %d", c->hash_K);
    if (c->hash_L < 1 || c->hash_L > 4096)
        return bolt_fail(BOLT_EINVAL, "hash L must be in [1, 4096], got %d", c->hash_L);
    if (c->range_pow < 1 || c->range_pow > 30)
        return bolt_fail(BOLT_EINVAL, "range_pow must be in [1, 30], got %d", c->range_pow);
    if (c->reservoir < 1)
        return bolt_fail(BOLT_EINVAL, "reservoir size must be positive, got %d", c->reservoir);
    if (c->rebuild_interval < 0 || c->redraw_interval < 0)
        return bolt_fail(BOLT_EINVAL, "rebuild and redraw intervals must be >= 0");
    return BOLT_OK;
}

/* ------------------------------------------------------------------------ */
/* memory                                                                     */

static int64_t max_width(const bolt_config *c)
{
    int64_t m = 1;
    for (int i = 0; i < c->n_hidden; i++)
        m = c->hidden_sizes[i] > m ? c->hidden_sizes[i] : m;
    return m;
}

static int64_t sum_width(const bolt_config *c)
{
    int64_t s = 0;
    for (int i = 0; i < c->n_hidden; i++)
        s += c->hidden_sizes[i];
    return s;
}

static int64_t model_bytes(const bolt_config *c)
{
    int64_t params = 0, in = c->n_features;
    /* the input layer's bias has the width of the first hidden layer, as
     * every other layer's bias has the width of its output */
    for (int i = 0; i <= c->n_hidden; i++) {
        int64_t out = i < c->n_hidden ? c->hidden_sizes[i] : c->n_outputs;
        params += in * out + out;
        in = out;
    }
    int64_t bytes = params * 3 * (int64_t)sizeof(float); /* w, m, v */
    bytes += c->n_outputs; /* which outputs have been labels */
    if (c->active_size < c->n_outputs) {
        int64_t buckets = (int64_t)c->hash_L << c->range_pow;
        bytes += buckets * (c->reservoir + 1) * 4;
        bytes += (int64_t)c->n_outputs * 4;
        int64_t take = c->hash_family == BOLT_HASH_DWTA ? DWTA_BIN : (max_width(c) + 2) / 3;
        bytes += (int64_t)c->hash_K * c->hash_L * take * 5;
    }
    return bytes;
}

/* Bytes of one training call's buffers; kmax is the per-sample active size
 * (labels included) and max_nnz the largest number of input nonzeros in
 * one batch. */
static int64_t train_bytes(const bolt_config *c, int64_t B, int64_t kmax,
                           int64_t max_nnz, int64_t nt)
{
    const int64_t C = c->n_outputs;
    const int sparse = c->active_size < C;
    int64_t b = B * sum_width(c) * 2 * 4;                 /* act, delta */
    b += sparse ? B * kmax * 8 : B * C * 4;               /* ids + values */
    b += B * (8 + 4 + 8);                                 /* begin, n, loss */
    if (sparse)
        b += B * c->hash_L * 4 + B * kmax * 4;            /* keys, missed */
    b += nt * (C * 4 + 3 * max_width(c) * 4 + (int64_t)c->hash_K * c->hash_L * 4);
    b += max_nnz * 8 + B * 12;                            /* input entries */
    int64_t rows = c->n_features > C ? c->n_features : C;
    int64_t ents = sparse ? B * kmax : 0;
    ents = ents > max_nnz ? ents : max_nnz;
    b += rows * 4 + ents * (4 + 8 + 4 + 4);              /* row index */
    b += nt * max_width(c) * 4;                           /* gradient rows */
    return b;
}

int bolt_estimate_memory(const bolt_config *cfg, int32_t batch_size,
                         int32_t nnz_per_row, int32_t n_threads, int64_t *bytes)
{
    int rc = check_config(cfg);
    if (rc)
        return rc;
    if ((rc = check_threads(n_threads)))
        return rc;
    if (batch_size < 1 || nnz_per_row < 0 || !bytes)
        return bolt_fail(BOLT_EINVAL, "batch_size must be positive and nnz_per_row non-negative");
    int64_t k = cfg->active_size < cfg->n_outputs ? cfg->active_size : cfg->n_outputs;
    *bytes = model_bytes(cfg) +
             train_bytes(cfg, batch_size, k, (int64_t)batch_size * nnz_per_row, n_threads);
    return BOLT_OK;
}

/* ------------------------------------------------------------------------ */
/* creation                                                                   */

static int build_tables(bolt_network *net, int32_t n_threads);

void bolt_free(bolt_network *net)
{
    if (!net)
        return;
    for (int i = 0; i < net->n_layers; i++)
        layer_free(&net->layer[i]);
    hash_destroy(&net->hash);
    tables_destroy(&net->tables);
    free(net->fill_order);
    free(net->seen);
    free(net);
}

int bolt_create(const bolt_config *cfg, bolt_network **out)
{
    int rc = check_config(cfg);
    if (rc)
        return rc;
    if (!out)
        return bolt_fail(BOLT_EINVAL, "no place to return the network");
    *out = NULL;
    bolt_network *net = calloc(1, sizeof *net);
    if (!net)
        return bolt_fail(BOLT_ENOMEM, "out of memory creating the network");
    net->cfg = *cfg;
    net->n_layers = cfg->n_hidden + 1;
    net->width[0] = cfg->n_features;
    for (int i = 0; i < cfg->n_hidden; i++)
        net->width[i + 1] = cfg->hidden_sizes[i];
    net->width[net->n_layers] = cfg->n_outputs;
    net->sparse = cfg->active_size < cfg->n_outputs;
    net->seen = calloc((size_t)cfg->n_outputs, 1);
    if (!net->seen)
        goto oom;

    for (int i = 0; i < net->n_layers; i++) {
        const int64_t in = net->width[i], outw = net->width[i + 1];
        rc = i == 0 ? layer_alloc(&net->layer[i], in, outw, outw)
                    : layer_alloc(&net->layer[i], outw, in, outw);
        if (rc)
            goto oom;
        layer_init(&net->layer[i], cfg->seed, i, in, outw);
    }
    if (net->sparse) {
        const int64_t C = cfg->n_outputs;
        const int32_t H = (int32_t)net->width[cfg->n_hidden];
        net->fill_order = malloc((size_t)C * sizeof(int32_t));
        if (!net->fill_order)
            goto oom;
        for (int64_t i = 0; i < C; i++)
            net->fill_order[i] = (int32_t)i;
        rng_stream rs = {cfg->seed, 0x4000u, 0};
        for (int64_t i = C - 1; i > 0; i--) {
            int64_t r = (int64_t)rng_below(rng_next(&rs), (uint32_t)(i + 1));
            int32_t t = net->fill_order[i];
            net->fill_order[i] = net->fill_order[r];
            net->fill_order[r] = t;
        }
        if (hash_create(&net->hash, cfg->hash_family, cfg->hash_K, cfg->hash_L,
                        cfg->range_pow, H, cfg->seed, 0) ||
            tables_create(&net->tables, cfg->hash_L, cfg->range_pow, cfg->reservoir,
                          rng_at(cfg->seed, 0x5000u, 0)))
            goto oom;
        if ((rc = build_tables(net, 1))) {
            bolt_free(net);
            return rc;
        }
    }
    *out = net;
    return BOLT_OK;
oom:
    bolt_free(net);
    return bolt_fail(BOLT_ENOMEM,
                     "out of memory allocating the network (%.1f MB of weights, "
                     "optimizer state and tables); use fewer classes, a smaller "
                     "hidden layer or a smaller hash table",
                     (double)model_bytes(cfg) / 1e6);
}

/* ------------------------------------------------------------------------ */
/* tables                                                                     */

static int build_tables(bolt_network *net, int32_t n_threads)
{
    const int32_t L = net->cfg.hash_L;
    const int64_t C = net->cfg.n_outputs;
    const bolt_layer *out = &net->layer[net->n_layers - 1];
    const int64_t chunk = C < REBUILD_CHUNK ? C : REBUILD_CHUNK;
    uint32_t *keys = malloc((size_t)(chunk * L) * sizeof(uint32_t));
    int32_t *codes = malloc((size_t)n_threads * (size_t)net->hash.n_codes * sizeof(int32_t));
    if (!keys || !codes) {
        free(keys);
        free(codes);
        return bolt_fail(BOLT_ENOMEM, "out of memory rebuilding the hash tables");
    }
    tables_clear(&net->tables);
    /* hashing is parallel over neurons; insertion is parallel over tables
     * with neurons in id order, so the tables do not depend on thread count */
    for (int64_t c0 = 0; c0 < C; c0 += chunk) {
        const int64_t n = C - c0 < chunk ? C - c0 : chunk;
#pragma omp parallel num_threads(n_threads)
        {
            int32_t *code = codes + (int64_t)THREAD_ID() * net->hash.n_codes;
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n; i++)
                hash_keys(&net->hash, out->w + (c0 + i) * out->cols, keys + i * L, code);
#pragma omp for schedule(static)
            for (int32_t l = 0; l < L; l++)
                for (int64_t i = 0; i < n; i++)
                    tables_insert(&net->tables, l, keys[i * L + l], (int32_t)(c0 + i));
        }
    }
    free(keys);
    free(codes);
    return BOLT_OK;
}

static int redraw_hash(bolt_network *net, int64_t draw)
{
    bolt_hash fresh;
    const bolt_config *c = &net->cfg;
    if (hash_create(&fresh, c->hash_family, c->hash_K, c->hash_L, c->range_pow,
                    (int32_t)net->width[c->n_hidden], c->seed, (uint64_t)draw))
        return bolt_fail(BOLT_ENOMEM, "out of memory drawing new hash functions");
    hash_destroy(&net->hash);
    net->hash = fresh;
    return BOLT_OK;
}

int bolt_rebuild_tables(bolt_network *net, int32_t redraw, int32_t n_threads)
{
    int rc;
    if (!net)
        return bolt_fail(BOLT_EINVAL, "network is missing");
    if ((rc = check_threads(n_threads)))
        return rc;
    if (!net->sparse)
        return BOLT_OK;
    if (redraw) {
        if ((rc = redraw_hash(net, net->redraws + 1)))
            return rc;
        net->redraws++;
        net->since_redraw = 0;
    }
    net->since_rebuild = 0;
    return build_tables(net, n_threads);
}

/* ------------------------------------------------------------------------ */
/* per-thread marks: "seen in this sample" without clearing an n_outputs     */
/* array per sample                                                          */

/* Reserves `width` fresh stamp values for one sample and returns the first,
 * base. Stamps only grow between clears, so mark[id] >= base means "taken
 * by this sample"; the values above base can carry a small count. */
static uint32_t next_stamp(uint32_t *mark, int64_t n, uint32_t *stamp,
                           uint32_t width)
{
    if (*stamp >= UINT32_MAX - width) {
        memset(mark, 0, (size_t)n * sizeof(uint32_t));
        *stamp = 0;
    }
    const uint32_t base = *stamp + 1;
    *stamp += width;
    return base;
}

/* Deterministic fill: walk the fixed permutation from an offset the hash
 * keys choose, skipping ids this sample already took (mark >= base), until
 * n reaches k; filled ids are marked `value`. */
static int32_t fill_active(const bolt_network *net, const uint32_t *keys,
                           uint32_t *mark, uint32_t base, uint32_t value,
                           int32_t *ids, int32_t n, int32_t k)
{
    const int64_t C = net->cfg.n_outputs;
    uint64_t h = rng_mix(((uint64_t)keys[0] << 32) ^ keys[net->cfg.hash_L - 1]);
    int64_t pos = (int64_t)(h % (uint64_t)C);
    while (n < k) {
        int32_t id = net->fill_order[pos];
        if (mark[id] < base) {
            mark[id] = value;
            ids[n++] = id;
        }
        pos = pos + 1 == C ? 0 : pos + 1;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* the loss over the active set                                               */

/* z holds logits of n neurons; label_pos the positions in z of the sample's
 * nl labels. Returns the sample's loss and leaves scale * dloss/dz in z. */
static double loss_grad(float *z, int64_t n, const int32_t *label_pos,
                        int32_t nl, int loss, float scale)
{
    double total = 0.0;
    if (loss == BOLT_LOSS_SOFTMAX) {
        if (nl == 0) {
            memset(z, 0, (size_t)n * sizeof(float));
            return 0.0;
        }
        float m = z[0];
        for (int64_t j = 1; j < n; j++)
            m = z[j] > m ? z[j] : m;
        double sum = 0.0;
        for (int64_t j = 0; j < n; j++)
            sum += exp((double)(z[j] - m));
        const double lse = (double)m + log(sum);
        const float t = 1.0f / (float)nl;
        for (int32_t j = 0; j < nl; j++)
            total -= (double)t * ((double)z[label_pos[j]] - lse);
        for (int64_t j = 0; j < n; j++)
            z[j] = (float)exp((double)z[j] - lse) * scale;
        for (int32_t j = 0; j < nl; j++)
            z[label_pos[j]] -= t * scale;
    } else {
        /* binary cross-entropy: softplus(z) - t * z, summed */
        for (int32_t j = 0; j < nl; j++)
            total -= (double)z[label_pos[j]];
        for (int64_t j = 0; j < n; j++) {
            double x = z[j];
            total += fmax(x, 0.0) + log1p(exp(-fabs(x)));
            z[j] = (float)(1.0 / (1.0 + exp(-x))) * scale;
        }
        for (int32_t j = 0; j < nl; j++)
            z[label_pos[j]] -= scale;
    }
    return total;
}

/* ------------------------------------------------------------------------ */
/* training                                                                   */

typedef struct {
    int64_t B, kmax, max_lab, max_nnz;
    int32_t nt;
    float *act[BOLT_MAX_HIDDEN];   /* B x width: ReLU outputs */
    float *delta[BOLT_MAX_HIDDEN]; /* B x width: dloss / dpre-activation */
    int32_t *out_ids;              /* B x kmax (sparse output) */
    float *out_val;                /* B x kmax, or B x C when dense */
    int64_t *out_begin;
    int32_t *out_n;
    double *loss;
    uint32_t *keys;                /* B x L */
    int32_t *missed;               /* B x max_lab labels the tables missed */
    int32_t *n_missed;
    uint32_t *mark;                /* nt x C */
    uint32_t *stamp;               /* nt */
    float *scratch;                /* nt x 3 x max width */
    int32_t *codes;                /* nt x n_codes */
    int32_t *label_pos;            /* nt x max_lab */
    int64_t *in_begin;
    int32_t *in_count, *in_rows;
    float *in_vals;
    row_index ix;
} workspace;

static void ws_free(workspace *ws)
{
    for (int i = 0; i < BOLT_MAX_HIDDEN; i++) {
        free(ws->act[i]);
        free(ws->delta[i]);
    }
    free(ws->out_ids);
    free(ws->out_val);
    free(ws->out_begin);
    free(ws->out_n);
    free(ws->loss);
    free(ws->keys);
    free(ws->missed);
    free(ws->n_missed);
    free(ws->mark);
    free(ws->stamp);
    free(ws->scratch);
    free(ws->codes);
    free(ws->label_pos);
    free(ws->in_begin);
    free(ws->in_count);
    free(ws->in_rows);
    free(ws->in_vals);
    rowindex_free(&ws->ix);
    memset(ws, 0, sizeof *ws);
}

static int ws_alloc(workspace *ws, const bolt_network *net, int64_t B,
                    int64_t max_lab, int64_t max_nnz, int32_t nt)
{
    const bolt_config *c = &net->cfg;
    const int64_t C = c->n_outputs, mw = max_width(c), L = c->hash_L;
    memset(ws, 0, sizeof *ws);
    ws->B = B;
    ws->nt = nt;
    ws->max_lab = max_lab;
    ws->max_nnz = max_nnz;
    int64_t k = c->active_size > max_lab ? c->active_size : max_lab;
    ws->kmax = net->sparse ? (k < C ? k : C) : C;
    int ok = 1;
    for (int i = 0; i < c->n_hidden; i++) {
        ws->act[i] = malloc((size_t)(B * net->width[i + 1]) * sizeof(float));
        ws->delta[i] = malloc((size_t)(B * net->width[i + 1]) * sizeof(float));
        ok = ok && ws->act[i] && ws->delta[i];
    }
    ws->out_val = malloc((size_t)(B * ws->kmax) * sizeof(float));
    ws->out_begin = malloc((size_t)B * sizeof(int64_t));
    ws->out_n = malloc((size_t)B * sizeof(int32_t));
    ws->loss = malloc((size_t)B * sizeof(double));
    ws->stamp = calloc((size_t)nt, sizeof(uint32_t));
    ws->scratch = malloc((size_t)(nt * 3 * mw) * sizeof(float));
    ws->label_pos = malloc((size_t)(nt * (max_lab > 0 ? max_lab : 1)) * sizeof(int32_t));
    ws->in_begin = malloc((size_t)B * sizeof(int64_t));
    ws->in_count = malloc((size_t)B * sizeof(int32_t));
    ws->in_rows = malloc((size_t)(max_nnz > 0 ? max_nnz : 1) * sizeof(int32_t));
    ws->in_vals = malloc((size_t)(max_nnz > 0 ? max_nnz : 1) * sizeof(float));
    ok = ok && ws->out_val && ws->out_begin && ws->out_n && ws->loss && ws->stamp &&
         ws->scratch && ws->label_pos && ws->in_begin && ws->in_count && ws->in_rows &&
         ws->in_vals;
    if (net->sparse) {
        ws->out_ids = malloc((size_t)(B * ws->kmax) * sizeof(int32_t));
        ws->keys = malloc((size_t)(B * L) * sizeof(uint32_t));
        ws->missed = malloc((size_t)(B * (max_lab > 0 ? max_lab : 1)) * sizeof(int32_t));
        ws->n_missed = malloc((size_t)B * sizeof(int32_t));
        ws->mark = calloc((size_t)(nt * C), sizeof(uint32_t));
        ws->codes = malloc((size_t)nt * (size_t)net->hash.n_codes * sizeof(int32_t));
        ok = ok && ws->out_ids && ws->keys && ws->missed && ws->n_missed && ws->mark &&
             ws->codes;
    }
    const int64_t rows = c->n_features > C ? c->n_features : C;
    int64_t ents = net->sparse ? B * ws->kmax : 0;
    ents = ents > max_nnz ? ents : max_nnz;
    if (ok && rowindex_alloc(&ws->ix, rows, ents > 0 ? ents : 1))
        ok = 0;
    if (!ok) {
        ws_free(ws);
        return bolt_fail(BOLT_ENOMEM,
                         "out of memory for the training buffers (about %.1f MB for a "
                         "batch of %lld); use a smaller batch_size",
                         (double)train_bytes(c, B, ws->kmax, max_nnz, nt) / 1e6,
                         (long long)B);
    }
    return BOLT_OK;
}

/* Chooses the active output neurons of a training sample: its distinct
 * labels first (*n_labels of them), then what its hash buckets hold, then
 * the deterministic fill. Returns how many, and records in `missed` the
 * labels no bucket held. */
static int32_t choose_active(const bolt_network *net, workspace *ws, int64_t s,
                             int tid, const int32_t *labels, int32_t nl,
                             int32_t *ids, int32_t *n_labels)
{
    const int64_t C = net->cfg.n_outputs;
    const int32_t L = net->cfg.hash_L;
    uint32_t *mark = ws->mark + (int64_t)tid * C;
    const uint32_t lab = next_stamp(mark, C, &ws->stamp[tid], 2), seen = lab + 1;
    int32_t n = 0;
    for (int32_t j = 0; j < nl; j++) {
        if (mark[labels[j]] != lab) {
            mark[labels[j]] = lab;
            ids[n++] = labels[j];
        }
    }
    const int32_t n_lab = n;
    *n_labels = n_lab;
    const int32_t k = (int32_t)(net->cfg.active_size > n_lab ? net->cfg.active_size : n_lab);
    const uint32_t *keys = ws->keys + s * L;
    /* start at a table the sample picks, so truncation to k does not always
     * favour the same tables */
    const int32_t first = (int32_t)(keys[0] % (uint32_t)L);
    for (int32_t t = 0; t < L; t++) {
        const int32_t l = first + t < L ? first + t : first + t - L;
        const int32_t *bucket;
        const int32_t cnt = tables_get(&net->tables, l, keys[l], &bucket);
        for (int32_t j = 0; j < cnt; j++) {
            const int32_t id = bucket[j];
            if (mark[id] == lab) {
                mark[id] = seen; /* a label the tables found */
            } else if (mark[id] != seen && n < k) {
                mark[id] = seen;
                ids[n++] = id;
            }
        }
        /* frozen tables must look at every bucket to learn which labels
         * were missed; otherwise a full active set ends the search */
        if (n >= k && !net->frozen)
            break;
    }
    int32_t nm = 0;
    if (net->frozen) {
        for (int32_t j = 0; j < n_lab; j++)
            if (mark[ids[j]] == lab)
                ws->missed[s * ws->max_lab + nm++] = ids[j];
    }
    ws->n_missed[s] = nm;
    return fill_active(net, keys, mark, lab, seen, ids, n, k);
}

/* Inverted dropout on a training sample's hidden layer: a unit survives
 * with probability 1 - p and is scaled by 1 / (1 - p). The mask is a pure
 * function of (seed, step, layer, row), so it does not depend on which
 * thread runs the sample. */
static void dropout(const bolt_network *net, float *a, int64_t n, int layer,
                    int64_t row)
{
    const float p = net->cfg.dropout;
    if (p <= 0.0f)
        return;
    const uint32_t cut = (uint32_t)(p * 256.0f);
    const float keep = 1.0f / (1.0f - p);
    const uint64_t base = rng_at(net->cfg.seed, 0x6000u + (uint64_t)layer, (uint64_t)net->step);
    uint64_t r = 0;
    for (int64_t j = 0; j < n; j++) {
        if ((j & 7) == 0)
            r = rng_at(base, (uint64_t)row, (uint64_t)j >> 3);
        a[j] = (uint32_t)((r >> (8 * (j & 7))) & 0xFFu) < cut ? 0.0f : a[j] * keep;
    }
}

/* Phase 1 for one sample: forward, loss over the active set, backward. */
static void sample_pass(const bolt_network *net, workspace *ws,
                        const bolt_csr *X, const bolt_csr *Y, int64_t row,
                        int64_t s, float scale)
{
    const bolt_config *c = &net->cfg;
    const int tid = THREAD_ID();
    const int nh = c->n_hidden;
    const int64_t C = c->n_outputs, H = net->width[nh];
    const bolt_layer *out = &net->layer[nh];

    float *a = ws->act[0] + s * net->width[1];
    layer_input_forward(&net->layer[0], X, row, a);
    relu(a, net->width[1]);
    dropout(net, a, net->width[1], 0, row);
    for (int i = 1; i < nh; i++) {
        float *o = ws->act[i] + s * net->width[i + 1];
        layer_dense_forward(&net->layer[i], a, o);
        relu(o, net->width[i + 1]);
        dropout(net, o, net->width[i + 1], i, row);
        a = o;
    }
    const float *h = a;

    /* labels of the row, as column ids (validated to be in range) */
    const int64_t y0 = csr_ptr(Y, row), y1 = csr_ptr(Y, row + 1);
    int32_t *lp = ws->label_pos + (int64_t)tid * (ws->max_lab > 0 ? ws->max_lab : 1);
    int32_t nl = 0;
    for (int64_t p = y0; p < y1; p++)
        lp[nl++] = (int32_t)csr_col(Y, p);

    float *z;
    int32_t n;
    if (net->sparse) {
        int32_t *ids = ws->out_ids + s * ws->kmax;
        z = ws->out_val + s * ws->kmax;
        hash_keys(&net->hash, h, ws->keys + s * c->hash_L, ws->codes + (int64_t)tid * net->hash.n_codes);
        tables_prefetch(&net->tables, ws->keys + s * c->hash_L);
        int32_t nd;
        n = choose_active(net, ws, s, tid, lp, nl, ids, &nd);
        for (int32_t j = 0; j < n; j++) {
            if (j + PREFETCH_ROWS < n)
                prefetch_floats(out->w + (int64_t)ids[j + PREFETCH_ROWS] * H, H);
            z[j] = simd_dot(out->w + (int64_t)ids[j] * H, h, H) + out->b[ids[j]];
        }
        for (int32_t j = 0; j < nd; j++)
            lp[j] = j;
        ws->loss[s] = loss_grad(z, n, lp, nd, c->loss, scale);
        ws->out_begin[s] = s * ws->kmax;
        ws->out_n[s] = n;
    } else {
        z = ws->out_val + s * C;
        layer_dense_forward(out, h, z);
        /* duplicate labels in a row count once */
        int32_t nd = 0;
        for (int32_t j = 0; j < nl; j++) {
            int dup = 0;
            for (int32_t q = 0; q < nd; q++)
                dup |= lp[q] == lp[j];
            if (!dup)
                lp[nd++] = lp[j];
        }
        ws->loss[s] = loss_grad(z, C, lp, nd, c->loss, scale);
        n = (int32_t)C;
    }

    /* backward: da = sum of g_j * w_j over the active rows, then through
     * the ReLU layers */
    float *da = ws->scratch + (int64_t)tid * 3 * max_width(c);
    float *db = da + max_width(c);
    memset(da, 0, (size_t)H * sizeof(float));
    if (net->sparse) {
        const int32_t *ids = ws->out_ids + s * ws->kmax;
        for (int32_t j = 0; j < n; j++) {
            if (j + PREFETCH_ROWS < n)
                prefetch_floats(out->w + (int64_t)ids[j + PREFETCH_ROWS] * H, H);
            simd_axpy(z[j], out->w + (int64_t)ids[j] * H, da, H);
        }
    } else {
        for (int64_t j = 0; j < C; j++)
            if (z[j] != 0.0f)
                simd_axpy(z[j], out->w + j * H, da, H);
    }
    /* a surviving unit's activation was scaled by 1 / (1 - p); so is its
     * derivative */
    const float keep = 1.0f / (1.0f - c->dropout);
    for (int i = nh - 1; i >= 0; i--) {
        const int64_t w = net->width[i + 1];
        const float *act = ws->act[i] + s * w;
        float *dz = ws->delta[i] + s * w;
        for (int64_t j = 0; j < w; j++)
            dz[j] = act[j] > 0.0f ? da[j] * keep : 0.0f;
        if (i > 0) {
            const bolt_layer *l = &net->layer[i];
            memset(db, 0, (size_t)l->cols * sizeof(float));
            for (int64_t r = 0; r < l->rows; r++)
                if (dz[r] != 0.0f)
                    simd_axpy(dz[r], l->w + r * l->cols, db, l->cols);
            float *t = da;
            da = db;
            db = t;
        }
    }
}

/* Phase 2 for one layer: gather each touched row's gradient and hand it to
 * the sink. */
static int layer_update(bolt_network *net, workspace *ws, const bolt_csr *X,
                        const int64_t *rows, int64_t B, int li,
                        const row_sink *sink, int32_t nt)
{
    const int nh = net->cfg.n_hidden;
    if (li == nh) {
        if (!net->sparse)
            return update_all_rows(B, ws->out_val, ws->act[nh - 1], sink, nt);
        rowindex_build(&ws->ix, B, ws->out_begin, ws->out_n, ws->out_ids, ws->out_val);
        return update_indexed_rows(&ws->ix, ws->act[nh - 1], net->width[nh], sink, nt);
    }
    if (li > 0)
        return update_all_rows(B, ws->delta[li], ws->act[li - 1], sink, nt);

    int64_t e = 0;
    for (int64_t s = 0; s < B; s++) {
        const int64_t p0 = csr_ptr(X, rows[s]), p1 = csr_ptr(X, rows[s] + 1);
        ws->in_begin[s] = e;
        ws->in_count[s] = (int32_t)(p1 - p0);
        for (int64_t p = p0; p < p1; p++, e++) {
            ws->in_rows[e] = (int32_t)csr_col(X, p);
            ws->in_vals[e] = csr_val(X, p);
        }
    }
    rowindex_build(&ws->ix, B, ws->in_begin, ws->in_count, ws->in_rows, ws->in_vals);
    int rc = update_indexed_rows(&ws->ix, ws->delta[0], net->width[1], sink, nt);
    if (rc)
        return rc;
    float *gb = ws->scratch; /* phase 1 is over: thread 0's scratch is free */
    const int64_t w = net->width[1];
    memset(gb, 0, (size_t)w * sizeof(float));
    for (int64_t s = 0; s < B; s++)
        simd_axpy(1.0f, ws->delta[0] + s * w, gb, w);
    sink_bias(sink, gb);
    return BOLT_OK;
}

static void learn_missed_labels(bolt_network *net, workspace *ws, int64_t B,
                                int32_t nt)
{
    const int32_t L = net->cfg.hash_L;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int32_t l = 0; l < L; l++)
        for (int64_t s = 0; s < B; s++)
            for (int32_t j = 0; j < ws->n_missed[s]; j++)
                tables_insert(&net->tables, l, ws->keys[s * L + l],
                              ws->missed[s * ws->max_lab + j]);
}

static void run_phase1(bolt_network *net, workspace *ws, const bolt_csr *X,
                       const bolt_csr *Y, const int64_t *rows, int64_t B,
                       int32_t nt, double *loss_sum)
{
    const float scale = 1.0f / (float)B;
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
    for (int64_t s = 0; s < B; s++)
        sample_pass(net, ws, X, Y, rows[s], s, scale);
    double total = 0.0;
    for (int64_t s = 0; s < B; s++)
        total += ws->loss[s];
    *loss_sum += total;
}

/* Validates a training call's inputs; on success gives the largest label
 * count of a row and the largest input nonzeros of a batch. */
static int check_training_inputs(const bolt_network *net, const bolt_csr *X,
                                 const bolt_csr *Y, const int64_t *rows,
                                 int64_t n_rows, int64_t batch,
                                 int32_t n_threads, int64_t *max_lab,
                                 int64_t *max_nnz)
{
    int rc;
    if (!net)
        return bolt_fail(BOLT_EINVAL, "network is missing");
    if ((rc = check_threads(n_threads)))
        return rc;
    if ((rc = csr_check(X, "X", net->cfg.n_features)))
        return rc;
    if ((rc = csr_check(Y, "Y (labels)", net->cfg.n_outputs)))
        return rc;
    if (Y->n_rows != X->n_rows)
        return bolt_fail(BOLT_EINVAL, "X has %lld rows but the labels have %lld",
                         (long long)X->n_rows, (long long)Y->n_rows);
    if (n_rows < 1 || !rows)
        return bolt_fail(BOLT_EINVAL, "no rows to train on");
    if (batch < 1)
        return bolt_fail(BOLT_EINVAL, "batch_size must be positive, got %lld", (long long)batch);
    *max_lab = 0;
    *max_nnz = 0;
    for (int64_t b0 = 0; b0 < n_rows; b0 += batch) {
        int64_t nnz = 0;
        for (int64_t s = b0; s < n_rows && s < b0 + batch; s++) {
            const int64_t r = rows[s];
            if (r < 0 || r >= X->n_rows)
                return bolt_fail(BOLT_EINVAL, "row %lld is outside [0, %lld)",
                                 (long long)r, (long long)X->n_rows);
            const int64_t nlab = csr_ptr(Y, r + 1) - csr_ptr(Y, r);
            *max_lab = nlab > *max_lab ? nlab : *max_lab;
            nnz += csr_ptr(X, r + 1) - csr_ptr(X, r);
        }
        *max_nnz = nnz > *max_nnz ? nnz : *max_nnz;
    }
    if (*max_lab > INT32_MAX / 2 || *max_nnz > INT32_MAX)
        return bolt_fail(BOLT_EINVAL, "a batch has too many labels or nonzeros; use a smaller batch_size");
    return BOLT_OK;
}

static void mark_seen(bolt_network *net, const bolt_csr *Y, const int64_t *rows,
                      int64_t n_rows)
{
    for (int64_t s = 0; s < n_rows; s++)
        for (int64_t p = csr_ptr(Y, rows[s]); p < csr_ptr(Y, rows[s] + 1); p++) {
            const int64_t j = csr_col(Y, p);
            net->n_seen += !net->seen[j];
            net->seen[j] = 1;
        }
}

/* Whether inference scores output j as -inf (see struct bolt_network). */
static int unseen(const bolt_network *net, int64_t j)
{
    return net->n_seen > 0 && !net->seen[j];
}

static void make_sink(bolt_network *net, int li, const bolt_adam *adam,
                      float *gw, float *gb, row_sink *sink)
{
    sink->layer = &net->layer[li];
    sink->adam = adam;
    sink->grad_w = gw;
    sink->grad_b = gb;
    sink->row_bias = li > 0;
}

int bolt_train(bolt_network *net, const bolt_csr *X, const bolt_csr *Y,
               const int64_t *rows, int64_t n_rows, int32_t batch_size,
               float learning_rate, int32_t n_threads, double *loss_sum)
{
    int64_t max_lab, max_nnz;
    int rc = check_training_inputs(net, X, Y, rows, n_rows, batch_size, n_threads,
                                   &max_lab, &max_nnz);
    if (rc)
        return rc;
    if (!(learning_rate > 0.0f) || !isfinite(learning_rate))
        return bolt_fail(BOLT_EINVAL, "learning_rate must be a positive finite number");
    if (!loss_sum)
        return bolt_fail(BOLT_EINVAL, "no place to return the loss");
    *loss_sum = 0.0;
    mark_seen(net, Y, rows, n_rows);
    const int64_t B = batch_size < n_rows ? batch_size : n_rows;
    workspace ws;
    if ((rc = ws_alloc(&ws, net, B, max_lab, max_nnz, n_threads)))
        return rc;
    const bolt_config *c = &net->cfg;
    for (int64_t b0 = 0; b0 < n_rows && rc == BOLT_OK; b0 += B) {
        const int64_t nb = n_rows - b0 < B ? n_rows - b0 : B;
        run_phase1(net, &ws, X, Y, rows + b0, nb, n_threads, loss_sum);
        if (net->sparse && net->frozen)
            learn_missed_labels(net, &ws, nb, n_threads);
        net->step++;
        const double t = (double)net->step;
        bolt_adam adam = {c->beta1, c->beta2, c->epsilon,
                          (float)(learning_rate * sqrt(1.0 - pow(c->beta2, t)) /
                                  (1.0 - pow(c->beta1, t)))};
        for (int li = net->n_layers - 1; li >= 0 && rc == BOLT_OK; li--) {
            row_sink sink;
            make_sink(net, li, &adam, NULL, NULL, &sink);
            rc = layer_update(net, &ws, X, rows + b0, nb, li, &sink, n_threads);
        }
        net->since_rebuild++;
        net->since_redraw++;
        if (rc == BOLT_OK && net->sparse && !net->frozen) {
            if (c->redraw_interval > 0 && net->since_redraw >= c->redraw_interval)
                rc = bolt_rebuild_tables(net, 1, n_threads);
            else if (c->rebuild_interval > 0 && net->since_rebuild >= c->rebuild_interval)
                rc = bolt_rebuild_tables(net, 0, n_threads);
        }
    }
    ws_free(&ws);
    return rc;
}

int bolt_gradient(bolt_network *net, const bolt_csr *X, const bolt_csr *Y,
                  const int64_t *rows, int64_t n_rows, int32_t layer,
                  int32_t n_threads, float *grad_w, float *grad_b,
                  double *loss_sum)
{
    int64_t max_lab, max_nnz;
    int rc = check_training_inputs(net, X, Y, rows, n_rows, n_rows, n_threads,
                                   &max_lab, &max_nnz);
    if (rc)
        return rc;
    if (layer < 0 || layer >= net->n_layers)
        return bolt_fail(BOLT_EINVAL, "layer must be in [0, %d], got %d", net->n_layers - 1, layer);
    if (!grad_w || !grad_b || !loss_sum)
        return bolt_fail(BOLT_EINVAL, "missing output arrays");
    workspace ws;
    if ((rc = ws_alloc(&ws, net, n_rows, max_lab, max_nnz, n_threads)))
        return rc;
    const bolt_layer *l = &net->layer[layer];
    memset(grad_w, 0, (size_t)(l->rows * l->cols) * sizeof(float));
    memset(grad_b, 0, (size_t)l->bias_len * sizeof(float));
    *loss_sum = 0.0;
    /* frozen tables would learn from this pass; gradients must not */
    const int32_t frozen = net->frozen;
    net->frozen = 0;
    run_phase1(net, &ws, X, Y, rows, n_rows, n_threads, loss_sum);
    net->frozen = frozen;
    row_sink sink;
    make_sink(net, layer, NULL, grad_w, grad_b, &sink);
    rc = layer_update(net, &ws, X, rows, n_rows, layer, &sink, n_threads);
    ws_free(&ws);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* inference                                                                  */

/* Hidden activations of one row; buf holds the sum of hidden widths.
 * Returns the last hidden layer's activations inside buf. */
static const float *forward_hidden(const bolt_network *net, const bolt_csr *X,
                                   int64_t row, float *buf)
{
    float *a = buf;
    layer_input_forward(&net->layer[0], X, row, a);
    relu(a, net->width[1]);
    for (int i = 1; i < net->cfg.n_hidden; i++) {
        float *o = a + net->width[i];
        layer_dense_forward(&net->layer[i], a, o);
        relu(o, net->width[i + 1]);
        a = o;
    }
    return a;
}

typedef struct {
    float score;
    int32_t id;
} scored;

/* a ranks below b: lower score, or equal score and higher id */
static int worse(scored a, scored b)
{
    return a.score < b.score || (a.score == b.score && a.id > b.id);
}

/* Min-heap of the k best seen so far; heap[0] is the worst of them. */
static void heap_offer(scored *heap, int32_t *n, int32_t k, scored x)
{
    int32_t i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && worse(x, heap[(i - 1) / 2])) {
            heap[i] = heap[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        heap[i] = x;
        return;
    }
    if (!worse(heap[0], x))
        return;
    i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= k)
            break;
        if (c + 1 < k && worse(heap[c + 1], heap[c]))
            c++;
        if (!worse(heap[c], x))
            break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = x;
}

static int by_rank(const void *pa, const void *pb)
{
    scored a = *(const scored *)pa, b = *(const scored *)pb;
    return worse(b, a) ? -1 : worse(a, b) ? 1 : 0;
}

static void emit_topk(scored *heap, int32_t n, int32_t k, int loss, double lse,
                      int32_t *ids, float *scores)
{
    qsort(heap, (size_t)n, sizeof(scored), by_rank);
    for (int32_t j = 0; j < k; j++) {
        if (j < n) {
            double z = heap[j].score;
            ids[j] = heap[j].id;
            if (z == -INFINITY) /* unseen; lse may be -inf too */
                scores[j] = 0.0f;
            else
                scores[j] = loss == BOLT_LOSS_SOFTMAX ? (float)exp(z - lse)
                                                      : (float)(1.0 / (1.0 + exp(-z)));
        } else {
            ids[j] = -1;
            scores[j] = 0.0f;
        }
    }
}

static int check_inference(const bolt_network *net, const bolt_csr *X,
                           int32_t n_threads, const void *out)
{
    int rc;
    if (!net)
        return bolt_fail(BOLT_EINVAL, "network is missing");
    if ((rc = check_threads(n_threads)))
        return rc;
    if ((rc = csr_check(X, "X", net->cfg.n_features)))
        return rc;
    if (!out && X->n_rows > 0)
        return bolt_fail(BOLT_EINVAL, "missing output array");
    return BOLT_OK;
}

/* Samples scored together against each weight row, so that a row is read
 * from memory once per block rather than once per sample. */
#define SAMPLE_BLOCK 16
#define ROW_CHUNK 1024

/* Exact scores of every output for a block of samples: calls visit(i, r0,
 * z, n) with the logits z[0..n) of outputs r0 .. r0 + n of sample i. */
typedef void (*logit_visitor)(void *ctx, int i, int64_t r0, const float *z,
                              int64_t n);

static void dense_logits(const bolt_network *net, const float *hs, int nb,
                         float *zbuf, logit_visitor visit, void *ctx)
{
    const bolt_layer *out = &net->layer[net->n_layers - 1];
    const int64_t C = out->rows, H = out->cols;
    float dots[SAMPLE_BLOCK];
    for (int64_t r0 = 0; r0 < C; r0 += ROW_CHUNK) {
        const int64_t n = C - r0 < ROW_CHUNK ? C - r0 : ROW_CHUNK;
        for (int64_t r = 0; r < n; r++) {
            simd_dot_many(out->w + (r0 + r) * H, hs, H, nb, dots);
            const int masked = unseen(net, r0 + r);
            for (int i = 0; i < nb; i++)
                zbuf[(int64_t)i * ROW_CHUNK + r] = masked ? -INFINITY : dots[i] + out->b[r0 + r];
        }
        for (int i = 0; i < nb; i++)
            visit(ctx, i, r0, zbuf + (int64_t)i * ROW_CHUNK, n);
    }
}

/* Adds exp(z) to a running log-sum-exp kept as max *m and sum *sum of
 * exp(z - *m), rescaled when the maximum moves; -inf adds nothing. */
static void lse_add(double *m, double *sum, float z)
{
    if (z == -INFINITY)
        return;
    if (z > *m) {
        *sum = *sum * exp(*m - (double)z) + 1.0;
        *m = z;
    } else {
        *sum += exp((double)z - *m);
    }
}

typedef struct {
    scored *heaps; /* SAMPLE_BLOCK x k */
    int32_t n[SAMPLE_BLOCK];
    double max[SAMPLE_BLOCK], sum[SAMPLE_BLOCK];
    int32_t k;
} topk_ctx;

static void topk_visit(void *vctx, int i, int64_t r0, const float *z, int64_t n)
{
    topk_ctx *ctx = vctx;
    scored *heap = ctx->heaps + (int64_t)i * ctx->k;
    double m = ctx->max[i], sum = ctx->sum[i];
    for (int64_t r = 0; r < n; r++) {
        scored x = {z[r], (int32_t)(r0 + r)};
        heap_offer(heap, &ctx->n[i], ctx->k, x);
        lse_add(&m, &sum, z[r]);
    }
    ctx->max[i] = m;
    ctx->sum[i] = sum;
}

typedef struct {
    float *out;
    int64_t first, C;
} scores_ctx;

static void scores_visit(void *vctx, int i, int64_t r0, const float *z, int64_t n)
{
    scores_ctx *ctx = vctx;
    memcpy(ctx->out + (ctx->first + i) * ctx->C + r0, z, (size_t)n * sizeof(float));
}

/* Candidates the tables retrieve for hidden vector h, deduplicated. When
 * more than `keep` come back (keep > 0), only the `keep` found in the most
 * tables stay: a neuron that collides with the query in many tables is
 * likely to score high, and this bounds the dot products per query. When
 * there are fewer than `want`, the deterministic fill tops them up. */
static int32_t sparse_candidates(const bolt_network *net, const float *h,
                                 uint32_t *keys, int32_t *codes,
                                 uint32_t *mark, uint32_t *stamp, int32_t *cand,
                                 int64_t cap, int32_t want, int32_t keep,
                                 int32_t *hist)
{
    const int64_t C = net->cfg.n_outputs;
    const int32_t L = net->cfg.hash_L;
    /* mark[id] - base is how many tables returned id (1 .. L) */
    const uint32_t base = next_stamp(mark, C, stamp, (uint32_t)L + 2);
    hash_keys(&net->hash, h, keys, codes);
    tables_prefetch(&net->tables, keys);
    int32_t n = 0;
    for (int32_t l = 0; l < L; l++) {
        const int32_t *bucket;
        const int32_t cnt = tables_get(&net->tables, l, keys[l], &bucket);
        for (int32_t j = 0; j < cnt; j++) {
            const int32_t id = bucket[j];
            if (mark[id] >= base) {
                /* a bucket may hold an id twice; counts stop at L + 1 */
                if (mark[id] < base + (uint32_t)L + 1)
                    mark[id]++;
            } else if (n < cap) {
                mark[id] = base + 1;
                cand[n++] = id;
            }
        }
    }
    if (keep > 0 && n > keep) {
        /* counting selection: the threshold count t with at least `keep`
         * candidates at or above it; ties at t go in retrieval order */
        memset(hist, 0, (size_t)(L + 2) * sizeof(int32_t));
        for (int32_t j = 0; j < n; j++)
            hist[mark[cand[j]] - base]++;
        int32_t t = L + 1, above = 0;
        while (t > 1 && above + hist[t] < keep)
            above += hist[t--];
        int32_t at_t = keep - above, m = 0;
        for (int32_t j = 0; j < n; j++) {
            const uint32_t c = mark[cand[j]] - base;
            if (c > (uint32_t)t || (c == (uint32_t)t && at_t-- > 0))
                cand[m++] = cand[j];
        }
        n = m;
    }
    if (n < want)
        n = fill_active(net, keys, mark, base, base + 1, cand, n, want);
    return n;
}

static int64_t candidate_cap(const bolt_network *net)
{
    int64_t cap = (int64_t)net->cfg.hash_L * net->cfg.reservoir;
    return cap < net->cfg.n_outputs ? cap : net->cfg.n_outputs;
}

static int predict_sparse(const bolt_network *net, const bolt_csr *X, int32_t k,
                          int32_t keep, int32_t nt, int32_t *ids, float *scores)
{
    const bolt_config *c = &net->cfg;
    const int64_t C = c->n_outputs, H = net->width[c->n_hidden], sw = sum_width(c);
    int64_t cap = candidate_cap(net);
    cap = cap > k ? cap : k;
    const bolt_layer *out = &net->layer[net->n_layers - 1];
    uint32_t *mark = calloc((size_t)(nt * C), sizeof(uint32_t));
    uint32_t *stamps = calloc((size_t)nt, sizeof(uint32_t));
    uint32_t *keys = malloc((size_t)(nt * c->hash_L) * sizeof(uint32_t));
    int32_t *codes = malloc((size_t)nt * (size_t)net->hash.n_codes * sizeof(int32_t));
    int32_t *cand = malloc((size_t)(nt * cap) * sizeof(int32_t));
    scored *heaps = malloc((size_t)(nt * k) * sizeof(scored));
    float *hbuf = malloc((size_t)(nt * sw) * sizeof(float));
    int32_t *hist = malloc((size_t)(nt * (c->hash_L + 2)) * sizeof(int32_t));
    int rc = BOLT_OK;
    if (!mark || !stamps || !keys || !codes || !cand || !heaps || !hbuf || !hist) {
        rc = bolt_fail(BOLT_ENOMEM, "out of memory for prediction buffers");
        goto done;
    }
    if (keep > 0 && keep < k)
        keep = k;
#pragma omp parallel for schedule(dynamic, 8) num_threads(nt)
    for (int64_t i = 0; i < X->n_rows; i++) {
        const int tid = THREAD_ID();
        const float *h = forward_hidden(net, X, i, hbuf + tid * sw);
        int32_t *cd = cand + tid * cap;
        int32_t n = sparse_candidates(net, h, keys + tid * c->hash_L,
                                      codes + (int64_t)tid * net->hash.n_codes,
                                      mark + tid * C, &stamps[tid], cd, cap, k, keep,
                                      hist + tid * (c->hash_L + 2));
        scored *heap = heaps + (int64_t)tid * k;
        int32_t nh = 0;
        double m = -INFINITY, sum = 0.0;
        for (int32_t j = 0; j < n; j++) {
            if (j + PREFETCH_ROWS < n)
                prefetch_floats(out->w + (int64_t)cd[j + PREFETCH_ROWS] * H, H);
            const float *w = out->w + (int64_t)cd[j] * H;
            float z = unseen(net, cd[j]) ? -INFINITY : simd_dot(w, h, H) + out->b[cd[j]];
            scored x = {z, cd[j]};
            heap_offer(heap, &nh, k, x);
            lse_add(&m, &sum, z);
        }
        emit_topk(heap, nh, k, c->loss, m + log(sum), ids + i * k, scores + i * k);
    }
done:
    free(mark);
    free(stamps);
    free(keys);
    free(codes);
    free(cand);
    free(heaps);
    free(hbuf);
    free(hist);
    return rc;
}

/* Runs the hidden layers for blocks of rows and hands each block's last
 * hidden activations to dense_logits. */
static int dense_pass(const bolt_network *net, const bolt_csr *X, int32_t nt,
                      int32_t k, int32_t *ids, float *scores, float *all_out,
                      int probabilities)
{
    const bolt_config *c = &net->cfg;
    const int64_t C = c->n_outputs, H = net->width[c->n_hidden], sw = sum_width(c);
    const int64_t n_blocks = (X->n_rows + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
    float *hs = malloc((size_t)(nt * SAMPLE_BLOCK * H) * sizeof(float));
    float *hbuf = malloc((size_t)(nt * sw) * sizeof(float));
    float *zbuf = malloc((size_t)(nt * SAMPLE_BLOCK * ROW_CHUNK) * sizeof(float));
    scored *heaps = k > 0 ? malloc((size_t)(nt * SAMPLE_BLOCK * k) * sizeof(scored)) : NULL;
    int rc = BOLT_OK;
    if (!hs || !hbuf || !zbuf || (k > 0 && !heaps)) {
        rc = bolt_fail(BOLT_ENOMEM, "out of memory for prediction buffers");
        goto done;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t blk = 0; blk < n_blocks; blk++) {
        const int tid = THREAD_ID();
        const int64_t first = blk * SAMPLE_BLOCK;
        const int nb = (int)(X->n_rows - first < SAMPLE_BLOCK ? X->n_rows - first : SAMPLE_BLOCK);
        float *h = hs + (int64_t)tid * SAMPLE_BLOCK * H;
        for (int i = 0; i < nb; i++)
            memcpy(h + i * H, forward_hidden(net, X, first + i, hbuf + tid * sw),
                   (size_t)H * sizeof(float));
        float *zb = zbuf + (int64_t)tid * SAMPLE_BLOCK * ROW_CHUNK;
        if (k > 0) {
            topk_ctx ctx;
            ctx.heaps = heaps + (int64_t)tid * SAMPLE_BLOCK * k;
            ctx.k = k;
            for (int i = 0; i < SAMPLE_BLOCK; i++) {
                ctx.n[i] = 0;
                ctx.max[i] = -INFINITY;
                ctx.sum[i] = 0.0;
            }
            dense_logits(net, h, nb, zb, topk_visit, &ctx);
            for (int i = 0; i < nb; i++)
                emit_topk(ctx.heaps + (int64_t)i * k, ctx.n[i], k, c->loss,
                          ctx.max[i] + log(ctx.sum[i]), ids + (first + i) * k,
                          scores + (first + i) * k);
        } else {
            scores_ctx ctx = {all_out, first, C};
            dense_logits(net, h, nb, zb, scores_visit, &ctx);
            if (probabilities) {
                for (int i = 0; i < nb; i++) {
                    float *z = all_out + (first + i) * C;
                    if (c->loss == BOLT_LOSS_SOFTMAX) {
                        float m = z[0];
                        for (int64_t r = 1; r < C; r++)
                            m = z[r] > m ? z[r] : m;
                        double sum = 0.0;
                        for (int64_t r = 0; r < C; r++)
                            sum += exp((double)(z[r] - m));
                        const double lse = (double)m + log(sum);
                        for (int64_t r = 0; r < C; r++)
                            z[r] = (float)exp((double)z[r] - lse);
                    } else {
                        for (int64_t r = 0; r < C; r++)
                            z[r] = (float)(1.0 / (1.0 + exp(-(double)z[r])));
                    }
                }
            }
        }
    }
done:
    free(hs);
    free(hbuf);
    free(zbuf);
    free(heaps);
    return rc;
}

int bolt_predict_topk(const bolt_network *net, const bolt_csr *X, int32_t k,
                      int32_t candidates, int32_t n_threads, int32_t *ids,
                      float *scores)
{
    if (net && (k < 1 || k > net->cfg.n_outputs))
        return bolt_fail(BOLT_EINVAL, "k must be in [1, %d] (the number of outputs), got %d",
                         net->cfg.n_outputs, k);
    int rc = check_inference(net, X, n_threads, ids);
    if (rc)
        return rc;
    if (!scores && X->n_rows > 0)
        return bolt_fail(BOLT_EINVAL, "missing output array");
    if (X->n_rows == 0)
        return BOLT_OK;
    if (candidates != 0 && net->sparse)
        return predict_sparse(net, X, k, candidates < 0 ? 0 : candidates, n_threads, ids,
                              scores);
    return dense_pass(net, X, n_threads, k, ids, scores, NULL, 0);
}

int bolt_predict_scores(const bolt_network *net, const bolt_csr *X,
                        int32_t probabilities, int32_t n_threads, float *out)
{
    int rc = check_inference(net, X, n_threads, out);
    if (rc || X->n_rows == 0)
        return rc;
    return dense_pass(net, X, n_threads, 0, NULL, NULL, out, probabilities);
}

int bolt_embed(const bolt_network *net, const bolt_csr *X, int32_t n_threads,
               float *out)
{
    int rc = check_inference(net, X, n_threads, out);
    if (rc || X->n_rows == 0)
        return rc;
    const int64_t H = net->width[net->cfg.n_hidden], sw = sum_width(&net->cfg);
    float *hbuf = malloc((size_t)(n_threads * sw) * sizeof(float));
    if (!hbuf)
        return bolt_fail(BOLT_ENOMEM, "out of memory for embedding buffers");
#pragma omp parallel for schedule(dynamic, 16) num_threads(n_threads)
    for (int64_t i = 0; i < X->n_rows; i++)
        memcpy(out + i * H, forward_hidden(net, X, i, hbuf + THREAD_ID() * sw),
               (size_t)H * sizeof(float));
    free(hbuf);
    return BOLT_OK;
}

/* ------------------------------------------------------------------------ */
/* parameters and state                                                       */

static int check_layer(const bolt_network *net, int32_t layer)
{
    if (!net)
        return bolt_fail(BOLT_EINVAL, "network is missing");
    if (layer < 0 || layer >= net->n_layers)
        return bolt_fail(BOLT_EINVAL, "layer must be in [0, %d], got %d", net->n_layers - 1, layer);
    return BOLT_OK;
}

int bolt_layer_shape(const bolt_network *net, int32_t layer, int64_t *rows,
                     int64_t *cols, int64_t *bias_len)
{
    int rc = check_layer(net, layer);
    if (rc)
        return rc;
    *rows = net->layer[layer].rows;
    *cols = net->layer[layer].cols;
    *bias_len = net->layer[layer].bias_len;
    return BOLT_OK;
}

int bolt_get_params(const bolt_network *net, int32_t layer, float *weights,
                    float *bias)
{
    int rc = check_layer(net, layer);
    if (rc)
        return rc;
    const bolt_layer *l = &net->layer[layer];
    memcpy(weights, l->w, (size_t)(l->rows * l->cols) * sizeof(float));
    memcpy(bias, l->b, (size_t)l->bias_len * sizeof(float));
    return BOLT_OK;
}

int bolt_set_params(bolt_network *net, int32_t layer, const float *weights,
                    const float *bias)
{
    int rc = check_layer(net, layer);
    if (rc)
        return rc;
    bolt_layer *l = &net->layer[layer];
    const int64_t n = l->rows * l->cols;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(weights[i]))
            return bolt_fail(BOLT_EINVAL, "weights of layer %d contain NaN or infinity", layer);
    for (int64_t i = 0; i < l->bias_len; i++)
        if (!isfinite(bias[i]))
            return bolt_fail(BOLT_EINVAL, "bias of layer %d contains NaN or infinity", layer);
    memcpy(l->w, weights, (size_t)n * sizeof(float));
    memcpy(l->b, bias, (size_t)l->bias_len * sizeof(float));
    return BOLT_OK;
}

int bolt_get_counters(const bolt_network *net, int64_t *out)
{
    if (!net || !out)
        return bolt_fail(BOLT_EINVAL, "network or output is missing");
    out[0] = net->step;
    out[1] = net->since_rebuild;
    out[2] = net->since_redraw;
    out[3] = net->redraws;
    out[4] = net->frozen;
    return BOLT_OK;
}

int bolt_set_counters(bolt_network *net, const int64_t *in)
{
    if (!net || !in)
        return bolt_fail(BOLT_EINVAL, "network or input is missing");
    for (int i = 0; i < BOLT_N_COUNTERS; i++)
        if (in[i] < 0)
            return bolt_fail(BOLT_EINVAL, "counters must be non-negative");
    if (net->sparse && in[3] != net->redraws) {
        int rc = redraw_hash(net, in[3]);
        if (rc)
            return rc;
    }
    net->step = in[0];
    net->since_rebuild = in[1];
    net->since_redraw = in[2];
    net->redraws = in[3];
    net->frozen = in[4] != 0;
    return BOLT_OK;
}

int bolt_get_seen(const bolt_network *net, uint8_t *out)
{
    if (!net || !out)
        return bolt_fail(BOLT_EINVAL, "network or output is missing");
    memcpy(out, net->seen, (size_t)net->cfg.n_outputs);
    return BOLT_OK;
}

int bolt_set_seen(bolt_network *net, const uint8_t *in)
{
    if (!net || !in)
        return bolt_fail(BOLT_EINVAL, "network or input is missing");
    net->n_seen = 0;
    for (int64_t j = 0; j < net->cfg.n_outputs; j++) {
        net->seen[j] = in[j] != 0;
        net->n_seen += net->seen[j];
    }
    return BOLT_OK;
}

int bolt_set_frozen(bolt_network *net, int32_t frozen)
{
    if (!net)
        return bolt_fail(BOLT_EINVAL, "network is missing");
    net->frozen = frozen != 0;
    return BOLT_OK;
}

int bolt_table_size(const bolt_network *net, int64_t *n_buckets, int64_t *n_ids)
{
    if (!net || !n_buckets || !n_ids)
        return bolt_fail(BOLT_EINVAL, "network or output is missing");
    *n_buckets = 0;
    *n_ids = 0;
    if (!net->sparse)
        return BOLT_OK;
    const int64_t nb = (int64_t)net->tables.L << net->tables.range_pow;
    int64_t total = 0;
    for (int64_t b = 0; b < nb; b++) {
        uint32_t cnt = net->tables.counts[b];
        total += cnt < (uint32_t)net->tables.R ? cnt : (uint32_t)net->tables.R;
    }
    *n_buckets = nb;
    *n_ids = total;
    return BOLT_OK;
}

int bolt_get_tables(const bolt_network *net, uint32_t *counts, int32_t *ids)
{
    if (!net || !counts || !ids)
        return bolt_fail(BOLT_EINVAL, "network or output is missing");
    if (!net->sparse)
        return BOLT_OK;
    const bolt_tables *t = &net->tables;
    const int64_t nb = (int64_t)t->L << t->range_pow;
    int64_t p = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint32_t cnt = t->counts[b];
        const int64_t held = cnt < (uint32_t)t->R ? cnt : (uint32_t)t->R;
        counts[b] = cnt;
        memcpy(ids + p, t->ids + b * t->R, (size_t)held * sizeof(int32_t));
        p += held;
    }
    return BOLT_OK;
}

int bolt_set_tables(bolt_network *net, const uint32_t *counts,
                    const int32_t *ids, int64_t n_ids)
{
    if (!net || !counts || (!ids && n_ids > 0))
        return bolt_fail(BOLT_EINVAL, "network or input is missing");
    if (!net->sparse)
        return bolt_fail(BOLT_EINVAL, "this network has a dense output layer and no tables");
    bolt_tables *t = &net->tables;
    const int64_t nb = (int64_t)t->L << t->range_pow;
    int64_t total = 0;
    for (int64_t b = 0; b < nb; b++)
        total += counts[b] < (uint32_t)t->R ? counts[b] : (uint32_t)t->R;
    if (total != n_ids)
        return bolt_fail(BOLT_EINVAL, "table contents hold %lld ids but the counts imply %lld",
                         (long long)n_ids, (long long)total);
    for (int64_t p = 0; p < n_ids; p++)
        if (ids[p] < 0 || ids[p] >= net->cfg.n_outputs)
            return bolt_fail(BOLT_EINVAL, "table contents hold an id outside [0, %d)",
                             net->cfg.n_outputs);
    int64_t p = 0;
    for (int64_t b = 0; b < nb; b++) {
        const int64_t held = counts[b] < (uint32_t)t->R ? counts[b] : (uint32_t)t->R;
        t->counts[b] = counts[b];
        memcpy(t->ids + b * t->R, ids + p, (size_t)held * sizeof(int32_t));
        p += held;
    }
    return BOLT_OK;
}

int bolt_hash_keys(const bolt_network *net, const float *vectors, int64_t n,
                   uint32_t *keys)
{
    if (!net || (n > 0 && (!vectors || !keys)) || n < 0)
        return bolt_fail(BOLT_EINVAL, "network, vectors or output is missing");
    if (!net->sparse)
        return bolt_fail(BOLT_EINVAL, "this network has a dense output layer and no hash functions");
    const int64_t H = net->width[net->cfg.n_hidden];
    int32_t *codes = malloc((size_t)net->hash.n_codes * sizeof(int32_t));
    if (!codes)
        return bolt_fail(BOLT_ENOMEM, "out of memory hashing");
    for (int64_t i = 0; i < n; i++)
        hash_keys(&net->hash, vectors + i * H, keys + i * net->cfg.hash_L, codes);
    free(codes);
    return BOLT_OK;
}

int bolt_candidates(const bolt_network *net, const bolt_csr *X, int64_t row,
                    int32_t *out, int64_t cap, int64_t *n_out)
{
    int rc = check_inference(net, X, 1, n_out);
    if (rc)
        return rc;
    if (!net->sparse)
        return bolt_fail(BOLT_EINVAL, "this network has a dense output layer and no tables");
    if (row < 0 || row >= X->n_rows)
        return bolt_fail(BOLT_EINVAL, "row %lld is outside [0, %lld)", (long long)row,
                         (long long)X->n_rows);
    const bolt_config *c = &net->cfg;
    const int64_t C = c->n_outputs, full = candidate_cap(net);
    float *hbuf = malloc((size_t)sum_width(c) * sizeof(float));
    uint32_t *mark = calloc((size_t)C, sizeof(uint32_t));
    uint32_t *keys = malloc((size_t)c->hash_L * sizeof(uint32_t));
    int32_t *codes = malloc((size_t)net->hash.n_codes * sizeof(int32_t));
    int32_t *cand = malloc((size_t)(full > 0 ? full : 1) * sizeof(int32_t));
    if (!hbuf || !mark || !keys || !codes || !cand) {
        rc = bolt_fail(BOLT_ENOMEM, "out of memory for candidate buffers");
    } else {
        uint32_t stamp = 0;
        const float *h = forward_hidden(net, X, row, hbuf);
        int32_t n = sparse_candidates(net, h, keys, codes, mark, &stamp, cand, full, 0, 0, NULL);
        memcpy(out, cand, (size_t)(n < cap ? n : cap) * sizeof(int32_t));
        *n_out = n;
    }
    free(hbuf);
    free(mark);
    free(keys);
    free(codes);
    free(cand);
    return rc;
}
