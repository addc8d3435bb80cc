/* Column-sparse gradient gathering, for the layers next to a sparse hidden
 * layer (issue 36): the input layer's rows (one per feature) and the output
 * layer's rows (one per output) are touched by a sample only at the columns
 * of its active hidden units. A row takes an Adam step on those columns
 * alone, the way update_indexed_rows (grad.c) steps only the rows a batch
 * touched: lazy Adam, one level finer. Stepping whole rows would cost
 * every touched row's full width and lose the saving of the sparse layer.
 *
 * The active units come in whole blocks of B consecutive columns, so a row
 * steps block by block: B contiguous floats of w, m and v, a loop that
 * vectorises. The input layer's moments are pooled by block (layer.c):
 * a block's m and v sit side by side in the order blocks were first
 * trained, so the pages touched are those of trained blocks.
 *
 * Entries of a row are summed in sample order (the row index keeps it), and
 * every (row, column) belongs to one thread, so the result is the same at
 * any thread count.
 */
#include "network.h"

#include <math.h>
#include <string.h>

void colbufs_layout(arena *a, col_bufs *cb, int64_t width, int32_t block, int64_t nt)
{
    cb->width = width;
    cb->block = block;
    cb->g = arena_zero(a, PART_BUFFERS, nt * width, sizeof(float));
    cb->mark = arena_zero(a, PART_BUFFERS, nt * width, 1);
    cb->cols = arena_take(a, PART_BUFFERS, nt * (width / block), sizeof(int32_t));
}

/* adam_step (optim.c) for the n entries of one block: contiguous in w, m
 * and v, so the loop vectorises (n is a constant where inlined). */
static inline void adam_block(float *restrict w, float *restrict m, float *restrict v,
                              const float *restrict g, int32_t n, const bolt_adam *a)
{
    const float b1 = a->beta1, b2 = a->beta2, lr = a->lr, eps = a->epsilon;
    for (int32_t t = 0; t < n; t++) {
        const float mi = b1 * m[t] + (1.0f - b1) * g[t];
        const float vi = b2 * v[t] + (1.0f - b2) * g[t] * g[t];
        m[t] = mi;
        v[t] = vi;
        w[t] -= lr * mi / (sqrtf(vi) + eps);
    }
}

static void adam_blocks(float *w, float *m, float *v, const float *g, const int32_t *cols,
                        int64_t n, int32_t B, const bolt_adam *a)
{
#define COLGRAD_BLOCKS(BS)                                                              \
    for (int64_t t = 0; t < n; t++)                                                     \
        adam_block(w + cols[t], m + cols[t], v + cols[t], g + cols[t], BS, a)
    if (B == 16)
        COLGRAD_BLOCKS(16);
    else if (B == 8)
        COLGRAD_BLOCKS(8);
    else
        COLGRAD_BLOCKS(B);
#undef COLGRAD_BLOCKS
}

#if defined(__GNUC__)
#define PREFETCH_W(p) __builtin_prefetch((p), 1)
#else
#define PREFETCH_W(p) ((void)(p))
#endif

/* adam_blocks for a layer with pooled moments: a block's first step takes
 * the pool's next slot (row r belongs to one thread; the counter is
 * shared). Where a block's moments sit changes nothing computed. */
static void adam_pooled(bolt_layer *l, int64_t r, const float *g, const int32_t *cols,
                        int64_t n, int32_t B, const bolt_adam *a)
{
    float *w = l->w + r * l->cols;
    uint32_t *slot = l->slot + r * (l->cols / B);
    uint8_t *moved = l->moved + r * (l->cols / B);
    /* the row's blocks are scattered: ask for every line first, so that
     * the misses overlap (the moments once the slots are known) */
    for (int64_t t = 0; t < n; t++)
        PREFETCH_W(w + cols[t]);
    for (int64_t t = 0; t < n; t++) {
        const int32_t c = cols[t];
        moved[c / B] = 1;
        if (!slot[c / B]) {
            int64_t got;
#pragma omp atomic capture
            got = ++l->pool_used;
            slot[c / B] = (uint32_t)got;
        }
        const float *m = l->pool + (int64_t)(slot[c / B] - 1) * 2 * B;
        PREFETCH_W(m);
        PREFETCH_W(m + B);
    }
    for (int64_t t = 0; t < n; t++) {
        const int32_t c = cols[t];
        float *m = l->pool + (int64_t)(slot[c / B] - 1) * 2 * B;
        if (B == 16)
            adam_block(w + c, m, m + 16, g + c, 16, a);
        else
            adam_block(w + c, m, m + B, g + c, B, a);
    }
}

/* Hands row r's n touched blocks to the sink and leaves g and mark zero. */
static void sink_cols(const row_sink *s, int64_t r, float *g, uint8_t *mark,
                      const int32_t *cols, int64_t n, int32_t B, float gb)
{
    bolt_layer *l = s->layer;
    const int64_t W = l->cols, at = r * W;
    if (s->adam) {
        l->changed[r] = 1; /* one thread per row */
        if (l->slot && l->pool_block == B)
            adam_pooled(l, r, g, cols, n, B, s->adam);
        else
            adam_blocks(l->w + at, l->mw + at, l->vw + at, g, cols, n, B, s->adam);
        if (s->row_bias) {
            const float gbs[1] = {gb};
            adam_block(l->b + r, l->mb + r, l->vb + r, gbs, 1, s->adam);
        }
    } else {
        for (int64_t t = 0; t < n; t++)
            memcpy(s->grad_w + at + cols[t], g + cols[t], (size_t)B * sizeof(float));
        if (s->row_bias)
            s->grad_b[r] = gb;
    }
    for (int64_t t = 0; t < n; t++) {
        memset(g + cols[t], 0, (size_t)B * sizeof(float));
        mark[cols[t]] = 0;
    }
}

/* Adds v times sample vector (ids, vals) of k entries, whole blocks of B
 * consecutive units, into g. A block whose units are all zero touches
 * nothing (ReLU units that were off pass no gradient); within a touched
 * block every entry steps, as a dense layer's row does. */
static int64_t add_sparse(float *g, uint8_t *mark, int32_t *cols, int64_t n, float v,
                          const int32_t *ids, const float *vals, int32_t k, int32_t B)
{
    for (int32_t i = 0; i < k; i += B) {
        int any = 0;
        for (int32_t t = 0; t < B; t++)
            any |= vals[i + t] != 0.0f;
        if (!any)
            continue;
        const int32_t c = ids[i];
        float *gc = g + c;
        const float *vi = vals + i;
        for (int32_t t = 0; t < B; t++)
            gc[t] += v * vi[t];
        if (!mark[c]) {
            mark[c] = 1;
            cols[n++] = c;
        }
    }
    return n;
}

void update_indexed_cols(const row_index *ix, const int32_t *ids, const float *vals,
                         int32_t k, const row_sink *sink, const col_bufs *cb,
                         int32_t n_threads)
{
    const int64_t nt = ix->n_touched, W = cb->width;
    const int32_t B = cb->block;
    (void)n_threads; /* without OpenMP */
#pragma omp parallel num_threads(n_threads)
    {
        const int64_t team = TEAM_SIZE(), me = THREAD_ID();
        const int64_t lo = nt * me / team, hi = nt * (me + 1) / team;
        float *g = cb->g + me * W;
        uint8_t *mark = cb->mark + me * W;
        int32_t *cols = cb->cols + me * (W / B);
        for (int64_t t = lo; t < hi; t++) {
            float gb = 0.0f;
            int64_t n = 0;
            for (int64_t c = 0; c < ix->n_runs; c++) {
                const int64_t p0 = ix->start[c * nt + t], p1 = ix->start[c * nt + t + 1];
                for (int64_t p = p0; p < p1; p++) {
                    const int64_t s = ix->sample[p];
                    const float v = ix->value[p];
                    gb += v;
                    n = add_sparse(g, mark, cols, n, v, ids + s * k, vals + s * k, k, B);
                }
            }
            sink_cols(sink, ix->touched[t], g, mark, cols, n, B, gb);
        }
    }
}

void update_all_cols(int64_t n_samples, int64_t n_rows, const float *grads, const int32_t *ids,
                     const float *vals, int32_t k, const row_sink *sink, const col_bufs *cb,
                     int32_t n_threads)
{
    const int64_t W = cb->width;
    const int32_t B = cb->block;
    (void)n_threads; /* without OpenMP */
    /* one region, rows split in contiguous ranges: no row index to build
     * (every sample touches every row), no barrier but the last */
#pragma omp parallel num_threads(n_threads)
    {
        const int64_t team = TEAM_SIZE(), me = THREAD_ID();
        const int64_t lo = n_rows * me / team, hi = n_rows * (me + 1) / team;
        float *g = cb->g + me * W;
        uint8_t *mark = cb->mark + me * W;
        int32_t *cols = cb->cols + me * (W / B);
        for (int64_t r = lo; r < hi; r++) {
            float gb = 0.0f;
            int64_t n = 0;
            for (int64_t s = 0; s < n_samples; s++) {
                const float v = grads[s * n_rows + r];
                gb += v;
                if (v != 0.0f)
                    n = add_sparse(g, mark, cols, n, v, ids + s * k, vals + s * k, k, B);
            }
            sink_cols(sink, r, g, mark, cols, n, B, gb);
        }
    }
}

void update_sparse_bias(int64_t n_samples, const int32_t *ids, const float *vals,
                        int32_t k, const row_sink *sink, const col_bufs *cb)
{
    bolt_layer *l = sink->layer;
    const int32_t B = cb->block;
    float *g = cb->g;
    uint8_t *mark = cb->mark;
    int32_t *cols = cb->cols;
    int64_t n = 0;
    for (int64_t s = 0; s < n_samples; s++)
        n = add_sparse(g, mark, cols, n, 1.0f, ids + s * k, vals + s * k, k, B);
    if (sink->adam)
        adam_blocks(l->b, l->mb, l->vb, g, cols, n, B, sink->adam);
    for (int64_t t = 0; t < n; t++) {
        const int32_t c = cols[t];
        if (!sink->adam)
            memcpy(sink->grad_b + c, g + c, (size_t)B * sizeof(float));
        memset(g + c, 0, (size_t)B * sizeof(float));
        mark[c] = 0;
    }
}
