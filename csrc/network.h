/* What the core's translation units share and callers never see: the
 * network struct, the layer, hash and table types, and the few helpers more
 * than one file needs. bolt.h is the only header a caller includes. */
#ifndef SKBOLT_NETWORK_H
#define SKBOLT_NETWORK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "bolt.h"
#include "bolt_debug.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#define TEAM_SIZE() omp_get_num_threads()
#else
#define THREAD_ID() 0
#define TEAM_SIZE() 1
#endif

#include <time.h>

/* Wall-clock seconds (C11), for the phase timings. */
static inline double wall_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Hot kernels get an AVX2+FMA (x86-64-v3) clone, chosen at load time by the
 * CPU's features (GCC, x86-64, glibc): what ships is built for the baseline
 * ISA yet runs wide. ("arch=haswell" would dispatch on the CPU model and
 * miss AMD processors with the same features.) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__GLIBC__) && !defined(SKBOLT_NO_CLONES)
#define KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KERNEL
#endif

/* For functions made only of prefetches: GCC counts a prefetch as no side
 * effect, marks such a function pure when it stays a call of its own, and
 * then deletes every call to it (the Adam rows of grad.c went unprefetched
 * that way). Inlined, the prefetches stay where they were written. */
#if defined(__GNUC__)
#define PREFETCH_FN static inline __attribute__((always_inline))
#else
#define PREFETCH_FN static inline
#endif

#define MAX_THREADS 1024

/* ---- errors (error.c) ---- */
int bolt_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- blocks of buffers (network.c) ----
 * A layout function lists every buffer of one block with its size. Run on a
 * counting arena (base NULL) it only adds up bytes, which is how
 * bolt_estimate_memory sizes what bolt_create and bolt_train will allocate;
 * run again on the opened block it hands out the pointers. One list, so the
 * estimate and the allocation cannot disagree. */
enum { PART_WEIGHTS, PART_OPTIMIZER, PART_TABLES, PART_BUFFERS, N_PARTS };

typedef struct {
    char *base;            /* NULL while counting */
    int64_t used, cap;     /* cap: bytes the opened block holds */
    int64_t part[N_PARTS]; /* bytes by part; alignment goes to buffers */
    int zeroed;            /* the block came from calloc */
    int overflow;          /* a size did not fit in int64, or a walk differed */
} arena;

typedef void (*layout_fn)(arena *a, void *bufs, const void *ctx);

void *arena_take(arena *a, int part, int64_t n, int64_t size);
/* arena_take for buffers that must start zeroed */
void *arena_zero(arena *a, int part, int64_t n, int64_t size);
/* Bytes a block of this count takes from malloc (alignment slack included). */
int64_t arena_bytes(const arena *a);
void arena_report(const arena *a, bolt_memory *m);
/* Sizes, allocates and carves one block; *block is what free() releases.
 * On failure the message names `what` and the bytes it needed. */
int arena_build(layout_fn layout, void *bufs, const void *ctx, int zeroed,
                void **block, const char *what);

/* a * b, or INT64_MAX when that does not fit (both non-negative) */
static inline int64_t mul_sat(int64_t a, int64_t b)
{
    return b != 0 && a > INT64_MAX / b ? INT64_MAX : a * b;
}

/* ---- CSR access ---- */
static inline int64_t csr_ptr(const bolt_csr *m, int64_t i)
{
    return m->indptr_type == BOLT_INT32 ? (int64_t)((const int32_t *)m->indptr)[i]
                                        : ((const int64_t *)m->indptr)[i];
}

static inline int64_t csr_col(const bolt_csr *m, int64_t p)
{
    return m->indices_type == BOLT_INT32 ? (int64_t)((const int32_t *)m->indices)[p]
                                         : ((const int64_t *)m->indices)[p];
}

static inline float csr_val(const bolt_csr *m, int64_t p)
{
    if (!m->data)
        return 1.0f;
    return m->data_type == BOLT_FLOAT32 ? ((const float *)m->data)[p]
                                        : (float)((const double *)m->data)[p];
}

/* ---- validation (check.c) ---- */
/* Fails on the first of n pointers that is NULL; names lists their names,
 * separated by spaces, for the message. */
int check_given(const char *names, const void *const *ptrs, int n);
int csr_check(const bolt_csr *m, const char *name, int64_t n_cols);
int check_threads(int32_t n_threads);
int check_config(const bolt_config *c);
int check_layer(const bolt_network *net, int32_t layer);
int check_inference(const bolt_network *net, const bolt_csr *X,
                    int32_t n_threads);
int check_training_inputs(const bolt_network *net, const bolt_csr *X,
                          const bolt_csr *Y, const int64_t *rows,
                          int64_t n_rows, int64_t batch, int32_t n_threads,
                          int64_t *max_lab, int64_t *max_nnz);

/* Asks for the cache lines of n floats ahead of use: weight rows of the
 * active set sit at random places in a large matrix, and starting their
 * loads a few rows early hides most of the memory latency. */
PREFETCH_FN void prefetch_floats(const float *p, int64_t n)
{
#if defined(__GNUC__)
    for (int64_t i = 0; i < n; i += 16)
        __builtin_prefetch(p + i);
#else
    (void)p;
    (void)n;
#endif
}

/* How many rows ahead to prefetch. */
#define PREFETCH_ROWS 4

/* ---- kernels (simd.c) ---- */
float simd_dot(const float *a, const float *b, int64_t n);
void simd_axpy(float alpha, const float *x, float *y, int64_t n);
void simd_gather_sum(const float *x, int64_t dim, const int32_t *idx,
                     const float *val, int64_t n, float *y);
void simd_dot_many(const float *w, const float *h, int64_t n, int nh,
                   float *out);

/* ---- layers (layer.c) ---- */
typedef struct {
    int64_t rows, cols, bias_len;
    float *w, *b;   /* parameters */
    float *mw, *vw; /* Adam moments of w (NULL when pooled) */
    float *mb, *vb; /* Adam moments of b */
    uint8_t *changed; /* per row: an Adam step moved it since bolt_take_changed */
    /* Pooled moments (the input layer of a sparse hidden layer): w's
     * columns in blocks of pool_block; block b of row r has its moments,
     * m then v, at pool + (slot[r * blocks + b] - 1) * 2 * pool_block once
     * an Adam step touched it (slot 0: never). Slots are handed out in
     * the order blocks are first touched, so the pages of moments filled
     * are those of the blocks trained, not every page of an n_features x
     * width matrix the scattered blocks land on. */
    int64_t pool_block;
    uint32_t *slot;
    float *pool;
    int64_t pool_used;
    /* per block: moved since the last bolt_sync_params (pooled layers) */
    uint8_t *moved;
} bolt_layer;

/* pool_block > 0: pooled moments by blocks of that many columns. */
void layer_layout(bolt_layer *l, arena *a, int64_t rows, int64_t cols,
                  int64_t bias_len, int64_t pool_block);
void layer_init(bolt_layer *l, uint64_t seed, int index, int64_t fan_in,
                int64_t fan_out, int32_t n_threads);
/* z = b + sum over the row's nonzeros of x_j * w[j]; out of range columns
 * cannot occur because inputs are validated first. */
void layer_input_forward(const bolt_layer *l, const bolt_csr *x, int64_t row,
                         float *z);
void layer_dense_forward(const bolt_layer *l, const float *in, float *z);

/* log(sum exp(z)) of n logits, max-shifted. */
double log_sum_exp(const float *z, int64_t n);

/* The probability an output layer gives logit z: softmax needs the
 * log-sum-exp of its row, sigmoid does not. */
static inline float output_prob(int loss, float z, double lse)
{
    return loss == BOLT_LOSS_SOFTMAX ? (float)exp((double)z - lse)
                                     : (float)(1.0 / (1.0 + exp(-(double)z)));
}

/* ---- optimizer (optim.c) ---- */
typedef struct {
    float beta1, beta2, epsilon;
    float lr; /* learning rate with the bias correction of this step */
} bolt_adam;

bolt_adam adam_at_step(const bolt_config *c, float learning_rate,
                       int64_t step);
void adam_step(float *w, float *m, float *v, const float *g, int64_t n,
               const bolt_adam *a);

/* ---- gradient gathering (grad.c) ---- */
/* Where a batch's gradient rows go: an Adam step (adam != NULL) or dense
 * gradient arrays (for gradient checks). row_bias: one bias per row. buf
 * holds one gradient row (the layer's cols) per thread. */
typedef struct {
    bolt_layer *layer;
    const bolt_adam *adam;
    float *grad_w, *grad_b;
    int row_bias;
    float *buf;
} row_sink;

void sink_bias(const row_sink *s, const float *gb);

/* The rows a batch touched, with each row's (sample, value) entries. */
typedef struct {
    int32_t *slot;    /* per row seen in the last build: its index in touched */
    int32_t *touched; /* rows, ascending */
    /* entries of touched[t] from run c of samples:
     * start[c * n_touched + t] .. start[c * n_touched + t + 1] */
    int64_t *start;
    int32_t *sample;
    float *value;
    int64_t max_rows, max_slots, n_touched, n_entries;
    int32_t max_runs, n_runs;
    /* rowindex_build's scratch, zero between builds: per run, a bit per row
     * and a count (then a write position) per slot; each entry's slot */
    uint64_t *seen;
    int64_t n_words;
    int64_t *run_count;
    int32_t *entry_slot;
} row_index;

void rowindex_layout(row_index *ix, arena *a, int64_t max_rows,
                     int64_t max_entries, int32_t n_threads);
void rowindex_build(row_index *ix, int64_t n_samples, const int64_t *begin,
                    const int32_t *count, const int32_t *rows,
                    const float *vals, int32_t n_threads);
void update_indexed_rows(const row_index *ix, const float *vecs, int64_t dim,
                         const row_sink *sink, int32_t n_threads);
void update_all_rows(int64_t n_samples, const float *coef, const float *vecs,
                     const row_sink *sink, int32_t n_threads);

/* ---- hashing (lsh.c) ---- */
#define DWTA_BIN 8

typedef struct {
    int32_t family, K, L, range_pow, dim;
    int32_t n_codes; /* K * L */
    int32_t take;    /* coordinates per code */
    int32_t *coords; /* n_codes * take coordinate ids */
    int8_t *signs;   /* SRP: a sign per coordinate id */
    int32_t *perm;   /* DWTA: room to draw a permutation */
    uint64_t salt;   /* densification and key mixing */
    void *block;
} bolt_hash;

/* Fills in the sizes of a hash family without allocating. */
void hash_shape(bolt_hash *h, int32_t family, int32_t K, int32_t L,
                int32_t range_pow, int32_t dim);
void hash_layout(arena *a, void *hash, const void *unused);
/* Allocates and draws the functions of a shaped h. */
int hash_create(bolt_hash *h, uint64_t seed, uint64_t draw);
void hash_destroy(bolt_hash *h);
/* keys[0..L) of vector v; scratch holds n_codes ints. */
void hash_keys(const bolt_hash *h, const float *v, uint32_t *keys,
               int32_t *scratch);

typedef struct {
    int32_t L, range_pow, R;
    uint64_t seed;
    uint32_t *counts; /* L << range_pow insertion counts */
    int32_t *ids;     /* (L << range_pow) * R ids */
} bolt_tables;

void tables_layout(bolt_tables *t, arena *a);
void tables_clear(bolt_tables *t);

static inline int64_t tables_n_buckets(const bolt_tables *t)
{
    return (int64_t)t->L << t->range_pow;
}

/* Ids a bucket holds after `count` insertions into a reservoir of R. */
static inline int32_t bucket_held(uint32_t count, int32_t R)
{
    return count < (uint32_t)R ? (int32_t)count : R;
}

static inline int64_t tables_bucket(const bolt_tables *t, int32_t l,
                                    uint32_t key)
{
    return ((int64_t)l << t->range_pow) + (int64_t)key;
}

/* Starts loading bucket (l, key) for an insertion a few iterations ahead. */
static inline void tables_prefetch_one(const bolt_tables *t, int32_t l, uint32_t key)
{
#if defined(__GNUC__)
    const int64_t b = tables_bucket(t, l, key);
    __builtin_prefetch(t->counts + b, 1);
    __builtin_prefetch(t->ids + b * t->R, 1);
#else
    (void)t;
    (void)l;
    (void)key;
#endif
}

/* Starts loading the L buckets a query will read, so that their cache
 * misses overlap instead of queuing one after another. */
static inline void tables_prefetch(const bolt_tables *t, const uint32_t *keys)
{
#if defined(__GNUC__)
    for (int32_t l = 0; l < t->L; l++) {
        const int64_t b = tables_bucket(t, l, keys[l]);
        __builtin_prefetch(t->counts + b);
        __builtin_prefetch(t->ids + b * t->R);
    }
#else
    (void)t;
    (void)keys;
#endif
}

/* Reservoir insertion; one writer per table at a time. */
void tables_insert(bolt_tables *t, int32_t l, uint32_t key, int32_t id);

static inline int32_t tables_get(const bolt_tables *t, int32_t l, uint32_t key,
                                 const int32_t **ids)
{
    int64_t b = tables_bucket(t, l, key);
    *ids = t->ids + b * t->R;
    return bucket_held(t->counts[b], t->R);
}

/* ---- the LSH-sparse first hidden layer (hsparse.c) ----
 * Densified winner-take-all over the raw input: one random permutation of
 * the input coordinates cut into K * L bins of `bin` positions. A neuron's
 * code in a bin is the position of its largest weight there; a sample's is
 * the position of its largest nonzero there (bins it has no nonzero in
 * borrow the code of the next bin that has one). */
typedef struct {
    int32_t K, L, range_pow, n_codes, bin, dim;
    int32_t *perm; /* dim: position -> coordinate */
    int32_t *pos;  /* dim: coordinate -> position */
    uint64_t salt;
} hidden_hash;

/* One thread's scratch for choosing a sample's active units. */
typedef struct {
    uint32_t *keys;  /* L */
    int32_t *codes;  /* n_codes */
    float *best;     /* n_codes */
    int32_t *cand;   /* L * R: the blocks of the retrieved units */
    float *z;        /* rank_blocks * block: pre-activations of the ranked blocks */
    float *score;    /* rank_blocks: their scores */
    int32_t *order;  /* rank_blocks: indices into cand */
    int32_t *top;    /* the row's nonzeros the ranking reads (offsets) */
    float *mag;      /* their magnitudes */
    uint16_t *count; /* blocks: units of each block retrieved, over the tables
                      * (zero between uses) */
} hidden_probe;

/* ---- the network (network.c) ---- */
struct bolt_network {
    bolt_config cfg;
    int32_t n_layers;                     /* n_hidden + 1 */
    int64_t width[BOLT_MAX_HIDDEN + 2];   /* features, hidden..., outputs */
    bolt_layer layer[BOLT_MAX_HIDDEN + 1];
    int sparse;                           /* output layer sampled by LSH */
    bolt_hash hash;
    bolt_tables tables;
    int32_t *fill_order;                  /* random permutation of outputs, seen first */
    bolt_counters ctr;
    bolt_timings time;                    /* bolt_take_timings */
    /* seen[j] != 0 once output j has been a label of a training row. Outputs
     * never seen are scored -inf (probability 0) at inference once any has
     * been: sampled softmax leaves their logits where initialisation put
     * them while every trained logit drifts down, so they would outrank
     * the trained ones in exact scoring. */
    uint8_t *seen;
    int64_t n_seen;
    /* Hidden vectors are hashed less this (zero unless the output rows
     * started from centred label centroids, bolt_init_centroids): those
     * rows point where a label's rows sit above the mean, so the queries
     * must be measured from the mean too. NULL when the output is dense. */
    float *center;
    /* LSH-sparse first hidden layer (0 < cfg.hidden_active < its width) */
    int hsparse;
    int hexact;                           /* inference computes every unit */
    int32_t hk;                           /* active units per sample: hblock * hnb */
    int32_t hblock;                       /* units per block (a power of two) */
    int32_t hnb;                          /* active blocks per sample */
    int32_t hblocks;                      /* blocks of the layer: width / hblock */
    int32_t hrank;                        /* blocks ranked by pre-activation, at most */
    hidden_hash hhash;
    bolt_tables htables;
    int32_t *hfill;                       /* random permutation of the blocks */
    void *block;                          /* layers, seen, centre, fill order, tables */
    void *train_ws;                       /* the last bolt_train's buffers (train.c), or NULL */
};

/* Frees the buffers bolt_train keeps between calls (train.c). */
void train_release(bolt_network *net);

int64_t max_width(const bolt_config *c);
int64_t sum_width(const bolt_config *c);
/* Draws hash functions number `draw` in place of the current ones. */
int redraw_hash(bolt_network *net, int64_t draw);
/* Draws the fill order again, the seen outputs at its front. */
void order_fill(bolt_network *net);
/* Re-inserts every output neuron into emptied tables (every seen one, once
 * any output has been a label). */
int build_tables(bolt_network *net, int32_t n_threads);
/* The rebuild / redraw schedule after a training batch. */
int maintain_tables(bolt_network *net, int32_t n_threads);
/* Frozen tables: inserts each of the B samples' missed labels (missed[s *
 * stride ..], n_missed[s] of them) into the buckets its keys (keys[s * L ..])
 * name. */
void learn_missed_labels(bolt_network *net, const uint32_t *keys,
                         const int32_t *missed, const int32_t *n_missed,
                         int64_t stride, int64_t B, int32_t nt);

/* Marks output j seen; 1 if it was not. Whoever marks redraws the fill
 * order (order_fill) once it has marked all it will. */
static inline int see_output(bolt_network *net, int64_t j)
{
    if (net->seen[j])
        return 0;
    net->seen[j] = 1;
    net->n_seen++;
    return 1;
}

/* Records the labels of Y's rows as seen (state.c). */
void mark_seen(bolt_network *net, const bolt_csr *Y, const int64_t *rows,
               int64_t n_rows);

/* How many outputs at the front of fill_order a fill walks round before
 * it takes the rest: the seen ones (order_fill), or all before any is. */
static inline int64_t fill_span(const bolt_network *net)
{
    return net->n_seen > 0 ? net->n_seen : net->cfg.n_outputs;
}

/* Whether inference scores output j as -inf (see struct bolt_network). */
static inline int unseen(const bolt_network *net, int64_t j)
{
    return net->n_seen > 0 && !net->seen[j];
}

/* ---- active sets and candidates (active.c) ---- */
/* One thread's view of the arrays a table query needs. */
typedef struct {
    uint32_t *keys;  /* L keys of the vector being queried */
    int32_t *codes;  /* n_codes of hashing scratch */
    uint32_t *mark;  /* n_outputs marks (see next_stamp) */
    uint32_t *stamp; /* the thread's last stamp */
    float *shifted;  /* width of the last hidden layer: the vector less center */
} probe;

/* Per-thread probe arrays for nt threads, with key rows for n_keys vectors. */
void probe_layout(arena *a, probe *all, const bolt_network *net, int64_t nt,
                  int64_t n_keys);
probe probe_at(const probe *all, const bolt_network *net, int tid,
               int64_t key_row);
/* Hashes h into p->keys and starts loading the buckets they name. */
void probe_hash(const bolt_network *net, const probe *p, const float *h);
/* Where a training sample draws negatives from: the labels of the rows of
 * its batch (rows[0..n_rows) of Y), with draws seeded by `draw`. */
typedef struct {
    uint64_t draw;
    const bolt_csr *Y;
    const int64_t *rows;
    int64_t n_rows;
} negative_source;

int32_t choose_active(const bolt_network *net, const probe *p, const negative_source *neg,
                      const int32_t *labels, int32_t nl, int32_t *ids,
                      int32_t *n_labels, int32_t *missed, int32_t *n_missed);
int32_t sparse_candidates(const bolt_network *net, const probe *p,
                          int32_t *cand, int64_t cap, int32_t want,
                          int32_t keep, int32_t *hist);
int64_t candidate_cap(const bolt_network *net);

/* ---- hidden layers (layer.c) ---- */
/* The one forward pass through the hidden layers: layer i's activations go
 * to acts[i]; dropout only when training. Returns the last layer's. */
const float *hidden_forward(const bolt_network *net, const bolt_csr *X,
                            int64_t row, float *const *acts, int training);
/* hidden_forward for inference into buf (sum of hidden widths). */
const float *hidden_infer(const bolt_network *net, const bolt_csr *X,
                          int64_t row, float *buf);
/* Where hidden_infer left a sparse hidden layer's active ids and their
 * activations in buf (when it is sparse and not exact). */
void hidden_last(const bolt_network *net, float *buf, int32_t **ids, float **a);
/* Last hidden layer of rows[0..n) of X (rows NULL: rows 0..n) into hs
 * (n x width), in parallel; buf holds sum_width floats per thread. */
void hidden_rows(const bolt_network *net, const bolt_csr *X, const int64_t *rows,
                 int64_t n, float *hs, float *buf, int32_t nt);
/* From da, the gradient at the last hidden activations, the gradient at
 * every hidden pre-activation into deltas[i]; db is scratch as wide as the
 * widest layer, and da is overwritten. */
void hidden_backward(const bolt_network *net, float *const *acts,
                     float *const *deltas, float *da, float *db);

/* ---- the sparse hidden layer (hsparse.c) ---- */
void hsparse_shape(bolt_network *net);
/* The layer's hash permutation, fill order and tables in the model block. */
void hsparse_layout(arena *a, bolt_network *net);
/* Draws the permutation and the fill order (at creation). */
void hsparse_draw(bolt_network *net);
/* Re-inserts every unit of the layer from its current weights. */
int hsparse_build(bolt_network *net, int32_t n_threads);
/* Bytes of a table rebuild's buffers, counted into m (estimate_memory). */
void hsparse_rebuild_memory(const bolt_network *net, int32_t n_threads, bolt_memory *m);
/* A probe's arrays for nt threads out of an arena. */
void hprobe_layout(arena *a, hidden_probe *all, const bolt_network *net, int64_t nt);
hidden_probe hprobe_at(const hidden_probe *all, const bolt_network *net, int tid);
/* 32-bit words of hidden_infer's scratch for a sparse first hidden layer
 * under config c (its probe, active ids and activations); 0 when dense. */
int64_t hsparse_infer_words(const bolt_config *c);
/* 32-bit words a hidden_probe takes (for hprobe_carve). */
int64_t hprobe_words(const bolt_network *net);
/* A probe carved out of n = hprobe_words words at buf (count zeroed). */
hidden_probe hprobe_carve(const bolt_network *net, float *buf);
/* The k active units of row `row` of X (ascending ids) at training step
 * `step` (0 at inference). Returns 1 when it also wrote their
 * pre-activations into pre (it computed them to rank the candidates;
 * pre may be NULL), else 0. */
int hsparse_choose(const bolt_network *net, const hidden_probe *p, const bolt_csr *X,
                   int64_t row, uint64_t step, int32_t *ids, float *pre);
/* ReLU of n pre-activations in place. */
static inline void relu_in_place(float *a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        a[i] = a[i] > 0.0f ? a[i] : 0.0f;
}
/* Pre-activations + ReLU of units ids[0..k) for row `row` of X into a. */
void hsparse_forward(const bolt_network *net, const bolt_csr *X, int64_t row,
                     const int32_t *ids, int32_t k, float *a);
/* sum_i a[i] * w[ids[i]] */
static inline float gather_dot(const float *w, const int32_t *ids, const float *a, int32_t k)
{
    float s = 0.0f;
    for (int32_t i = 0; i < k; i++)
        s += a[i] * w[ids[i]];
    return s;
}

/* ---- column-sparse updates (colgrad.c) ---- */
/* Per-thread buffers of a column-sparse update: a gradient row, marks and
 * the list of the columns it touched (all zero between rows). */
typedef struct {
    float *g;
    uint8_t *mark;   /* at a block's first column */
    int32_t *cols;   /* first columns of the touched blocks */
    int64_t width;
    int32_t block;   /* the sparse layer's block of columns */
} col_bufs;

void colbufs_layout(arena *a, col_bufs *cb, int64_t width, int32_t block, int64_t nt);
/* Like update_indexed_rows, the vector of sample s being k-sparse:
 * ids[s * k ..] and vals[s * k ..]. Only the touched (row, column) entries
 * reach the sink. */
void update_indexed_cols(const row_index *ix, const int32_t *ids, const float *vals,
                         int32_t k, const row_sink *sink, const col_bufs *cb,
                         int32_t n_threads);
/* update_indexed_cols for a layer every sample touches at every row (the
 * dense output layer): row r's entry of sample s is grads[s * n_rows + r]. */
void update_all_cols(int64_t n_samples, int64_t n_rows, const float *grads, const int32_t *ids,
                     const float *vals, int32_t k, const row_sink *sink, const col_bufs *cb,
                     int32_t n_threads);
/* The bias of the sparse layer: unit ids[s * k + i] gets vals[s * k + i]
 * from each sample s; only the touched biases reach the sink. */
void update_sparse_bias(int64_t n_samples, const int32_t *ids, const float *vals,
                        int32_t k, const row_sink *sink, const col_bufs *cb);

/* ---- training (train.c) ---- */
/* The training workspace of one call, for sizing only. */
void train_layout(arena *a, const bolt_network *net, int64_t B,
                  int64_t max_lab, int64_t max_nnz, int32_t nt);

#endif
