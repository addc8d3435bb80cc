/* Declarations shared by the core's translation units; not part of the API. */
#ifndef SKBOLT_INTERNAL_H
#define SKBOLT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bolt.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#else
#define THREAD_ID() 0
#endif

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

/* ---- errors (network.c) ---- */
int bolt_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

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

/* Full validation of a caller's matrix: types, shape, monotone indptr,
 * column range and finite values. */
int csr_check(const bolt_csr *m, const char *name, int64_t n_cols);

/* Asks for the cache lines of n floats ahead of use: weight rows of the
 * active set sit at random places in a large matrix, and starting their
 * loads a few rows early hides most of the memory latency. */
static inline void prefetch_floats(const float *p, int64_t n)
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
void simd_dot_many(const float *w, const float *h, int64_t n, int nh,
                   float *out);

/* ---- layers (layer.c) ---- */
typedef struct {
    int64_t rows, cols, bias_len;
    float *w, *b;   /* parameters */
    float *mw, *vw; /* Adam moments of w */
    float *mb, *vb; /* Adam moments of b */
} bolt_layer;

int layer_alloc(bolt_layer *l, int64_t rows, int64_t cols, int64_t bias_len);
void layer_free(bolt_layer *l);
void layer_init(bolt_layer *l, uint64_t seed, int index, int64_t fan_in,
                int64_t fan_out);
/* z = b + sum over the row's nonzeros of x_j * w[j]; out of range columns
 * cannot occur because inputs are validated first. */
void layer_input_forward(const bolt_layer *l, const bolt_csr *x, int64_t row,
                         float *z);
void layer_dense_forward(const bolt_layer *l, const float *in, float *z);
void relu(float *z, int64_t n);

/* ---- optimizer (optim.c) ---- */
typedef struct {
    float beta1, beta2, epsilon;
    float lr; /* learning rate with the bias correction of this step */
} bolt_adam;

void adam_step(float *w, float *m, float *v, const float *g, int64_t n,
               const bolt_adam *a);

/* Where a batch's gradient rows go: an Adam step (adam != NULL) or dense
 * gradient arrays (for gradient checks). row_bias: one bias per row. */
typedef struct {
    bolt_layer *layer;
    const bolt_adam *adam;
    float *grad_w, *grad_b;
    int row_bias;
} row_sink;

void sink_bias(const row_sink *s, const float *gb);

/* The rows a batch touched, with each row's (sample, value) entries. */
typedef struct {
    int32_t *slot;    /* per row: index into touched, or -1 */
    int32_t *touched; /* rows in first-touch order */
    int64_t *start;   /* entries of touched[t]: start[t] .. start[t + 1] */
    int32_t *sample;
    float *value;
    int64_t n_touched, n_entries;
} row_index;

int rowindex_alloc(row_index *ix, int64_t max_rows, int64_t max_entries);
void rowindex_free(row_index *ix);
void rowindex_build(row_index *ix, int64_t n_samples, const int64_t *begin,
                    const int32_t *count, const int32_t *rows,
                    const float *vals);
int update_indexed_rows(const row_index *ix, const float *vecs, int64_t dim,
                        const row_sink *sink, int32_t n_threads);
int update_all_rows(int64_t n_samples, const float *coef, const float *vecs,
                    const row_sink *sink, int32_t n_threads);

/* ---- hashing (lsh.c) ---- */
#define DWTA_BIN 8

typedef struct {
    int32_t family, K, L, range_pow, dim;
    int32_t n_codes; /* K * L */
    int32_t take;    /* coordinates per code */
    int32_t *coords; /* n_codes * take coordinate ids */
    int8_t *signs;   /* SRP: a sign per coordinate id */
    uint64_t salt;   /* densification and key mixing */
} bolt_hash;

int hash_create(bolt_hash *h, int32_t family, int32_t K, int32_t L,
                int32_t range_pow, int32_t dim, uint64_t seed, uint64_t draw);
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

int tables_create(bolt_tables *t, int32_t L, int32_t range_pow, int32_t R,
                  uint64_t seed);
void tables_destroy(bolt_tables *t);
void tables_clear(bolt_tables *t);

static inline int64_t tables_bucket(const bolt_tables *t, int32_t l,
                                    uint32_t key)
{
    return ((int64_t)l << t->range_pow) + (int64_t)key;
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
    uint32_t c = t->counts[b];
    *ids = t->ids + b * t->R;
    return c < (uint32_t)t->R ? (int32_t)c : t->R;
}

#endif
